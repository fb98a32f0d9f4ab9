package webui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/server"
	"github.com/relay-git-sync/relay-git-sync/webui"
)

type nopSink struct{}

func (nopSink) Enqueue(context.Context, server.Event) (bool, error) { return false, nil }

// TestMountedByServer: serve's HTTP handler answers /ui/ with the pages,
// their assets, and /ui with a redirect, through server.Config.UI.
func TestMountedByServer(t *testing.T) {
	st, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	src := source.FromStore(st)
	ui, err := webui.New(webui.Config{Source: src, APIToken: "read-token-0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := server.New(server.Config{InsecureNoAuth: true, APIToken: "read-token-0123456789abcdef", Events: nopSink{}, Source: src, UI: ui})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, ct, loc string }{
		{"/ui/login", "text/html; charset=utf-8", ""},
		{"/ui/static/style.css", "text/css; charset=utf-8", ""},
		{"/ui/static/app.js", "text/javascript; charset=utf-8", ""},
		{"/ui", "", "/ui/"},
		{"/ui/", "", "/ui/login?next=%2Fui%2F"},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", tc.path, nil))
		if tc.loc != "" {
			if w.Code != http.StatusSeeOther || w.Header().Get("Location") != tc.loc {
				t.Errorf("%s: %d to %q, want 303 to %q", tc.path, w.Code, w.Header().Get("Location"), tc.loc)
			}
			continue
		}
		if w.Code != 200 || w.Header().Get("Content-Type") != tc.ct {
			t.Errorf("%s: %d %q, want 200 %q", tc.path, w.Code, w.Header().Get("Content-Type"), tc.ct)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/ui/login", nil))
	if !strings.Contains(w.Body.String(), `<label for="token">`) {
		t.Errorf("sign-in page:\n%s", w.Body)
	}
}
