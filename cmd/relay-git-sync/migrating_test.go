package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeNotesOriginalLayout: serve started on a data dir the Python
// relay-git-sync used says, at start, that it does not read state/ and
// repos/ and where to read what to do with them.
func TestServeNotesOriginalLayout(t *testing.T) {
	t.Parallel()
	fx := newServeFixture(t)
	for _, d := range []string{"state/" + fx.folder.RelayID(), "repos/" + fx.folder.RelayID() + "/" + fx.folder.ID()} {
		must(t, os.MkdirAll(filepath.Join(fx.dataDir, d), 0o755))
	}
	p := fx.start(t, newSharedSecret(t))
	logs := p.logs.String()
	for _, want := range []string{"level=INFO", "Python relay-git-sync", "found=\"[state/ repos/]\"", "docs/migrating.md"} {
		if !strings.Contains(logs, want) {
			t.Errorf("serve's log lacks %q:\n%s", want, logs)
		}
	}
}
