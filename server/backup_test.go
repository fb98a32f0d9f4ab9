package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// backupStore is a small real store to back up.
func backupStore(t *testing.T) (*store.Store, store.FolderID) {
	t.Helper()
	st, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := store.FolderID{Relay: testRelay, Folder: testDoc}
	id, err := st.PutBlob([]byte("# hello\n"), store.BlobID{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddSnapshot(&store.Snapshot{Folder: f, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Files: []store.File{{Path: "a.md", Blob: id, Size: 8, DocID: "d", Kind: "markdown"}}}, nil, nil); err != nil {
		t.Fatal(err)
	}
	return st, f
}

func TestBackupRoute(t *testing.T) {
	st, f := backupStore(t)
	env := newEnv(t, func(c *Config) { c.Backup = st.Backup })
	w := env.do("GET", "/api/v1/backup", nil, bearer(testToken))
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != readapi.BackupContentType {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := w.Header().Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="relay-git-sync-`) {
		t.Errorf("Content-Disposition %q", cd)
	}
	dir := filepath.Join(t.TempDir(), "db")
	if _, err := store.Restore(dir, w.Body, store.Options{}); err != nil {
		t.Fatalf("restoring what the route sent: %v", err)
	}
	got, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if snap, err := got.Latest(f); err != nil || len(snap.Files) != 1 || snap.Files[0].Path != "a.md" {
		t.Errorf("restored folder: %+v %v", snap, err)
	}
}

func TestBackupRouteRefuses(t *testing.T) {
	st, _ := backupStore(t)
	called := false
	env := newEnv(t, func(c *Config) {
		c.Backup = func(ctx context.Context, w io.Writer) error { called = true; return st.Backup(ctx, w) }
	})
	for _, hdr := range []map[string]string{nil, bearer("wrong")} {
		if w := env.do("GET", "/api/v1/backup", nil, hdr); w.Code != 401 {
			t.Errorf("%v: status %d", hdr, w.Code)
		}
	}
	if called {
		t.Error("a backup was made for a request without the token")
	}
	// A server whose read API is disabled serves no backup either.
	off := newEnv(t, func(c *Config) { c.APIToken = ""; c.Backup = st.Backup })
	if w := off.do("GET", "/api/v1/backup", nil, bearer("")); w.Code != 401 {
		t.Errorf("read API disabled: status %d", w.Code)
	}
	none := newEnv(t, nil)
	if w := none.do("GET", "/api/v1/backup", nil, bearer(testToken)); w.Code != 404 {
		t.Errorf("no Backup configured: status %d", w.Code)
	}
	failing := newEnv(t, func(c *Config) {
		c.Backup = func(context.Context, io.Writer) error { return errors.New("store closed") }
	})
	if w := failing.do("GET", "/api/v1/backup", nil, bearer(testToken)); w.Code != 500 || !strings.Contains(w.Body.String(), "store closed") {
		t.Errorf("failing before streaming: %d %s", w.Code, w.Body)
	}
}

// A backup that fails after it started streaming reaches the client as a
// broken answer, never as a whole one.
func TestBackupRouteFailsMidStream(t *testing.T) {
	st, _ := backupStore(t)
	// Big enough that the first half leaves the server before it fails.
	noise := make([]byte, 256<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range noise {
		noise[i] = byte(r.Uint32())
	}
	if _, err := st.PutBlob(noise, store.BlobID{}); err != nil {
		t.Fatal(err)
	}
	env := newEnv(t, func(c *Config) {
		c.Backup = func(ctx context.Context, w io.Writer) error {
			var buf bytes.Buffer
			if err := st.Backup(ctx, &buf); err != nil {
				return err
			}
			if _, err := w.Write(buf.Bytes()[:buf.Len()/2]); err != nil {
				return err
			}
			return errors.New("disk read error")
		}
	})
	srv := httptest.NewServer(env.h)
	defer srv.Close()
	c, err := readapi.New(srv.URL, testToken)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body, err := c.Backup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	if err := store.VerifyBackup(body); err == nil {
		t.Fatal("a backup cut in the middle reads as whole")
	}
	if !strings.Contains(env.logs.String(), "disk read error") {
		t.Errorf("the failure is not logged: %s", env.logs)
	}
}

// TestBackupMatchesOpenAPI validates the route's answers against the
// document (the contract test of the other routes does the same).
func TestBackupMatchesOpenAPI(t *testing.T) {
	st, _ := backupStore(t)
	ok := newEnv(t, func(c *Config) { c.Backup = st.Backup })
	none := newEnv(t, nil)
	failing := newEnv(t, func(c *Config) {
		c.Backup = func(context.Context, io.Writer) error { return errors.New("store closed") }
	})
	openapi3filter.RegisterBodyDecoder(readapi.BackupContentType, openapi3filter.FileBodyDecoder)
	t.Cleanup(func() { openapi3filter.UnregisterBodyDecoder(readapi.BackupContentType) })
	router, err := legacy.NewRouter(loadSpec(t, specWithServer("http://example.com")))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env    *testEnv
		hdr    map[string]string
		status int
	}{
		{ok, bearer(testToken), 200},
		{ok, nil, 401},
		{none, bearer(testToken), 404},
		{failing, bearer(testToken), 500},
	} {
		req := httptest.NewRequest("GET", "/api/v1/backup", nil)
		for k, v := range tc.hdr {
			req.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		tc.env.h.ServeHTTP(w, req)
		if w.Code != tc.status {
			t.Errorf("status %d, want %d", w.Code, tc.status)
			continue
		}
		req.URL.Scheme, req.URL.Host = "http", req.Host
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Fatal(err)
		}
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
			Status:                 w.Code,
			Header:                 w.Header(),
			Body:                   io.NopCloser(bytes.NewReader(w.Body.Bytes())),
			Options:                &openapi3filter.Options{IncludeResponseStatus: true},
		}
		if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
			t.Errorf("%d: does not match openapi.yaml: %v", w.Code, err)
		}
	}
}
