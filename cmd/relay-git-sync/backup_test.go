package main

// backup and restore-backup end to end: the real binaries, a serve under
// webhook load from the fake Relay Server, and the real git cloning the
// original and the restored store through git-remote-relay.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
)

// binTool runs the built binaries (and git, with git-remote-relay on
// PATH) in an environment of their own: no token, no credential helper.
type binTool struct {
	t   *testing.T
	bin string
	env []string
}

func newBinTool(t *testing.T) *binTool {
	t.Helper()
	goTool := testreq.Go(t)
	testreq.Git(t)
	bin := t.TempDir()
	build := exec.Command(goTool, "build", "-tags", "nomsgpack", "-o", bin+string(os.PathSeparator), ".", "../git-remote-relay")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the binaries: %v\n%s", err, out)
	}
	home := t.TempDir()
	must(t, os.WriteFile(filepath.Join(home, ".gitconfig"), []byte("[init]\n\tdefaultBranch = main\n"), 0o644))
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RELAY_") && !strings.HasPrefix(kv, "GIT_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	env = append(env, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "HOME="+home,
		"GIT_CONFIG_GLOBAL="+filepath.Join(home, ".gitconfig"), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0")
	return &binTool{t: t, bin: bin, env: env}
}

// run runs name (a built binary or git) and returns its output and exit code.
func (b *binTool) run(extraEnv []string, dir, name string, args ...string) (stdout, stderr string, code int) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if name != "git" {
		name = filepath.Join(b.bin, name)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(slices.Clone(b.env), extraEnv...)
	cmd.Dir = dir
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		b.t.Fatalf("running %s: %v", name, err)
	}
	return o.String(), e.String(), code
}

