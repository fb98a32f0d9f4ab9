// Package webui is the history browser `relay-git-sync serve` mounts under
// /ui/: server-rendered pages (html/template, embedded with the CSS and the
// two small scripts, so it works offline and needs no build step) over the
// same source.Source every reader uses. A person signs in with the read
// token (sees everything) or the write token (may also restore), then
// browses folders, a folder's timeline, snapshots, files as they were, a
// file's history and diffs, downloads files and snapshots, and restores.
//
// Security: the token only ever travels in the sign-in form's POST body;
// the session cookie is HttpOnly, SameSite=Strict and Secure behind TLS;
// every form that changes state carries the session's CSRF token; pages
// send a Content-Security-Policy without inline script or style, and file
// contents are served with a sandboxing CSP so that an HTML or SVG note
// cannot run script in the page's origin.
package webui

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// Prefix is where server/ mounts the handler; every route starts with it.
const Prefix = "/ui/"

// Config is what New needs.
type Config struct {
	// Source is what the pages read.
	Source source.Source
	// APIToken signs in read-only sessions (RELAY_GIT_API_TOKEN);
	// WriteToken signs in sessions that may also restore
	// (RELAY_GIT_WRITE_TOKEN). With neither, sign-in is refused.
	APIToken, WriteToken string
	// Restore is the restore route's own function (server.Config.Restore);
	// nil = no restore buttons, and POSTs to restore answer 403.
	Restore func(ctx context.Context, f store.FolderID, req readapi.RestoreRequest) (*readapi.RestoreResult, error)
	// Done, when closed, ends the server-sent event streams so that a
	// graceful shutdown does not wait for them; nil = never.
	Done <-chan struct{}
	// SessionTTL bounds a session's life (default 12 hours).
	SessionTTL time.Duration
	// Poll is how often an event stream checks for new snapshots
	// (default 1 second).
	Poll   time.Duration
	Logger *slog.Logger     // nil = discard
	Now    func() time.Time // tests; nil = time.Now
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

type ui struct {
	cfg        Config
	log        *slog.Logger
	now        func() time.Time
	apiToken   [sha256.Size]byte
	writeToken [sha256.Size]byte
	sessions   *sessions
	failures   *failures
	pages      map[string]*template.Template
	static     http.Handler
	infos      infoCache
}

// New returns the handler of every /ui/ route.
func New(cfg Config) (http.Handler, error) {
	if cfg.Source == nil {
		return nil, errors.New("webui: Config.Source is required")
	}
	if cfg.WriteToken != "" && cfg.WriteToken == cfg.APIToken {
		return nil, errors.New("webui: the write token equals the read token: give writes a token of their own (RELAY_GIT_WRITE_TOKEN)")
	}
	u := &ui{cfg: cfg, log: cfg.Logger, now: cfg.Now}
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	if u.now == nil {
		u.now = time.Now
	}
	if u.cfg.SessionTTL <= 0 {
		u.cfg.SessionTTL = 12 * time.Hour
	}
	if u.cfg.Poll <= 0 {
		u.cfg.Poll = time.Second
	}
	u.apiToken = sha256.Sum256([]byte(cfg.APIToken))
	u.writeToken = sha256.Sum256([]byte(cfg.WriteToken))
	u.sessions = newSessions(u.now, u.cfg.SessionTTL)
	u.failures = newFailures(u.now)
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	u.pages = pages
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	u.static = http.StripPrefix(Prefix+"static/", http.FileServerFS(sub))
	return u.routes(), nil
}

func (u *ui) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ui", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, Prefix, http.StatusSeeOther) })
	mux.HandleFunc("GET /ui/static/", u.staticFile)
	mux.HandleFunc("GET /ui/login", u.loginPage)
	mux.HandleFunc("POST /ui/login", u.login)
	mux.HandleFunc("POST /ui/logout", u.signedIn(u.logout))
	mux.HandleFunc("GET /ui/{$}", u.signedIn(u.foldersPage))
	f := "/ui/f/{relay}/{folder}/"
	mux.HandleFunc("GET "+f+"{$}", u.signedIn(u.timelinePage))
	mux.HandleFunc("GET "+f+"events", u.signedIn(u.events))
	mux.HandleFunc("GET "+f+"s/{seq}/{$}", u.signedIn(u.snapshotPage))
	mux.HandleFunc("GET "+f+"s/{seq}/file", u.signedIn(u.filePage))
	mux.HandleFunc("GET "+f+"s/{seq}/raw", u.signedIn(u.raw))
	mux.HandleFunc("GET "+f+"s/{seq}/zip", u.signedIn(u.zip))
	mux.HandleFunc("GET "+f+"history", u.signedIn(u.historyPage))
	mux.HandleFunc("GET "+f+"diff", u.signedIn(u.diffPage))
	mux.HandleFunc("GET "+f+"restore", u.signedIn(u.restorePreview))
	mux.HandleFunc("POST "+f+"restore", u.signedIn(u.restore))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		u.fail(w, r, nil, http.StatusNotFound, "There is no such page.", nil)
	})
	return securityHeaders(mux)
}

