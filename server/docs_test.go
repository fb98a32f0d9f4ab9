package server

import (
	"context"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

func loadSpec(t *testing.T, data []byte) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		t.Fatalf("loading OpenAPI document: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("OpenAPI document invalid: %v", err)
	}
	return doc
}

var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// TestOpenAPICoversEveryRoute: the document is valid OpenAPI 3 and its
// operations are exactly the routes registered in the gin engine.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	if !strings.HasPrefix(string(openapiYAML), "openapi: 3.0.3\n") {
		t.Error("not an OpenAPI 3.0.3 document")
	}
	doc := loadSpec(t, openapiYAML)
	env := newEnv(t, nil)

	inSpec := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			key := method + " " + path
			inSpec[key] = true
			// Security as documented: the read API needs the bearer
			// token, webhooks one of the webhook schemes, the rest nothing.
			var schemes []string
			if op.Security != nil {
				for _, req := range *op.Security {
					for name := range req {
						schemes = append(schemes, name)
					}
				}
			}
			sort.Strings(schemes)
			got := strings.Join(schemes, ",")
			want := ""
			switch {
			case strings.HasSuffix(path, "/restore"), strings.HasSuffix(path, "/changes"):
				want = "writeAuth" // writes into Relay
			case strings.HasPrefix(path, "/api/v1/"):
				want = "bearerAuth"
			case path == "/webhooks":
				want = "standardWebhooks,svixSignature,webhookAuth"
			}
			if got != want {
				t.Errorf("%s: security %q, want %q", key, got, want)
			}
		}
	}
	inGin := map[string]bool{}
	for _, r := range ginEngine(t, env.h).Routes() {
		inGin[r.Method+" "+ginParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	for k := range inGin {
		if !inSpec[k] {
			t.Errorf("route %s is not in openapi.yaml", k)
		}
	}
	for k := range inSpec {
		if !inGin[k] {
			t.Errorf("openapi.yaml documents %s, which is not a route", k)
		}
	}
	if len(inGin) < 12 {
		t.Errorf("only %d routes: %v", len(inGin), inGin)
	}
}

func TestOpenAPIServed(t *testing.T) {
	env := newEnv(t, nil)
	cases := []struct {
		host, proto, want string
	}{
		{"testserver:8080", "", "http://testserver:8080"},
		{"sync.example.com", "https", "https://sync.example.com"},
		{"sync.example.com", "http", "http://sync.example.com"},
		{`evil"host` + "\n  x: y", "", "http://evil\"host\n  x: y"}, // cannot break the YAML
	}
	for _, tc := range cases {
		req := httptest.NewRequest("GET", "/openapi.yaml", nil)
		req.Host = tc.host
		if tc.proto != "" {
			req.Header.Set("X-Forwarded-Proto", tc.proto)
		}
		w := httptest.NewRecorder()
		env.h.ServeHTTP(w, req)
		if w.Code != 200 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/x-yaml" {
			t.Errorf("Content-Type %q", ct)
		}
		if cd := w.Header().Get("Content-Disposition"); cd != "inline; filename=openapi.yaml" {
			t.Errorf("Content-Disposition %q", cd)
		}
		body := w.Body.String()
		for _, s := range []string{"openapi:", "Relay Git Sync API", "/api/pubkey", "/webhooks", "/api/v1/blobs/{id}"} {
			if !strings.Contains(body, s) {
				t.Errorf("served document lacks %q", s)
			}
		}
		doc := loadSpec(t, w.Body.Bytes())
		if len(doc.Servers) != 2 || doc.Servers[0].URL != tc.want || doc.Servers[0].Description != "Current server" ||
			doc.Servers[1].URL != "http://localhost:8000" {
			t.Errorf("host %q: servers %+v %+v, want first %q", tc.host, doc.Servers[0], doc.Servers[1], tc.want)
		}
	}
}

