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

	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/sshdtest"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// heldServe is a running serve with the mass-deletion guard at its
// default, pushing one folder to a local bare repository.
type heldServe struct {
	url  string
	logs *syncBuffer
	stop func()
}

const heldSecret = "a-webhook-secret-for-the-held-test"

func startHeldServe(t *testing.T, relaySrv *relaytest.Server, dataDir string) *heldServe {
	t.Helper()
	logs := &syncBuffer{}
	opts := newGlobalOptions(func(string) string { return "" }, io.Discard, logs)
	opts.DataDir = dataDir
	opts.GitConfigFile = filepath.Join(dataDir, defaultConnectorsFile)
	opts.RelayServerURL, opts.RelayServerAPIKey = relaySrv.URL(), "relay-key"
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ready := make(chan string, 1)
	so := &serveOptions{host: "127.0.0.1", commitInterval: 0.2, maxDelay: 2 * time.Second, webhookSecret: heldSecret,
		apiToken: testAPIToken, shutdownTimeout: 10 * time.Second, ready: ready, holdDeletions: store.DefaultHoldPolicy}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, opts, so) }()
	s := &heldServe{logs: logs}
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if t.Failed() {
			t.Logf("serve log:\n%s", logs)
		}
	}
	t.Cleanup(s.stop)
	select {
	case addr := <-ready:
		s.url = "http://" + addr
	case err := <-done:
		t.Fatalf("serve did not start: %v\n%s", err, logs)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start within 30 s")
	}
	return s
}

// waitFor polls cond for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// remoteCount is the number of files on the bare repository's main (-1:
// no branch yet).
func remoteCount(bare, rev string) int {
	out, err := sshdtest.TryGit(bare, nil, "ls-tree", "-r", "--name-only", rev)
	if err != nil {
		return -1
	}
	if out == "" {
		return 0
	}
	return len(strings.Split(out, "\n"))
}

