package server

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// swaggerUIVersion is the npm swagger-ui-dist version copied into
// swaggerui/ (see swaggerui/README.md).
const swaggerUIVersion = "5.35.0"

//go:embed openapi.yaml
var openapiYAML []byte

//go:embed swaggerui/index.html swaggerui/swagger-ui-bundle.js swaggerui/swagger-ui.css
//go:embed swaggerui/LICENSE swaggerui/NOTICE swaggerui/swagger-ui-bundle.js.LICENSE.txt
var swaggerFS embed.FS

// docsFiles are the files served under /docs/<name>, with their types.
var docsFiles = map[string]string{
	"swagger-ui-bundle.js":             "text/javascript; charset=utf-8",
	"swagger-ui.css":                   "text/css; charset=utf-8",
	"LICENSE":                          "text/plain; charset=utf-8",
	"NOTICE":                           "text/plain; charset=utf-8",
	"swagger-ui-bundle.js.LICENSE.txt": "text/plain; charset=utf-8",
}

type docsAssets struct {
	page  *template.Template
	files map[string][]byte
}

func loadDocs() (*docsAssets, error) {
	page, err := template.ParseFS(swaggerFS, "swaggerui/index.html")
	if err != nil {
		return nil, fmt.Errorf("server: docs page template: %w", err)
	}
	d := &docsAssets{page: page, files: map[string][]byte{}}
	for name := range docsFiles {
		b, err := swaggerFS.ReadFile("swaggerui/" + name)
		if err != nil {
			return nil, fmt.Errorf("server: embedded docs asset: %w", err)
		}
		d.files[name] = b
	}
	return d, nil
}

// docsCSP lets the Swagger UI page load only what the binary serves
// (swagger-ui uses inline styles and data: images; the page's own setup
// script is inline).
const docsCSP = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"

// GET /docs: the Swagger UI page, loading <base>/openapi.yaml.
func (s *server) docsPage(c *gin.Context) {
	base := baseURL(c.Request)
	var buf bytes.Buffer
	err := s.docs.page.Execute(&buf, struct{ Base, SpecURL, Version string }{
		Base: base, SpecURL: base + "/openapi.yaml", Version: swaggerUIVersion,
	})
	if err != nil {
		s.log.Error("rendering /docs", "err", err)
		c.Data(http.StatusInternalServerError, "text/html; charset=utf-8",
			[]byte("<!DOCTYPE html><title>Error</title><h1>Error loading documentation</h1>"))
		return
	}
	c.Header("Content-Security-Policy", docsCSP)
	c.Header("Cache-Control", "no-cache")
	c.Data(http.StatusOK, "text/html; charset=utf-8", buf.Bytes())
}

// GET /docs/: redirects to the page. The Location is relative so that it
// also works behind a reverse proxy that serves this under a path prefix.
func (s *server) docsSlash(c *gin.Context) {
	// Not c.Redirect: net/http would make the Location absolute.
	c.Header("Location", "../docs")
	c.Status(http.StatusMovedPermanently)
}

// GET /docs/:file: an embedded Swagger UI asset.
func (s *server) docsAsset(c *gin.Context) {
	name := c.Param("file")
	ctype, ok := docsFiles[name]
	if !ok {
		c.JSON(http.StatusNotFound, errBody("not found"))
		return
	}
	c.Header("Content-Type", ctype)
	c.Header("Cache-Control", "public, max-age=86400")
	c.Header("ETag", `"swagger-ui-dist-`+swaggerUIVersion+`-`+name+`"`)
	http.ServeContent(c.Writer, c.Request, name, time.Time{}, bytes.NewReader(s.docs.files[name]))
}

// GET /openapi.yaml: the embedded OpenAPI document, with the request's
// base URL as the first server.
func (s *server) openapi(c *gin.Context) {
	c.Header("Content-Disposition", "inline; filename=openapi.yaml")
	c.Header("Cache-Control", "no-cache")
	c.Data(http.StatusOK, "application/x-yaml", specWithServer(baseURL(c.Request)))
}

// specWithServer inserts base as the first entry of the document's
// top-level servers list. The URL is written as a JSON string, which is a
// valid YAML double-quoted scalar whatever the Host header held.
func specWithServer(base string) []byte {
	quoted, _ := json.Marshal(base) // a string always marshals
	entry := "  - url: " + string(quoted) + "\n    description: Current server\n"
	const marker = "\nservers:\n"
	spec := string(openapiYAML)
	i := strings.Index(spec, marker)
	if i < 0 { // guarded by a test
		return openapiYAML
	}
	i += len(marker)
	return []byte(spec[:i] + entry + spec[i:])
}
