package server

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// TestResponsesMatchOpenAPI sends requests covering every operation and
// most answers, and validates each response (status, content type, headers
// and body schema) against the served OpenAPI document.
func TestResponsesMatchOpenAPI(t *testing.T) {
	env := newEnv(t, func(c *Config) {
		c.PublicKey = func() (string, error) { return "ssh-ed25519 AAAAC3Nza test", nil }
	})
	noKey := newEnv(t, nil)
	sick := newEnv(t, func(c *Config) {
		c.Health = func(context.Context) error { return errors.New("store closed") }
		c.PublicKey = func() (string, error) { return "", errors.New("bad key") }
	})
	failing := newEnv(t, nil)
	failing.sink.err = errors.New("disk full")
	failing.rd.err = errFakeStore
	held, _ := heldEnv(t)
	packs := newEnv(t, func(c *Config) {
		c.Packs = func(context.Context, store.FolderID) (*FolderPack, error) {
			dir := t.TempDir()
			var files [2]*os.File
			for i, data := range []string{"PACK\x00\x00\x00\x02\x00\x00\x00\x00" + strings.Repeat("p", 20), "index"} {
				p := filepath.Join(dir, strconv.Itoa(i))
				if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
					return nil, err
				}
				f, err := os.Open(p)
				if err != nil {
					return nil, err
				}
				files[i] = f
			}
			return &FolderPack{Seq: 3, Commit: strings.Repeat("c", 40), Pack: files[0], Index: files[1]}, nil
		}
	})
	packPath := "/api/v1/folders/" + testRelay + "/" + testDoc + "/pack"
	heldPath := "/api/v1/folders/" + heldTestFolder.Relay + "/" + heldTestFolder.Folder

	// Bodies that are documents, not data, are checked as strings (kin's
	// YAML decoder would parse the OpenAPI document itself).
	for _, ct := range []string{"text/html", "text/css", "text/javascript", "application/x-yaml", "application/x-ndjson", "application/vnd.relay-git-sync.pack"} {
		prev := openapi3filter.RegisteredBodyDecoder(ct)
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
		t.Cleanup(func() {
			if prev != nil {
				openapi3filter.RegisterBodyDecoder(ct, prev)
			} else {
				openapi3filter.UnregisterBodyDecoder(ct)
			}
		})
	}
	spec := loadSpec(t, specWithServer("http://example.com"))
	router, err := legacy.NewRouter(spec)
	if err != nil {
		t.Fatal(err)
	}
	good := webhookBody(testCID, "2026-01-01")
	blob := "/api/v1/blobs/ce013625030ba8dba906f756967f9e9ca394464a"
	type req struct {
		env    *testEnv
		method string
		path   string
		body   []byte
		hdr    map[string]string
		status int
	}
	reqs := []req{
		{env, "POST", "/webhooks", good, bearer(testSecret), 200},
		{env, "POST", "/webhooks", []byte("{"), bearer(testSecret), 400},
		{env, "POST", "/webhooks", []byte(`{"payload":{}}`), bearer(testSecret), 400},
		{env, "POST", "/webhooks", good, nil, 401},
		{env, "POST", "/webhooks", padded(2 << 20), bearer(testSecret), 413},
		{failing, "POST", "/webhooks", good, bearer(testSecret), 500},
		{env, "GET", "/health", nil, nil, 200},
		{env, "HEAD", "/health", nil, nil, 200},
		{sick, "GET", "/health", nil, nil, 503},
		{sick, "HEAD", "/health", nil, nil, 503},
		{env, "GET", "/api/pubkey", nil, nil, 200},
		{noKey, "GET", "/api/pubkey", nil, nil, 400},
		{sick, "GET", "/api/pubkey", nil, nil, 500},
		{env, "GET", "/docs", nil, nil, 200},
		{env, "GET", "/docs/swagger-ui.css", nil, nil, 200},
		{env, "GET", "/docs/swagger-ui-bundle.js", nil, nil, 200},
		{env, "GET", "/docs/swagger-ui.css", nil, map[string]string{"If-None-Match": `"swagger-ui-dist-` + swaggerUIVersion + `-swagger-ui.css"`}, 304},
		{env, "GET", "/docs/nope.js", nil, nil, 404},
		{env, "GET", "/docs/LICENSE", nil, nil, 200},
		{env, "GET", "/openapi.yaml", nil, nil, 200},
		{env, "GET", "/metrics", nil, nil, 200},
		{env, "GET", "/api/v1/folders", nil, bearer(testToken), 200},
		{env, "GET", "/api/v1/folders", nil, nil, 401},
		{failing, "GET", "/api/v1/folders", nil, bearer(testToken), 500},
		{env, "GET", snapPath, nil, bearer(testToken), 200},
		{env, "GET", snapPath + "?after=1", nil, bearer(testToken), 200},
		{env, "GET", "/api/v1/folders/" + testRelay + "/" + testMiddle + "/snapshots", nil, bearer(testToken), 200},
		{env, "GET", unknownPath + "/snapshots", nil, bearer(testToken), 404},
		{env, "GET", snapPath + "/latest", nil, bearer(testToken), 200},
		{env, "GET", snapPath + "/1", nil, bearer(testToken), 200},
		{env, "GET", snapPath + "/9", nil, bearer(testToken), 404},
		{env, "GET", blob, nil, bearer(testToken), 200},
		{env, "GET", blob, nil, map[string]string{"Authorization": "Bearer " + testToken, "If-None-Match": `"ce013625030ba8dba906f756967f9e9ca394464a"`}, 304},
		{env, "GET", "/api/v1/blobs/" + strings.Repeat("a", 40), nil, bearer(testToken), 404},
		{failing, "GET", blob, nil, bearer(testToken), 500},
		{env, "GET", histPath, nil, bearer(testToken), 200},
		{env, "GET", histPath + "?after=x", nil, bearer(testToken), 400},
		{env, "GET", "/api/v1/folders/" + testRelay + "/" + testMiddle + "/history", nil, bearer(testToken), 200},
		{env, "GET", unknownPath + "/history", nil, bearer(testToken), 404},
		{failing, "GET", histPath, nil, bearer(testToken), 500},
		{packs, "GET", packPath, nil, bearer(testToken), 200},
		{env, "GET", packPath, nil, bearer(testToken), 404},
		{packs, "GET", packPath, nil, nil, 401},
		{packs, "GET", "/api/v1/folders/x/" + testDoc + "/pack", nil, bearer(testToken), 400},
		{env, "GET", "/api/v1/history-config", nil, bearer(testToken), 200},
		{env, "GET", "/api/v1/history-config", nil, nil, 401},
		{failing, "GET", "/api/v1/history-config", nil, bearer(testToken), 500},
		{held, "GET", "/api/v1/held", nil, bearer(testToken), 200},
		{held, "GET", "/health", nil, nil, 200},
		{held, "GET", "/api/v1/held", nil, nil, 401},
		{env, "GET", "/api/v1/held", nil, bearer(testToken), 404},
		{held, "POST", "/api/v1/folders/x/" + heldTestFolder.Folder + "/held/release", nil, bearer(testToken), 400},
		{held, "POST", heldPath + "/held/release", nil, bearer(testToken), 200},
		{held, "POST", heldPath + "/held/release", nil, bearer(testToken), 404},
		{held, "POST", heldPath + "/held/drop", nil, nil, 401},
		{held, "POST", heldPath + "/held/drop", nil, bearer(testToken), 404},
	}
	for _, r := range reqs {
		name := r.method + " " + r.path
		var body io.Reader
		if r.body != nil {
			body = strings.NewReader(string(r.body))
		}
		hreq := httptest.NewRequest(r.method, r.path, body)
		for k, v := range r.hdr {
			hreq.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		r.env.h.ServeHTTP(w, hreq)
		if w.Code != r.status {
			t.Errorf("%s: status %d, want %d (%s)", name, w.Code, r.status, w.Body)
			continue
		}
		// The router matches the document's servers against the URL.
		hreq.URL.Scheme, hreq.URL.Host = "http", hreq.Host
		route, params, err := router.FindRoute(hreq)
		if err != nil {
			t.Errorf("%s: not in the document: %v", name, err)
			continue
		}
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: hreq, PathParams: params, Route: route},
			Status:                 w.Code,
			Header:                 w.Header(),
			Body:                   io.NopCloser(strings.NewReader(w.Body.String())),
			Options:                &openapi3filter.Options{IncludeResponseStatus: true},
		}
		if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
			t.Errorf("%s -> %d: response does not match openapi.yaml: %v", name, w.Code, err)
		}
	}
}