// TestServeHoldsMassDeletion is the scenario end to end: a folder
// of 20 files loses 15 in one burst; serve records the snapshot (the read
// API shows it) but the connector's bare repository keeps the 20 files —
// across a restart — until `held release`; then it gets the deletion.
// Then `held drop`: the remote never gets the emptied tree, and gets the
// next good snapshot.
func TestServeHoldsMassDeletion(t *testing.T) {
	relaySrv := relaytest.NewServer(relaytest.Options{APIKey: "relay-key"})
	defer relaySrv.Close()
	f := relaySrv.NewFolder(relaySrv.NewRelay())
	for i := 0; i < 20; i++ {
		if _, err := f.AddMarkdown(fmt.Sprintf("/n%02d.md", i), fmt.Sprintf("note %d\n", i)); err != nil {
			t.Fatal(err)
		}
	}
	bare := sshdtest.BareRepo(t, sshdtest.User{})
	dataDir := t.TempDir()
	conf := fmt.Sprintf("[[git_connector]]\nrelay_id = %q\nshared_folder_id = %q\nurl = %q\n", f.RelayID(), f.ID(), bare)
	if err := os.WriteFile(filepath.Join(dataDir, defaultConnectorsFile), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	folder := f.RelayID() + "/" + f.ID()
	client := map[string]string{envReadToken: testAPIToken}
	burst := func(s *heldServe, change func(path string) error) {
		t.Helper()
		for i := 5; i < 20; i++ {
			if err := change(fmt.Sprintf("/n%02d.md", i)); err != nil {
				t.Fatal(err)
			}
		}
		code, body, err := relaySrv.SendWebhook(context.Background(), s.url+"/webhooks", heldSecret,
			relaytest.Webhook{DocID: relay.CompoundID(f.RelayID(), f.ID()), Time: time.Now().UTC()})
		if err != nil || code != http.StatusOK {
			t.Fatalf("webhook: %d %s %v", code, body, err)
		}
	}
	restore := func(path string) error {
		_, err := f.AddMarkdown(path, "restored "+path+"\n")
		return err
	}

	s := startHeldServe(t, relaySrv, dataDir)
	waitFor(t, "the remote has the 20 files", func() bool { return remoteCount(bare, "main") == 20 })
	burst(s, f.Delete)
	waitFor(t, "the mirror holds snapshot 2", func() bool { return strings.Contains(s.logs.String(), "held_from=2") })
	if n := remoteCount(bare, "main"); n != 20 {
		t.Fatalf("remote has %d files after the held deletion, want 20", n)
	}
	if !strings.Contains(s.logs.String(), "mass deletion held") {
		t.Error("no warning in the log")
	}
	// connectors status, from the status file serve keeps.
	waitFor(t, "connectors status shows the hold", func() bool {
		_, out, _, err := execute(t, nil, "--data-dir", dataDir, "connectors", "status")
		return err == nil && strings.Contains(out, "held:     snapshot 2 and later")
	})
	code, body, err := (&serveProc{url: s.url, apiToken: testAPIToken}).get("/metrics")
	if err != nil || code != 200 || !strings.Contains(string(body), "relay_git_sync_snapshots_held_total 1") || !strings.Contains(string(body), "relay_git_sync_held_folders 1") {
		t.Errorf("metrics: %d %v\n%s", code, err, body)
	}
	// Reads show the deletion.
	_, out, _, err := execute(t, client, "snapshots", "--server", s.url, folder)
	if err != nil || !strings.Contains(out, "15 deleted") {
		t.Errorf("snapshots: %v\n%s", err, out)
	}

	// Restart: still held; the data dir answers while serve is stopped.
	s.stop()
	_, out, _, err = execute(t, nil, "--data-dir", dataDir, "held", "list")
	if err != nil || !strings.Contains(out, folder) || !strings.Contains(out, "15 of 20 files") {
		t.Fatalf("held list on the data dir: %v\n%s", err, out)
	}
	s = startHeldServe(t, relaySrv, dataDir)
	waitFor(t, "the restarted mirror holds snapshot 2", func() bool { return strings.Contains(s.logs.String(), "held_from=2") })
	if n := remoteCount(bare, "main"); n != 20 {
		t.Fatalf("remote has %d files after restart, want 20", n)
	}
	_, out, _, err = execute(t, client, "held", "list", "--server", s.url)
	if err != nil || !strings.Contains(out, folder) {
		t.Fatalf("held list --server: %v\n%s", err, out)
	}
	if _, _, _, err := execute(t, nil, "--data-dir", dataDir, "held", "release", folder); err == nil || !strings.Contains(err.Error(), "--server") {
		t.Errorf("release on a data dir serve holds: %v", err)
	}
	_, out, _, err = execute(t, client, "held", "release", "--server", s.url, folder)
	if err != nil || !strings.Contains(out, "released snapshot 2") {
		t.Fatalf("held release: %v\n%s", err, out)
	}
	waitFor(t, "the remote gets the deletion", func() bool { return remoteCount(bare, "main") == 5 })
	if _, _, _, err := execute(t, client, "held", "release", "--server", s.url, folder); err == nil || !strings.Contains(err.Error(), "no held snapshots") {
		t.Errorf("second release: %v", err)
	}

	// Restored, emptied again (held), dropped, restored: the remote never
	// has the second emptied tree.
	burst(s, restore) // 3
	waitFor(t, "the remote gets the restored files", func() bool { return remoteCount(bare, "main") == 20 })
	burst(s, f.Delete) // 4
	waitFor(t, "the mirror holds snapshot 4", func() bool { return strings.Contains(s.logs.String(), "held_from=4") })
	_, out, _, err = execute(t, client, "held", "drop", "--server", s.url, folder)
	if err != nil || !strings.Contains(out, "dropped snapshots 4–4") {
		t.Fatalf("held drop: %v\n%s", err, out)
	}
	burst(s, restore) // 5
	waitFor(t, "the remote gets snapshot 5", func() bool {
		msg, err := sshdtest.TryGit(bare, nil, "log", "-1", "--format=%B", "main")
		return err == nil && strings.Contains(msg, "#5")
	})
	if n := remoteCount(bare, "main"); n != 20 {
		t.Errorf("remote has %d files at snapshot 5, want 20", n)
	}
	if n := remoteCount(bare, "main^"); n != 20 {
		t.Errorf("the parent of snapshot 5's commit has %d files, want 20 (snapshot 3's)", n)
	}
	if log, _ := sshdtest.TryGit(bare, nil, "log", "--format=%B", "main"); strings.Contains(log, "#4\n") {
		t.Error("the dropped snapshot 4 reached the remote")
	}
}

// `sync` holds a mass deletion too (and says so), `held release` on the
// data dir lets the next sync push it, and --hold-deletions 0 pushes it
// at once.
func TestSyncHoldsMassDeletion(t *testing.T) {
	for _, off := range []bool{false, true} {
		t.Run(fmt.Sprintf("off=%v", off), func(t *testing.T) {
			srv := relaytest.NewServer(relaytest.Options{APIKey: "k"})
			defer srv.Close()
			f := srv.NewFolder(srv.NewRelay())
			for i := 0; i < 20; i++ {
				if _, err := f.AddMarkdown(fmt.Sprintf("/n%02d.md", i), fmt.Sprintf("note %d\n", i)); err != nil {
					t.Fatal(err)
				}
			}
			bare := sshdtest.BareRepo(t, sshdtest.User{})
			dataDir := t.TempDir()
			conf := fmt.Sprintf("[[git_connector]]\nrelay_id = %q\nshared_folder_id = %q\nurl = %q\n", f.RelayID(), f.ID(), bare)
			if err := os.WriteFile(filepath.Join(dataDir, defaultConnectorsFile), []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			env := map[string]string{"RELAY_SERVER_URL": srv.URL(), "RELAY_SERVER_API_KEY": "k", "RELAY_GIT_DATA_DIR": dataDir}
			args := []string{"sync", "--relay-id", f.RelayID(), "--folder-id", f.ID()}
			if off {
				args = append(args, "--hold-deletions", "0")
			}
			if _, out, _, err := execute(t, env, args...); err != nil || remoteCount(bare, "main") != 20 {
				t.Fatalf("first sync: %v\n%s", err, out)
			}
			for i := 5; i < 20; i++ {
				if err := f.Delete(fmt.Sprintf("/n%02d.md", i)); err != nil {
					t.Fatal(err)
				}
			}
			_, out, stderr, err := execute(t, env, args...)
			if err != nil {
				t.Fatalf("sync: %v\n%s", err, out)
			}
			if off {
				if n := remoteCount(bare, "main"); n != 5 || strings.Contains(out, "held") {
					t.Fatalf("with the guard off the remote has %d files, want 5\n%s", n, out)
				}
				return
			}
			if !strings.Contains(out, "snapshot 2 and later are held") || !strings.Contains(stderr, "mass deletion held") {
				t.Errorf("sync output:\n%s\nlog:\n%s", out, stderr)
			}
			if n := remoteCount(bare, "main"); n != 20 {
				t.Fatalf("remote has %d files after the held deletion, want 20", n)
			}
			if _, out, _, err := execute(t, env, "connectors", "status"); err != nil || !strings.Contains(out, "held:     snapshot 2 and later") {
				t.Errorf("connectors status: %v\n%s", err, out)
			}
			_, out, _, err = execute(t, env, "held", "release", f.RelayID()+"/"+f.ID())
			if err != nil || !strings.Contains(out, "next `relay-git-sync serve` or `sync`") {
				t.Fatalf("held release: %v\n%s", err, out)
			}
			if _, out, _, err := execute(t, env, args...); err != nil || !strings.Contains(out, "pushed 1 commit(s) (snapshot 2") {
				t.Fatalf("sync after release: %v\n%s", err, out)
			}
			if n := remoteCount(bare, "main"); n != 5 {
				t.Fatalf("remote has %d files after release, want 5", n)
			}
		})
	}
}
