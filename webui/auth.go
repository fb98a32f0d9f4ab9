package webui

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	cookieName = "relay_git_sync_session"
	// maxSessions bounds the memory sign-ins can take; past it the
	// oldest session is dropped.
	maxSessions = 10000
	// maxFailures wrong tokens from one address within failureWindow
	// refuse every sign-in from it until the window has passed: guessing
	// a token gets nowhere, a typo costs nothing.
	maxFailures   = 10
	failureWindow = time.Minute
	// maxTracked bounds the addresses remembered.
	maxTracked = 10000
)

// failures counts wrong tokens per client address.
type failures struct {
	mu  sync.Mutex
	m   map[string]*failureCount
	now func() time.Time
}

type failureCount struct {
	n     int
	since time.Time
}

func newFailures(now func() time.Time) *failures {
	return &failures{m: map[string]*failureCount{}, now: now}
}

// blocked says whether addr has used up its failures, and for how long.
func (f *failures) blocked(addr string) (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.m[addr]
	if c == nil {
		return 0, false
	}
	left := c.since.Add(failureWindow).Sub(f.now())
	if left <= 0 {
		delete(f.m, addr)
		return 0, false
	}
	return left, c.n >= maxFailures
}

// add counts a wrong token from addr.
func (f *failures) add(addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	c := f.m[addr]
	if c == nil || now.Sub(c.since) >= failureWindow {
		if len(f.m) >= maxTracked {
			for a, o := range f.m {
				if now.Sub(o.since) >= failureWindow {
					delete(f.m, a)
				}
			}
			if len(f.m) >= maxTracked {
				clear(f.m)
			}
		}
		c = &failureCount{since: now}
		f.m[addr] = c
	}
	c.n++
}

// clientAddr is the address sign-in failures are counted by: the peer's
// IP (behind a proxy, the proxy's: then everyone shares one budget).
func clientAddr(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// session is one signed-in browser. Sessions live in memory only: a
// restart of serve signs everyone out.
type session struct {
	id      string
	CSRF    string // the value every state-changing form carries
	CanEdit bool   // signed in with the write token, and serve may restore
	expires time.Time
}

type sessions struct {
	mu  sync.Mutex
	m   map[string]*session
	now func() time.Time
	ttl time.Duration
}

func newSessions(now func() time.Time, ttl time.Duration) *sessions {
	return &sessions{m: map[string]*session{}, now: now, ttl: ttl}
}

func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

func (ss *sessions) create(canEdit bool) *session {
	s := &session{id: randomID(), CSRF: randomID(), CanEdit: canEdit, expires: ss.now().Add(ss.ttl)}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.now()
	if len(ss.m) >= maxSessions {
		var oldest *session
		for id, o := range ss.m {
			if now.After(o.expires) {
				delete(ss.m, id)
			} else if oldest == nil || o.expires.Before(oldest.expires) {
				oldest = o
			}
		}
		if len(ss.m) >= maxSessions && oldest != nil {
			delete(ss.m, oldest.id)
		}
	}
	ss.m[s.id] = s
	return s
}

func (ss *sessions) get(id string) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[id]
	if !ok {
		return nil
	}
	if ss.now().After(s.expires) {
		delete(ss.m, id)
		return nil
	}
	return s
}

func (ss *sessions) drop(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, id)
}

// overTLS reports whether the browser talks HTTPS to us (directly, or to a
// proxy that says so), which makes the cookie Secure.
func overTLS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "https")
}

func (u *ui) setCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: value, Path: Prefix, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: overTLS(r),
	})
}

// sessionOf returns the request's live session, or nil.
func (u *ui) sessionOf(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return nil
	}
	return u.sessions.get(c.Value)
}

