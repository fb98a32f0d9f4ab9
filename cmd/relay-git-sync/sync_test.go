package main

import (
	"path/filepath"
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