// securityHeaders sets what every answer carries; file contents override
// the CSP with a stricter one.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("X-Frame-Options", "DENY")
		h.ServeHTTP(w, r)
	})
}

func (u *ui) staticFile(w http.ResponseWriter, r *http.Request) {
	// The assets are embedded: a new binary changes their URL's version.
	w.Header().Set("Cache-Control", "no-cache")
	u.static.ServeHTTP(w, r)
}

// page is what every template gets; Data is the page's own.
type page struct {
	Title    string
	Session  *session
	Folder   *folderRef
	Crumbs   []crumb
	Data     any
	ErrorMsg string
}

type crumb struct {
	Name, URL string
}

// render writes template name with p, as a whole page.
func (u *ui) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	t, ok := u.pages[name]
	if !ok {
		panic("webui: no template " + name)
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout", p); err != nil {
		u.log.Error("rendering a page", "page", name, "path", r.URL.Path, "err", err)
		http.Error(w, "rendering the page failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// fail renders an error page. err (may be nil) is logged for 5xx; msg is
// what the person reads.
func (u *ui) fail(w http.ResponseWriter, r *http.Request, s *session, status int, msg string, err error) {
	if status >= 500 {
		u.log.Error("web page failed", "path", r.URL.Path, "status", status, "err", err)
	}
	u.render(w, r, status, "error", &page{Title: http.StatusText(status), Session: s, ErrorMsg: msg})
}

// failErr maps a source error to a page: not found is 404, the rest 502
// (the source may be a remote server) with the error's text.
func (u *ui) failErr(w http.ResponseWriter, r *http.Request, s *session, what string, err error) {
	if errors.Is(err, store.ErrNotFound) {
		u.fail(w, r, s, http.StatusNotFound, what+": not found. "+err.Error(), nil)
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	u.fail(w, r, s, http.StatusInternalServerError, what+" failed: "+err.Error(), err)
}

func parsePages() (map[string]*template.Template, error) {
	base, err := template.New("base").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("webui: templates: %w", err)
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, fmt.Errorf("webui: template %s: %w", n, err)
		}
		out[name] = t
	}
	return out, nil
}

// folderRef is a folder as the URLs name it.
type folderRef struct {
	ID store.FolderID
}

func (f *folderRef) Base() string {
	return Prefix + "f/" + f.ID.Relay + "/" + f.ID.Folder + "/"
}

func (f *folderRef) Snap(seq uint64) string {
	return f.Base() + "s/" + strconv.FormatUint(seq, 10) + "/"
}

func (f *folderRef) File(seq uint64, path string) string {
	return f.Snap(seq) + "file?path=" + queryEscape(path)
}

func (f *folderRef) Raw(seq uint64, path string) string {
	return f.Snap(seq) + "raw?path=" + queryEscape(path)
}

func (f *folderRef) Download(seq uint64, path string) string {
	return f.Raw(seq, path) + "&download=1"
}

func (f *folderRef) Zip(seq uint64) string { return f.Snap(seq) + "zip" }

func (f *folderRef) History(seq uint64, path string) string {
	return f.Base() + "history?path=" + queryEscape(path) + "&seq=" + strconv.FormatUint(seq, 10)
}

func (f *folderRef) Diff(a uint64, ap string, b uint64, bp string) string {
	return f.Base() + "diff?a=" + queryEscape(versionRef{a, ap}.String()) + "&b=" + queryEscape(versionRef{b, bp}.String())
}

func (f *folderRef) Restore(seq uint64, path string) string {
	s := f.Base() + "restore?seq=" + strconv.FormatUint(seq, 10)
	if path != "" {
		s += "&path=" + queryEscape(path)
	}
	return s
}

// folderOf reads the folder from the URL: 404 for one that is not two UUIDs.
func (u *ui) folderOf(w http.ResponseWriter, r *http.Request, s *session) (*folderRef, bool) {
	id, err := store.ParseFolderID(r.PathValue("relay") + "/" + r.PathValue("folder"))
	if err != nil {
		u.fail(w, r, s, http.StatusNotFound, "No such folder: "+err.Error(), nil)
		return nil, false
	}
	return &folderRef{ID: id}, true
}

// seqOf parses a positive snapshot number from v; ok false has answered.
func (u *ui) seqOf(w http.ResponseWriter, r *http.Request, s *session, name, v string) (uint64, bool) {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n == 0 {
		u.fail(w, r, s, http.StatusBadRequest, fmt.Sprintf("%s must be a snapshot number (1 or more), not %q.", name, v), nil)
		return 0, false
	}
	return n, true
}