// signedIn guards a page: without a session a GET goes to the sign-in
// page (remembering where it was going), anything else is 401. A POST must
// come from our own pages: same origin, and the session's CSRF token.
func (u *ui) signedIn(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := u.sessionOf(r)
		if s == nil {
			if r.Header.Get("Accept") == "text/event-stream" {
				// 204 tells an EventSource to stop reconnecting; the
				// page's next load goes to the sign-in page.
				w.WriteHeader(http.StatusNoContent)
				return
			}
			if r.Method == http.MethodGet {
				http.Redirect(w, r, Prefix+"login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			u.fail(w, r, nil, http.StatusUnauthorized, "You are not signed in (or your session ended): sign in again.", nil)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if !sameOrigin(r) || !equalString(r.PostFormValue("csrf"), s.CSRF) {
				u.log.Warn("web form refused: CSRF check failed", "path", r.URL.Path, "remote", r.RemoteAddr)
				u.fail(w, r, s, http.StatusForbidden, "This form is stale or did not come from this site: reload the page and try again.", nil)
				return
			}
		}
		h(w, r, s)
	}
}

// sameOrigin refuses a request whose Origin (sent by browsers with every
// POST) names another site; a request without one passes to the token check.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	ou, err := url.Parse(o)
	return err == nil && strings.EqualFold(ou.Host, r.Host)
}

func equalString(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func equalSecret(presented string, want *[sha256.Size]byte) bool {
	got := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// safeNext keeps a post-sign-in redirect on our own pages.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix
	}
	return next
}

type loginData struct {
	Next     string
	Disabled bool
}

func (u *ui) loginPage(w http.ResponseWriter, r *http.Request) {
	if s := u.sessionOf(r); s != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	u.render(w, r, http.StatusOK, "login", &page{Title: "Sign in", Data: loginData{
		Next: safeNext(r.URL.Query().Get("next")), Disabled: u.cfg.APIToken == "" && u.cfg.WriteToken == "",
	}})
}

// login checks the token from the form body and starts a session.
func (u *ui) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	token := r.PostFormValue("token")
	next := safeNext(r.PostFormValue("next"))
	data := loginData{Next: next, Disabled: u.cfg.APIToken == "" && u.cfg.WriteToken == ""}
	if !sameOrigin(r) {
		u.render(w, r, http.StatusForbidden, "login", &page{Title: "Sign in", Data: data, ErrorMsg: "This sign-in form did not come from this site."})
		return
	}
	addr := clientAddr(r)
	if wait, ok := u.failures.blocked(addr); ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		u.render(w, r, http.StatusTooManyRequests, "login", &page{Title: "Sign in", Data: data,
			ErrorMsg: fmt.Sprintf("Too many wrong tokens from this address: try again in %d seconds.", int(wait.Seconds())+1)})
		return
	}
	var canEdit bool
	switch {
	case token == "":
		u.render(w, r, http.StatusUnauthorized, "login", &page{Title: "Sign in", Data: data, ErrorMsg: "Enter a token."})
		return
	case u.cfg.WriteToken != "" && equalSecret(token, &u.writeToken):
		canEdit = u.cfg.Restore != nil
	case u.cfg.APIToken != "" && equalSecret(token, &u.apiToken):
	default:
		u.failures.add(addr)
		u.log.Warn("web sign-in refused: wrong token", "remote", r.RemoteAddr)
		u.render(w, r, http.StatusUnauthorized, "login", &page{Title: "Sign in", Data: data,
			ErrorMsg: "That token is not valid here: use the read token (RELAY_GIT_API_TOKEN) or the write token (RELAY_GIT_WRITE_TOKEN) this server runs with."})
		return
	}
	s := u.sessions.create(canEdit)
	u.setCookie(w, r, s.id, int(u.cfg.SessionTTL/time.Second))
	u.log.Info("web sign-in", "remote", r.RemoteAddr, "may_restore", canEdit)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (u *ui) logout(w http.ResponseWriter, r *http.Request, s *session) {
	u.sessions.drop(s.id)
	u.setCookie(w, r, "", -1)
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}