func TestDocsPage(t *testing.T) {
	env := newEnv(t, nil)
	req := httptest.NewRequest("GET", "/docs", nil)
	req.Host = "testserver:8080"
	w := httptest.NewRecorder()
	env.h.ServeHTTP(w, req)
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	page := w.Body.String()
	for _, s := range []string{
		"swagger-ui", "SwaggerUIBundle", "<title>Relay Git Sync API Documentation</title>",
		`href="http://testserver:8080/docs/swagger-ui.css"`,
		`src="http://testserver:8080/docs/swagger-ui-bundle.js"`,
		`url: "http://testserver:8080/openapi.yaml"`,
		"validatorUrl: null",
	} {
		if !strings.Contains(page, s) {
			t.Errorf("page lacks %q:\n%s", s, page)
		}
	}
	for _, s := range []string{"unpkg", "cdn", "https://"} {
		if strings.Contains(page, s) {
			t.Errorf("page refers to %q: it must work offline", s)
		}
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("CSP %q", csp)
	}

	// Every asset the page loads is served from the binary.
	refs := regexp.MustCompile(`(?:src|href)="http://testserver:8080(/[^"]*)"`).FindAllStringSubmatch(page, -1)
	if len(refs) != 2 {
		t.Fatalf("asset references %v", refs)
	}
	for _, ref := range refs {
		aw := env.do("GET", ref[1], nil, nil)
		if aw.Code != 200 || aw.Body.Len() < 100_000 {
			t.Errorf("%s: %d, %d bytes", ref[1], aw.Code, aw.Body.Len())
		}
	}

	// X-Forwarded-Proto upgrades the base URL; the Host is escaped.
	req = httptest.NewRequest("GET", "/docs", nil)
	req.Host = `x"><script>alert(1)</script>`
	req.Header.Set("X-Forwarded-Proto", "https")
	w = httptest.NewRecorder()
	env.h.ServeHTTP(w, req)
	if strings.Contains(w.Body.String(), "<script>alert(1)") || !strings.Contains(w.Body.String(), `"https://x`) {
		t.Errorf("host not escaped or scheme not upgraded:\n%s", w.Body)
	}
}

func TestDocsAssets(t *testing.T) {
	env := newEnv(t, nil)
	cases := map[string]struct{ ctype, contains string }{
		"swagger-ui-bundle.js":             {"text/javascript; charset=utf-8", `PACKAGE_VERSION:"` + swaggerUIVersion + `"`},
		"swagger-ui.css":                   {"text/css; charset=utf-8", ".swagger-ui"},
		"LICENSE":                          {"text/plain; charset=utf-8", "Apache License"},
		"NOTICE":                           {"text/plain; charset=utf-8", "SmartBear"},
		"swagger-ui-bundle.js.LICENSE.txt": {"text/plain; charset=utf-8", "MIT"},
	}
	for name, tc := range cases {
		w := env.do("GET", "/docs/"+name, nil, nil)
		if w.Code != 200 {
			t.Errorf("%s: %d", name, w.Code)
			continue
		}
		if ct := w.Header().Get("Content-Type"); ct != tc.ctype {
			t.Errorf("%s: Content-Type %q", name, ct)
		}
		if !strings.Contains(w.Body.String(), tc.contains) {
			t.Errorf("%s lacks %q", name, tc.contains)
		}
		etag := w.Header().Get("ETag")
		w2 := env.do("GET", "/docs/"+name, nil, map[string]string{"If-None-Match": etag})
		if etag == "" || w2.Code != 304 {
			t.Errorf("%s: ETag %q, conditional GET %d", name, etag, w2.Code)
		}
	}
	for _, p := range []string{"/docs/index.html", "/docs/swagger-ui-bundle.js.map", "/docs/..", "/docs/README.md"} {
		expectJSON(t, env.do("GET", p, nil, nil), 404, `{"error":"not found"}`)
	}
}

// /docs/ (a natural thing to type) leads to the page; the relative
// Location keeps working behind a reverse proxy's path prefix.
func TestDocsTrailingSlashRedirects(t *testing.T) {
	env := newEnv(t, nil)
	w := env.do("GET", "/docs/", nil, nil)
	if w.Code != 301 {
		t.Fatalf("GET /docs/: %d %s, want 301", w.Code, w.Body)
	}
	if loc := w.Header().Get("Location"); loc != "../docs" {
		t.Errorf("Location %q, want ../docs (/docs from /docs/)", loc)
	}
}
