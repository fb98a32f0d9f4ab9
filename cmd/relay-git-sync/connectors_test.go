package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/mirror"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
)

func TestConnectorsInitValidateList(t *testing.T) {
	dataDir := t.TempDir()
	env := map[string]string{"RELAY_GIT_DATA_DIR": dataDir}
	path := filepath.Join(dataDir, "git_connectors.toml")

	_, out, _, err := execute(t, env, "connectors", "list")
	if err != nil || !strings.Contains(out, "does not exist") {
		t.Errorf("list without a file: %v\n%s", err, out)
	}
	if _, _, _, err := execute(t, env, "connectors", "validate"); err == nil {
		t.Error("validate without a file succeeded")
	}
	_, out, _, err = execute(t, env, "connectors", "init")
	if err != nil || !strings.Contains(out, "Wrote "+path) {
		t.Fatalf("init: %v\n%s", err, out)
	}
	if _, _, _, err := execute(t, env, "connectors", "init"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second init: %v", err)
	}
	_, out, _, err = execute(t, env, "connectors", "validate")
	if err != nil || !strings.Contains(out, "1 connector(s), no problems") {
		t.Errorf("validate the example: %v\n%s", err, out)
	}
	_, out, _, err = execute(t, env, "git", "list") // the original's name
	if err != nil || !strings.Contains(out, "git@github.com:example/notes.git") || !strings.Contains(out, "notes") {
		t.Errorf("list: %v\n%s", err, out)
	}

	// Problems are printed with their lines, and validate fails.
	bad := `[[git_connector]]
relay_id = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
shared_folder_id = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
url = "relative/path.git"
branch = "no spaces allowed"

[[git_connector]]
relay_id = "not-a-uuid"
shared_folder_id = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
url = "https://user:s3cret@example.com/x.git"
`
	os.WriteFile(path, []byte(bad), 0o644)
	_, out, _, err = execute(t, env, "connectors", "validate")
	if err == nil {
		t.Errorf("validate of a bad file succeeded:\n%s", out)
	}
	for _, want := range []string{path + ":4: connector 1: url", path + ":5: connector 1: branch", path + ":8: connector 2: relay_id"} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "s3cret") {
		t.Errorf("a password was printed:\n%s", out)
	}
}

// sync pushes each synced folder to its connectors and reports it; a push
// that fails makes sync exit 1, and status shows the failure.
func TestSyncPushesToConnectors(t *testing.T) {
	testreq.Git(t)
	srv := relaytest.NewServer(relaytest.Options{APIKey: "k"})
	defer srv.Close()
	f := srv.NewFolder(srv.NewRelay())
	if _, err := f.AddMarkdown("/notes/plan.md", "# Plan\n"); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	bare := filepath.Join(t.TempDir(), "backup.git")
	if out, err := exec.Command("git", "init", "-q", "--bare", "-b", "main", bare).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	missing := filepath.Join(t.TempDir(), "missing.git")
	conf := fmt.Sprintf(`[[git_connector]]
relay_id = %q
shared_folder_id = %q
url = %q
branch = "relay"
prefix = "vault"

[[git_connector]]
relay_id = %q
shared_folder_id = %q
url = %q
`, f.RelayID(), f.ID(), "file://"+bare, f.RelayID(), f.ID(), missing)
	os.WriteFile(filepath.Join(dataDir, "git_connectors.toml"), []byte(conf), 0o644)
	env := map[string]string{"RELAY_SERVER_URL": srv.URL(), "RELAY_SERVER_API_KEY": "k", "RELAY_GIT_DATA_DIR": dataDir,
		"GIT_AUTHOR_NAME": "Sync Bot", "GIT_AUTHOR_EMAIL": "bot@example.com"}

	_, out, _, err := execute(t, env, "sync", "--relay-id", f.RelayID(), "--folder-id", f.ID())
	if err == nil || !strings.Contains(err.Error(), "1 pushes failed") {
		t.Errorf("sync with a missing remote: %v", err)
	}
	if !strings.Contains(out, "push file://"+bare+" relay (vault/): pushed 1 commit(s) (snapshot 1") || !strings.Contains(out, "push "+missing+" main: failed:") {
		t.Errorf("sync output:\n%s", out)
	}
	git := func(args ...string) string {
		out, err := exec.Command("git", append([]string{"--git-dir", bare}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := git("show", "relay:vault/notes/plan.md"); got != "# Plan" {
		t.Errorf("pushed file: %q", got)
	}
	if got := git("log", "-1", "--format=%an <%ae>|%s", "relay"); got != "Sync Bot <bot@example.com>|Add notes/plan.md" {
		t.Errorf("pushed commit: %q", got)
	}

	_, out, _, err = execute(t, env, "connectors", "status")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("status:\n%s", out)
	for _, want := range []string{"pushed:   snapshot 1 as", "pending:  none (up to date)", "failing (1 attempt(s) in a row)", "pushed:   nothing yet", "pending:  1 snapshot(s), up to 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}

	// While serve holds the store, status reads serve's status file.
	st, err := store.Open(filepath.Join(dataDir, storeDirName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := os.Stat(mirror.StatusFile(dataDir)); err != nil {
		t.Fatalf("no status file: %v", err)
	}
	_, out, _, err = execute(t, env, "connectors", "status")
	if err != nil || !strings.Contains(out, "the store is in use") || !strings.Contains(out, "pushed:   snapshot 1 as") {
		t.Errorf("status while the store is held: %v\n%s", err, out)
	}

	// A second sync: nothing new, the good connector is up to date.
	st.Close()
	os.WriteFile(filepath.Join(dataDir, "git_connectors.toml"), []byte(conf[:strings.LastIndex(conf, "[[git_connector]]")]), 0o644)
	_, out, _, err = execute(t, env, "sync", "--relay-id", f.RelayID(), "--folder-id", f.ID())
	if err != nil || !strings.Contains(out, "up to date (snapshot 1") {
		t.Errorf("second sync: %v\n%s", err, out)
	}
}
