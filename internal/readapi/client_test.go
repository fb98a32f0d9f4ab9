package readapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// A redirect to another origin (here another port of the same host, which
// net/http would send the Authorization header to) is refused before any
// request reaches it; a redirect within the origin is followed.
func TestRedirects(t *testing.T) {
	var leaked atomic.Value
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"folders":[]}`))
	}))
	defer other.Close()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret-token" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/away/api/v1/folders":
			http.Redirect(w, r, other.URL+"/api/v1/folders", http.StatusFound)
		case "/moved/api/v1/folders":
			http.Redirect(w, r, srv.URL+"/api/v1/folders", http.StatusMovedPermanently)
		case "/api/v1/folders":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"folders":[]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ctx := context.Background()

	c, err := New(srv.URL+"/away", "s3cret-token")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Folders(ctx)
	if err == nil || !strings.Contains(err.Error(), "another origin") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("cross-origin redirect: %v", err)
	}
	if v := leaked.Load(); v != nil {
		t.Errorf("the other origin was asked (Authorization %q)", v)
	}

	c2, err := New(srv.URL+"/moved", "s3cret-token")
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.Folders(ctx); err != nil {
		t.Errorf("same-origin redirect: %v", err)
	}
}

func TestOrigin(t *testing.T) {
	same := [][2]string{
		{"http://h/a", "http://H:80/b"},
		{"https://h/a", "https://h:443/"},
	}
	for _, p := range same {
		if !sameOriginURLs(t, p[0], p[1]) {
			t.Errorf("%s and %s: different origins", p[0], p[1])
		}
	}
	differ := [][2]string{
		{"http://h/a", "https://h/a"},
		{"http://h:8080/", "http://h:8081/"},
		{"http://h/", "http://h.evil.example/"},
	}
	for _, p := range differ {
		if sameOriginURLs(t, p[0], p[1]) {
			t.Errorf("%s and %s: same origin", p[0], p[1])
		}
	}
}

func sameOriginURLs(t *testing.T, a, b string) bool {
	t.Helper()
	ra, err := http.NewRequest(http.MethodGet, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := http.NewRequest(http.MethodGet, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	return sameOrigin(rb, []*http.Request{ra}) == nil
}

// No message repeats credentials put in a URL.
func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://alice:s3cret@h.example/x":    "https://xxxxx@h.example/x",
		"https://s3cret@h.example":            "https://xxxxx@h.example",
		"http://h.example/a@b":                "http://h.example/a@b",
		"not a url s3cret":                    "not a url s3cret",
		"https://a:b@c:s3cret@h.example:99/p": "https://xxxxx@h.example:99/p",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
	for _, raw := range []string{"https://alice:s3cret@h.example/x", "ftp://alice:s3cret@h.example"} {
		_, err := New(raw, "")
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("New(%q): %v", raw, err)
		}
	}
}