// ok runs a command that must succeed and returns its stdout.
func (b *binTool) ok(extraEnv []string, name string, args ...string) string {
	b.t.Helper()
	out, errOut, code := b.run(extraEnv, "", name, args...)
	if code != 0 {
		b.t.Fatalf("%s %s: exit %d\n%s%s", name, strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// fails runs a command that must fail and returns its stderr.
func (b *binTool) fails(extraEnv []string, name string, args ...string) string {
	b.t.Helper()
	out, errOut, code := b.run(extraEnv, "", name, args...)
	if code == 0 {
		b.t.Fatalf("%s %s succeeded, want a failure\n%s%s", name, strings.Join(args, " "), out, errOut)
	}
	return errOut
}

// commits clones url with the real git and returns its commit ids, oldest
// first.
func (b *binTool) commits(extraEnv []string, url string) []string {
	b.t.Helper()
	dir := filepath.Join(b.t.TempDir(), "clone")
	b.ok(extraEnv, "git", "clone", "--quiet", url, dir)
	out, errOut, code := b.run(extraEnv, dir, "git", "rev-list", "--reverse", "HEAD")
	if code != 0 {
		b.t.Fatalf("git rev-list in the clone of %s: %s", url, errOut)
	}
	return strings.Fields(out)
}

// restoredUsers opens a restored store and returns the Relay users of its
// snapshots and of its queued events: every webhook the store took in,
// whether already in a snapshot or still waiting for one.
func restoredUsers(t *testing.T, dataDir string, f store.FolderID) (users map[string]bool, head uint64) {
	t.Helper()
	st, err := store.Open(filepath.Join(dataDir, storeDirName), store.Options{})
	must(t, err)
	defer st.Close()
	users = map[string]bool{}
	infos, err := st.Snapshots(f, 0)
	must(t, err)
	for _, in := range infos {
		for _, u := range in.Users {
			users[u] = true
		}
		head = in.Seq
	}
	pending, err := st.PendingEvents()
	must(t, err)
	for _, ev := range pending {
		users[ev.User] = true
	}
	return users, head
}

// TestBackupRestoreUnderLoad backs up a serve that keeps taking webhooks,
// restores the backup into a fresh data dir, and checks with git that the
// restored history is the original's up to the backup, that every event
// acknowledged before the backup began is in it and none acknowledged after
// it ended is; then the refusals, and a backup of the data dir once serve
// stopped.
func TestBackupRestoreUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries, runs serve under load and git (skipped with -short)")
	}
	bt := newBinTool(t)
	srv := relaytest.NewServer(relaytest.Options{APIKey: fakeRelayKey})
	defer srv.Close()
	folder := srv.NewFolder(srv.NewRelay())
	fid := store.FolderID{Relay: folder.RelayID(), Folder: folder.ID()}
	const notes = 4
	docs := make([]string, notes)
	for i := range docs {
		doc, err := folder.AddMarkdown(fmt.Sprintf("/notes/%d.md", i), "# note\n")
		must(t, err)
		docs[i] = relay.CompoundID(folder.RelayID(), doc)
	}
	dataDir := t.TempDir()
	writeConnectors(t, dataDir, folder)
	secret := newWhsec(t)
	p := startServe(t, serveConfig{relay: srv, apiKey: fakeRelayKey, dataDir: dataDir, secret: secret, maxDelay: time.Second})
	p.waitSnapshot(folder, 0, 20*time.Second, nil)
	token := []string{"RELAY_GIT_TOKEN=" + testAPIToken}

	// Webhook load: edit a note, send its webhook as a user of its own,
	// record the user once the webhook is acknowledged (2xx = durable).
	var mu sync.Mutex
	var acked []string
	var loadErr error
	stop, loadDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(loadDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			n := i % notes
			if err := folder.EditMarkdown(fmt.Sprintf("/notes/%d.md", n), fmt.Sprintf("# note %d\nedit %d\n", n, i)); err != nil {
				loadErr = err
				return
			}
			user := fmt.Sprintf("user-%05d", i)
			code, body, err := srv.SendWebhook(context.Background(), p.webhookURL(), secret, relaytest.Webhook{DocID: docs[n], User: user})
			if err != nil || code != 200 {
				loadErr = fmt.Errorf("webhook %d: HTTP %d %s %v", i, code, body, err)
				return
			}
			mu.Lock()
			acked = append(acked, user)
			mu.Unlock()
		}
	}()
	nAcked := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	waitAcked := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); nAcked() < n; time.Sleep(10 * time.Millisecond) {
			select {
			case <-loadDone:
				t.Fatalf("the webhook load stopped: %v", loadErr)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d webhooks acknowledged in a minute", nAcked())
			}
		}
	}
	// Some events in snapshots already, some still queued.
	waitAcked(30)
	p.waitSnapshot(folder, 4, 30*time.Second, nil)

	backup := filepath.Join(t.TempDir(), "store.backup")
	mu.Lock()
	before := slices.Clone(acked)
	mu.Unlock()
	snaps, err := p.snapshots(folder)
	must(t, err)
	seqBefore := snaps[len(snaps)-1].Seq
	bt.ok(token, "relay-git-sync", "backup", "--server", p.url, "--output", backup, "--progress")
	ended := nAcked()
	waitAcked(ended + 20)

	// The data dir is held by serve: a backup from it is refused and
	// says how else to make it.
	refused := filepath.Join(t.TempDir(), "refused.backup")
	if msg := bt.fails(nil, "relay-git-sync", "--data-dir", dataDir, "backup", "--output", refused); !strings.Contains(msg, "is in use by") || !strings.Contains(msg, "--server URL") {
		t.Errorf("backup of a held data dir: %s", msg)
	}
	// Without a token the server refuses, and says what to set.
	if msg := bt.fails(nil, "relay-git-sync", "backup", "--server", p.url, "--output", refused); !strings.Contains(msg, "RELAY_GIT_TOKEN") {
		t.Errorf("backup without a token: %s", msg)
	}
	for _, f := range []string{refused, refused + ".tmp"} {
		if _, err := os.Lstat(f); err == nil {
			t.Errorf("a refused backup left %s", f)
		}
	}

	close(stop)
	<-loadDone
	if loadErr != nil {
		t.Fatalf("webhook load: %v", loadErr)
	}

	mu.Lock()
	late := slices.Clone(acked[ended:])
	mu.Unlock()
	restored := filepath.Join(t.TempDir(), "restored")
	out := bt.ok(nil, "relay-git-sync", "--data-dir", restored, "restore-backup", backup)
	if !strings.Contains(out, "1 folders") || !strings.Contains(out, fid.String()) {
		t.Errorf("restore-backup says:\n%s", out)
	}
	users, head := restoredUsers(t, restored, fid)
	t.Logf("%d events acknowledged before the backup began, %d more until it ended, %d after; restored store at snapshot %d (%d when it began)",
		len(before), ended-len(before), len(late), head, seqBefore)
	if head < seqBefore {
		t.Errorf("restored store ends at snapshot %d, the original had %d when the backup began", head, seqBefore)
	}
	for _, u := range before {
		if !users[u] {
			t.Errorf("event of %s, acknowledged before the backup began, is not in the restored store", u)
		}
	}
	for _, u := range late {
		if users[u] {
			t.Errorf("event of %s, acknowledged after the backup ended, is in the restored store", u)
		}
	}

	// The same commits as the original, up to the backup.
	orig := bt.commits(token, "relay::"+p.url+"/"+fid.Relay+"/"+fid.Folder)
	got := bt.commits(nil, "relay::"+restored+"/"+fid.Relay+"/"+fid.Folder)
	if len(got) == 0 || len(got) > len(orig) || !slices.Equal(orig[:len(got)], got) {
		t.Errorf("the restored store's commits are not the original's up to the backup:\nrestored %v\noriginal %v", got, orig)
	}

	// restore-backup refuses a store, a damaged file, and a missing
	// --data-dir, and leaves no store behind.
	listing := tree(t, restored)
	if msg := bt.fails(nil, "relay-git-sync", "--data-dir", restored, "restore-backup", backup); !strings.Contains(msg, "already holds a snapshot store") {
		t.Errorf("restore into a store: %s", msg)
	}
	if tree(t, restored) != listing {
		t.Error("a refused restore changed the data dir")
	}
	data, err := os.ReadFile(backup)
	must(t, err)
	truncated := filepath.Join(t.TempDir(), "truncated.backup")
	must(t, os.WriteFile(truncated, data[:len(data)*2/3], 0o600))
	empty := filepath.Join(t.TempDir(), "fresh")
	if msg := bt.fails(nil, "relay-git-sync", "--data-dir", empty, "restore-backup", truncated); !strings.Contains(msg, "truncated") || !strings.Contains(msg, "nothing was restored") {
		t.Errorf("restore of a truncated backup: %s", msg)
	}
	for _, d := range []string{filepath.Join(empty, storeDirName), filepath.Join(empty, storeDirName+".tmp")} {
		if _, err := os.Lstat(d); err == nil {
			t.Errorf("a failed restore left %s", d)
		}
	}
	if msg := bt.fails(nil, "relay-git-sync", "restore-backup", backup); !strings.Contains(msg, "--data-dir DIR is required") {
		t.Errorf("restore without --data-dir: %s", msg)
	}

	// Once serve stopped, the data dir itself is backed up: the restore
	// has every commit of the original.
	must(t, p.stop())
	offline := filepath.Join(t.TempDir(), "offline.backup")
	bt.ok(nil, "relay-git-sync", "--data-dir", dataDir, "backup", "--output", offline)
	restored2 := filepath.Join(t.TempDir(), "restored2")
	bt.ok(nil, "relay-git-sync", "--data-dir", restored2, "restore-backup", offline)
	want := bt.commits(nil, "relay::"+dataDir+"/"+fid.Relay+"/"+fid.Folder)
	if got := bt.commits(nil, "relay::"+restored2+"/"+fid.Relay+"/"+fid.Folder); !slices.Equal(got, want) || len(want) < len(orig) {
		t.Errorf("restore of a stopped serve's backup: commits %v, want %v", got, want)
	}
}

