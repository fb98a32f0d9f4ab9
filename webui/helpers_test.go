package webui

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

const (
	readToken  = "read-token-for-webui-tests-0123456789"
	writeToken = "write-token-for-webui-tests-0123456789"
)

var testFolder = store.FolderID{Relay: "6ba7b810-9dad-11d1-80b4-00c04fd430c8", Folder: "f47ac10b-58cc-4372-a567-0e02b2c3d479"}

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// vault writes snapshots of one folder into a real (in-memory) store,
// computing each snapshot's changes from the tree before it.
type vault struct {
	t     testing.TB
	st    *store.Store
	files map[string]string // path -> content
	docs  map[string]string // path -> doc id
	seq   uint64
}

func newVault(t testing.TB) *vault {
	t.Helper()
	v := openVault(t)
	t.Cleanup(func() { v.st.Close() })
	return v
}

// openVault is newVault with a store that stays open for the life of the
// process (shared by benchmarks).
func openVault(t testing.TB) *vault {
	t.Helper()
	st, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := json.Marshal(history.Config{Authors: map[string]history.Identity{"u-ada": {Name: "Ada", Email: "ada@example.com"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetHistoryConfig(cfg); err != nil {
		t.Fatal(err)
	}
	return &vault{t: t, st: st, files: map[string]string{}, docs: map[string]string{}}
}

func docID(p string) string {
	h := sha1.Sum([]byte(p))
	return hex.EncodeToString(h[:8])
}

func kindOf(p string) string {
	switch path.Ext(p) {
	case ".md":
		return "markdown"
	case ".canvas":
		return "canvas"
	}
	return "file"
}

// edit is one snapshot's worth of changes.
type edit struct {
	users   []string
	set     map[string]string // path -> new content
	del     []string
	renames map[string]string // old path -> new path (content kept unless also in set)
	origin  store.Origin
}

func (v *vault) commit(e edit) uint64 {
	v.t.Helper()
	var changes []store.Change
	for from, to := range e.renames {
		v.files[to], v.docs[to] = v.files[from], v.docs[from]
		delete(v.files, from)
		delete(v.docs, from)
		changes = append(changes, store.Change{Kind: store.ChangeRenamed, Path: to, OldPath: from, DocID: v.docs[to]})
	}
	for p, c := range e.set {
		if _, renamed := valueIn(e.renames, p); renamed {
			v.files[p] = c
			continue
		}
		kind := store.ChangeModified
		if _, ok := v.files[p]; !ok {
			kind = store.ChangeAdded
			v.docs[p] = docID(p)
		}
		v.files[p] = c
		changes = append(changes, store.Change{Kind: kind, Path: p, DocID: v.docs[p]})
	}
	for _, p := range e.del {
		changes = append(changes, store.Change{Kind: store.ChangeDeleted, Path: p, DocID: v.docs[p]})
		delete(v.files, p)
		delete(v.docs, p)
	}
	slices.SortFunc(changes, func(a, b store.Change) int { return strings.Compare(a.Path, b.Path) })
	snap := &store.Snapshot{Folder: testFolder, Time: t0.Add(time.Duration(v.seq) * time.Minute), Users: e.users, Changes: changes, Origin: e.origin}
	for p, c := range v.files {
		id, err := v.st.PutBlob([]byte(c), store.BlobID{})
		if err != nil {
			v.t.Fatal(err)
		}
		snap.Files = append(snap.Files, store.File{Path: p, Blob: id, Size: int64(len(c)), DocID: v.docs[p], Kind: kindOf(p)})
	}
	slices.SortFunc(snap.Files, func(a, b store.File) int { return strings.Compare(a.Path, b.Path) })
	seq, err := v.st.AddSnapshot(snap, nil, nil)
	if err != nil {
		v.t.Fatal(err)
	}
	v.seq = seq
	return seq
}

func valueIn(m map[string]string, v string) (string, bool) {
	for k, x := range m {
		if x == v {
			return k, true
		}
	}
	return "", false
}

func (v *vault) source() source.Source { return source.FromStore(v.st) }

// env is the handler behind a real HTTP server, with a browser-like
// client (cookie jar, no automatic redirects).
type env struct {
	t        testing.TB
	srv      *httptest.Server
	restores []readapi.RestoreRequest
}

func newEnv(t testing.TB, v *vault, tweak func(*Config)) *env {
	t.Helper()
	e := &env{t: t}
	cfg := Config{Source: v.source(), APIToken: readToken, WriteToken: writeToken, Poll: 10 * time.Millisecond,
		// Records what the unit tests ask; the browser test restores for real.
		Restore: func(ctx context.Context, f store.FolderID, req readapi.RestoreRequest) (*readapi.RestoreResult, error) {
			e.restores = append(e.restores, req)
			return &readapi.RestoreResult{Seq: req.Seq, DryRun: req.DryRun, Actions: []readapi.RestoreAction{{Op: "recreate", Path: "x.md"}}}, nil
		}}
	if tweak != nil {
		tweak(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// login signs c in with token and returns the sign-in answer.
func (e *env) login(c *http.Client, token string) *http.Response {
	e.t.Helper()
	resp, err := c.PostForm(e.srv.URL+"/ui/login", url.Values{"token": {token}, "next": {"/ui/"}})
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// signedIn returns a client with a session of token.
func (e *env) signedIn(token string) *http.Client {
	e.t.Helper()
	c := e.client()
	if resp := e.login(c, token); resp.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("sign-in: %s", resp.Status)
	}
	return c
}

func (e *env) get(c *http.Client, p string) (int, string, http.Header) {
	e.t.Helper()
	resp, err := c.Get(e.srv.URL + p)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func (e *env) post(c *http.Client, p string, form url.Values, hdr map[string]string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+p, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// csrfOf reads the CSRF token from a page's forms.
func csrfOf(t testing.TB, body string) string {
	t.Helper()
	const marker = `name="csrf" value="`
	i := strings.Index(body, marker)
	if i < 0 {
		t.Fatalf("no CSRF field in the page:\n%s", body)
	}
	rest := body[i+len(marker):]
	return rest[:strings.IndexByte(rest, '"')]
}

func folderURL() string { return "/ui/f/" + testFolder.Relay + "/" + testFolder.Folder + "/" }
