package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/ingest"
	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/writeback"
)

const (
	testWriteToken = "write-token-0123456789"
	restorePath    = "/api/v1/folders/6ba7b810-9dad-11d1-80b4-00c04fd430c8/f47ac10b-58cc-4372-a567-0e02b2c3d479/restore"
)

// The restore route writes only with --allow-writes (a Restore hook) and
// the write token; the read token never writes.
func TestRestoreAuthorization(t *testing.T) {
	var calls int
	hook := func(_ context.Context, f store.FolderID, req readapi.RestoreRequest) (*readapi.RestoreResult, error) {
		calls++
		return &readapi.RestoreResult{Seq: req.Seq, DryRun: req.DryRun, Actions: []readapi.RestoreAction{{Op: "edit", Path: "a.md"}}, Written: []string{"a.md"}}, nil
	}
	body := []byte(`{"seq": 3, "paths": ["a.md"]}`)

	off := newEnv(t, nil)
	for _, tok := range []string{testToken, testWriteToken, ""} {
		if w := off.do(http.MethodPost, restorePath, body, bearer(tok)); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "--allow-writes") {
			t.Errorf("writes off, token %q: %d %s", tok, w.Code, w.Body)
		}
	}
	noToken := newEnv(t, func(c *Config) { c.Restore = hook })
	if w := noToken.do(http.MethodPost, restorePath, body, bearer(testWriteToken)); w.Code != http.StatusForbidden {
		t.Errorf("no write token configured: %d", w.Code)
	}

	env := newEnv(t, func(c *Config) { c.Restore, c.WriteToken = hook, testWriteToken })
	if w := env.do(http.MethodPost, restorePath, body, bearer(testToken)); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "may not write") {
		t.Errorf("read token: %d %s", w.Code, w.Body)
	}
	if w := env.do(http.MethodPost, restorePath, body, bearer("wrong")); w.Code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", w.Code)
	}
	if w := env.do(http.MethodPost, restorePath, body, nil); w.Code != http.StatusUnauthorized {
		t.Errorf("no token: %d", w.Code)
	}
	if calls != 0 {
		t.Fatalf("the hook ran %d times for refused requests", calls)
	}
	w := env.do(http.MethodPost, restorePath, body, map[string]string{"Authorization": "bearer " + testWriteToken, "Content-Type": "application/json"})
	expectJSON(t, w, http.StatusOK, `{"seq":3,"dry_run":false,"actions":[{"op":"edit","path":"a.md"}],"written":["a.md"]}`)
	if w := env.do(http.MethodPost, restorePath, []byte(`{"seq": "x"`), bearer(testWriteToken)); w.Code != http.StatusBadRequest {
		t.Errorf("malformed body: %d", w.Code)
	}

	if _, err := newServer(Config{WebhookSecret: testSecret, APIToken: "same-token-123456", WriteToken: "same-token-123456", Events: &fakeSink{}, Source: newTestSource(t)}); err == nil {
		t.Error("a write token equal to the read token was accepted")
	}
}

func TestRestoreErrors(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		want   string
	}{
		{fmt.Errorf("snapshot 9: %w", store.ErrNotFound), http.StatusNotFound, "snapshot 9"},
		{fmt.Errorf("x.md: not in snapshot 3: %w", writeback.ErrRefused), http.StatusUnprocessableEntity, "not in snapshot 3"},
		{errors.New("b.md: writing its document: Relay Server down"), http.StatusBadGateway, "written before the failure: a.md"},
		{ingest.ErrNotOwner, http.StatusServiceUnavailable, "another serve instance"},
	} {
		env := newEnv(t, func(cfg *Config) {
			cfg.WriteToken = testWriteToken
			cfg.Restore = func(context.Context, store.FolderID, readapi.RestoreRequest) (*readapi.RestoreResult, error) {
				return &readapi.RestoreResult{Written: []string{"a.md"}}, c.err
			}
		})
		w := env.do(http.MethodPost, restorePath, []byte(`{}`), bearer(testWriteToken))
		if w.Code != c.status || !strings.Contains(w.Body.String(), c.want) {
			t.Errorf("%v: %d %s", c.err, w.Code, w.Body)
		}
	}
}