// `backup --output -` writes the backup to stdout, and restore-backup
// reads it back and says what it restored.
func TestBackupToStdout(t *testing.T) {
	dataDir := t.TempDir()
	st, err := store.Open(filepath.Join(dataDir, storeDirName), store.Options{})
	must(t, err)
	f := store.FolderID{Relay: "6ba7b810-9dad-11d1-80b4-00c04fd430c8", Folder: "f47ac10b-58cc-4372-a567-0e02b2c3d479"}
	id, err := st.PutBlob([]byte("# hi\n"), store.BlobID{})
	must(t, err)
	for range 3 {
		_, err = st.AddSnapshot(&store.Snapshot{Folder: f, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			Files: []store.File{{Path: "a.md", Blob: id, Size: 5, DocID: "d", Kind: "markdown"}}}, nil, nil)
		must(t, err)
	}
	must(t, st.Close())

	_, out, _, err := execute(t, nil, "--data-dir", dataDir, "backup", "--output", "-")
	must(t, err)
	if err := store.VerifyBackup(strings.NewReader(out)); err != nil {
		t.Fatalf("what backup wrote to stdout: %v", err)
	}
	file := filepath.Join(t.TempDir(), "x.backup")
	must(t, os.WriteFile(file, []byte(out), 0o600))
	restored := filepath.Join(t.TempDir(), "restored")
	_, said, _, err := execute(t, nil, "--data-dir", restored, "restore-backup", file)
	must(t, err)
	if want := f.String() + ": 3 snapshots, the last at 2026-01-02 03:04:05Z"; !strings.Contains(said, "1 folders, 0 queued webhook events") || !strings.Contains(said, want) {
		t.Errorf("restore-backup says:\n%s\nwant %q", said, want)
	}

	// An output the backup cannot write leaves nothing behind.
	bad := filepath.Join(t.TempDir(), "missing", "x.backup")
	if _, _, _, err := execute(t, nil, "--data-dir", dataDir, "backup", "--output", bad); err == nil {
		t.Error("backup into a missing directory succeeded")
	}
	if _, err := os.Lstat(filepath.Dir(bad)); err == nil {
		t.Errorf("a failed backup made %s", filepath.Dir(bad))
	}
}
