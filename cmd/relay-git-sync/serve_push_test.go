package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/sshdtest"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// TestServePushesOverSSH is the whole path: a folder edited through the
// fake Relay Server, its webhook, serve's snapshot, and the commit on a
// bare repository reached over real SSH with the key from SSH_PRIVATE_KEY;
// the commits are exactly history.Linear's for the recorded snapshots.
func TestServePushesOverSSH(t *testing.T) {
	sshd := sshdtest.Start(t)
	bare := sshdtest.BareRepo(t, sshd.User)
	relaySrv := relaytest.NewServer(relaytest.Options{APIKey: "relay-key"})
	defer relaySrv.Close()
	f := relaySrv.NewFolder(relaySrv.NewRelay())
	docID, err := f.AddMarkdown("/notes/a.md", "# A\nfirst\n")
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	conf := fmt.Sprintf("[[git_connector]]\nrelay_id = %q\nshared_folder_id = %q\nurl = %q\nknown_hosts = %q\n",
		f.RelayID(), f.ID(), sshd.URL(bare), sshd.WriteKnownHosts(t))
	if err := os.WriteFile(filepath.Join(dataDir, defaultConnectorsFile), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"SSH_PRIVATE_KEY": sshd.ClientPEM,
		"GIT_AUTHOR_NAME": "Relay Bot", "GIT_AUTHOR_EMAIL": "relay@example.com",
	}
	logs := &syncBuffer{}
	opts := newGlobalOptions(func(k string) string { return env[k] }, io.Discard, logs)
	opts.DataDir = dataDir
	opts.GitConfigFile = filepath.Join(dataDir, defaultConnectorsFile)
	opts.RelayServerURL, opts.RelayServerAPIKey = relaySrv.URL(), "relay-key"
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const secret = "a-webhook-secret-for-the-push-test"
	ready := make(chan string, 1)
	so := &serveOptions{host: "127.0.0.1", commitInterval: 0.2, maxDelay: 2 * time.Second, webhookSecret: secret,
		shutdownTimeout: 10 * time.Second, ready: ready}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, opts, so) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	defer func() {
		stop()
		if t.Failed() {
			t.Logf("serve log:\n%s\nsshd log:\n%s", logs, sshd.Log())
		}
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start within 30 s")
	}

	waitContent := func(want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			if got, err := sshdtest.TryGit(bare, nil, "show", "main:notes/a.md"); err == nil && got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("main:notes/a.md never became %q", want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The reconcile at start records the folder, and the connector gets it.
	waitContent("# A\nfirst")
	// An edit and its webhook.
	if err := f.EditMarkdown("/notes/a.md", "# A\nsecond\n"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, body, err := relaySrv.SendWebhook(context.Background(), "http://"+addr+"/webhooks", secret,
		relaytest.Webhook{DocID: relay.CompoundID(f.RelayID(), docID), Time: time.Now().UTC(), User: "alice"})
	if err != nil || code != http.StatusOK {
		t.Fatalf("webhook: %d %s %v", code, body, err)
	}
	waitContent("# A\nsecond")
	t.Logf("webhook → commit on the SSH remote: %v (quiet period 0.2 s)", time.Since(start).Round(time.Millisecond))
	stop()

	// The pushed commits are the folder's deterministic history.
	st, err := store.Open(filepath.Join(dataDir, storeDirName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var snaps []*store.Snapshot
	folder := store.FolderID{Relay: f.RelayID(), Folder: f.ID()}
	if err := st.Walk(folder, 0, func(s *store.Snapshot) error { snaps = append(snaps, s); return nil }); err != nil {
		t.Fatal(err)
	}
	author, committer := history.IdentityFromEnv(func(k string) string { return env[k] })
	ids, err := history.New(history.Config{Author: author, Committer: committer}, memory.NewStorage()).Linear(snaps, [20]byte{})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, id := range ids {
		want = append(want, id.String())
	}
	got := sshdtest.Git(t, bare, nil, "rev-list", "--reverse", "main")
	if got != strings.Join(want, "\n") {
		t.Errorf("remote history:\n%s\nwant history.Linear's:\n%s", got, strings.Join(want, "\n"))
	}
	if an := sshdtest.Git(t, bare, nil, "log", "-1", "--format=%an <%ae>", "main"); an != "Relay Bot <relay@example.com>" {
		t.Errorf("author %q", an)
	}
	if strings.Contains(logs.String(), "OPENSSH PRIVATE KEY") {
		t.Error("the private key appeared in the log")
	}
}
