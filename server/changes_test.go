package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
	legacy "github.com/getkin/kin-openapi/routers/legacy"

	"github.com/relay-git-sync/relay-git-sync/internal/ingest"
	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/writeback"
)

const changesPath = "/api/v1/folders/6ba7b810-9dad-11d1-80b4-00c04fd430c8/f47ac10b-58cc-4372-a567-0e02b2c3d479/changes"

// The changes route (git push) writes only with --allow-writes and the
// write token; its answers, refusals and failures are what openapi.yaml
// says, and the contents arrive as bytes.
func TestChangesRoute(t *testing.T) {
	var got []readapi.ChangesRequest
	hook := func(err error) func(context.Context, store.FolderID, readapi.ChangesRequest) (*readapi.ChangesResult, error) {
		return func(_ context.Context, f store.FolderID, req readapi.ChangesRequest) (*readapi.ChangesResult, error) {
			got = append(got, req)
			return &readapi.ChangesResult{Actions: []readapi.RestoreAction{{Op: "edit", Path: "a.md"}}, Written: []string{"a.md"}}, err
		}
	}
	restore := func(context.Context, store.FolderID, readapi.RestoreRequest) (*readapi.RestoreResult, error) {
		return nil, errors.New("not called")
	}
	on := func(err error) *testEnv {
		return newEnv(t, func(c *Config) { c.Restore, c.Changes, c.WriteToken = restore, hook(err), testWriteToken })
	}
	body := []byte(`{"changes":[{"path":"a.md","kind":"markdown","data":"aGVsbG8="},{"path":"b.md","delete":true}],"expect_seq":4}`)

	spec := loadSpec(t, specWithServer("http://example.com"))
	router, err := legacy.NewRouter(spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		env    *testEnv
		body   []byte
		token  string
		status int
		want   string
	}{
		{"writes off", newEnv(t, nil), body, testWriteToken, 403, "--allow-writes"},
		{"read token", on(nil), body, testToken, 403, "may not write"},
		{"no token", on(nil), body, "", 401, ""},
		{"wrong token", on(nil), body, "wrong", 401, ""},
		{"bad body", on(nil), []byte(`{"changes": 3}`), testWriteToken, 400, "not a changes request"},
		{"written", on(nil), body, testWriteToken, 200, `"written":["a.md"]`},
		{"stale", on(fmt.Errorf("snapshot 5 now: %w", readapi.ErrStale)), body, testWriteToken, 409, "snapshot 5 now"},
		{"refused", on(fmt.Errorf("x: symlink: %w", writeback.ErrRefused)), body, testWriteToken, 422, "symlink"},
		{"unknown folder", on(fmt.Errorf("no such folder: %w", store.ErrNotFound)), body, testWriteToken, 404, "no such folder"},
		{"half way", on(errors.New("b.md: Relay Server down")), body, testWriteToken, 502, "written before the failure: a.md"},
		{"elsewhere", on(ingest.ErrNotOwner), body, testWriteToken, 503, "another serve instance"},
	} {
		hreq := httptest.NewRequest(http.MethodPost, changesPath, strings.NewReader(string(c.body)))
		hreq.Header.Set("Content-Type", "application/json")
		if c.token != "" {
			hreq.Header.Set("Authorization", "Bearer "+c.token)
		}
		w := httptest.NewRecorder()
		c.env.h.ServeHTTP(w, hreq)
		if w.Code != c.status || !strings.Contains(w.Body.String(), c.want) {
			t.Errorf("%s: %d %s, want %d with %q", c.name, w.Code, w.Body, c.status, c.want)
			continue
		}
		hreq.URL.Scheme, hreq.URL.Host = "http", hreq.Host
		route, params, err := router.FindRoute(hreq)
		if err != nil {
			t.Fatalf("%s: not in openapi.yaml: %v", c.name, err)
		}
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: hreq, PathParams: params, Route: route},
			Status:                 w.Code,
			Header:                 w.Header(),
			Body:                   io.NopCloser(strings.NewReader(w.Body.String())),
			Options:                &openapi3filter.Options{IncludeResponseStatus: true},
		}
		if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
			t.Errorf("%s -> %d: response does not match openapi.yaml: %v", c.name, w.Code, err)
		}
	}
	if len(got) != 6 {
		t.Fatalf("the hook ran %d times, want 6 (only for authorized, well-formed requests)", len(got))
	}
	req := got[0]
	if req.ExpectSeq != 4 || len(req.Changes) != 2 || string(req.Changes[0].Data) != "hello" || !req.Changes[1].Delete {
		t.Errorf("the hook got %+v", req)
	}
}
