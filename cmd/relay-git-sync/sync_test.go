package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// `sync` records the identity of its environment in the data dir.
func TestSyncRecordsHistoryConfig(t *testing.T) {
	srv := relaytest.NewServer(relaytest.Options{APIKey: "k"})
	defer srv.Close()
	f := srv.NewFolder(srv.NewRelay())
	if _, err := f.AddMarkdown("/a.md", "a\n"); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	env := map[string]string{"RELAY_SERVER_URL": srv.URL(), "RELAY_SERVER_API_KEY": "k", "RELAY_GIT_DATA_DIR": dataDir,
		"GIT_COMMITTER_NAME": "Sync Job", "GIT_COMMITTER_EMAIL": "sync@example.com"}
	if _, _, _, err := execute(t, env, "sync", "--relay-id", f.RelayID(), "--folder-id", f.ID()); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dataDir, storeDirName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	raw, err := st.HistoryConfig()
	if err != nil || string(raw) != `{"author":{"name":"Relay Git Sync","email":"relay-git-sync@noreply.invalid"},"committer":{"name":"Sync Job","email":"sync@example.com"}}` {
		t.Errorf("recorded %s, %v", raw, err)
	}
}

// serve's secrets: a flag and its -file together, an empty file, and a
// secret of only white space are refused before anything is created.
func TestServeSecretSettings(t *testing.T) {
	dir := t.TempDir()
	empty, spaces := filepath.Join(dir, "empty"), filepath.Join(dir, "spaces")
	must(t, os.WriteFile(empty, []byte("\n"), 0o600))
	must(t, os.WriteFile(spaces, []byte("   \n"), 0o600))
	dataDir := filepath.Join(dir, "data")
	env := map[string]string{"RELAY_SERVER_URL": "http://127.0.0.1:1", "RELAY_GIT_DATA_DIR": dataDir}
	for want, args := range map[string][]string{
		"--webhook-secret and --webhook-secret-file both given": {"--webhook-secret", "x", "--webhook-secret-file", spaces},
		"--api-token-file " + empty + " is empty":               {"--webhook-secret-file", spaces, "--api-token-file", empty},
		"only white space": {"--webhook-secret-file", spaces},
	} {
		_, _, _, err := execute(t, env, append([]string{"serve", "--port", "0"}, args...)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("serve %v: %v, want %q", args, err, want)
		}
	}
	env["WEBHOOK_SECRET"] = "  "
	if _, _, _, err := execute(t, env, "serve", "--port", "0"); err == nil || !strings.Contains(err.Error(), "only white space") {
		t.Errorf("serve with WEBHOOK_SECRET of spaces: %v", err)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("a refused serve created the data dir: %v", err)
	}
}
