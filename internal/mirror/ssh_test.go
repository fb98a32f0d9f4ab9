package mirror

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/relay-git-sync/relay-git-sync/internal/sshdtest"
	"github.com/relay-git-sync/relay-git-sync/internal/sshkey"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// Pushing over real SSH, with the key taken from SSH_PRIVATE_KEY (held in
// memory) and the server's host key pinned in the connector's known_hosts.
func TestSSHPushWithKeyFromEnv(t *testing.T) {
	srv := startSSHD(t)
	st := openStore(t)
	sim := newFolderSim(t, st)
	bare := sshdtest.BareRepo(t, srv.User)
	data := t.TempDir()
	conn := connectorTo(srv.URL(bare), "main", "")
	conn.KnownHosts = srv.WriteKnownHosts(t)
	tm := newManager(t, st, data, srv.sshConfig(t), conn)
	sim.snap(map[string]string{"a.md": "a\n", "dir/b.md": "b\n"})
	sim.snap(map[string]string{"a.md": "a 2\n"})
	tm.push(t)
	want := linearIDs(t, sim.all())
	if got := gitIn(t, bare, "rev-parse", "main"); got != want[1] {
		t.Fatalf("main = %s, want %s", got, want[1])
	}
	sim.snap(map[string]string{"c.md": "c\n"})
	res := tm.push(t)
	if res[0].Commits != 1 || res[0].Fetched {
		t.Errorf("incremental push: %+v", res[0])
	}
	if got := gitIn(t, bare, "rev-parse", "main"); got != linearIDs(t, sim.all())[2] {
		t.Errorf("main = %s after the incremental push", got)
	}
	// The data dir's known_hosts was created with the forges' keys.
	kh, err := os.ReadFile(filepath.Join(data, KnownHostsFile))
	if err != nil || !strings.Contains(string(kh), "github.com ssh-ed25519 ") {
		t.Errorf("data dir known_hosts: %v\n%s", err, kh)
	}
	// No key file was written anywhere in the data dir.
	filepath.WalkDir(data, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); strings.Contains(string(b), "PRIVATE KEY") {
				t.Errorf("a private key was written to %s", p)
			}
		}
		return nil
	})
}

// A server whose host key differs from known_hosts is refused with an
// error that says so; an unknown server likewise, with the command that
// would add it; a key the server does not accept says what to do.
func TestSSHHostKeyChecks(t *testing.T) {
	srv := startSSHD(t)
	st := openStore(t)
	sim := newFolderSim(t, st)
	bare := sshdtest.BareRepo(t, srv.User)
	sim.snap(map[string]string{"a.md": "a\n"})

	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewSignerFromKey(otherPriv)
	wrong := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(wrong, []byte(fmt.Sprintf("[127.0.0.1]:%d %s", srv.Port, ssh.MarshalAuthorizedKey(other.PublicKey()))), 0o644)

	t.Run("changed", func(t *testing.T) {
		conn := connectorTo(srv.URL(bare), "main", "")
		conn.KnownHosts = wrong
		tm := newManager(t, st, t.TempDir(), srv.sshConfig(t), conn)
		err := tm.PushFolder(context.Background(), testFolder)[0].Err
		var hk *HostKeyError
		if !errors.As(err, &hk) || !hk.Changed {
			t.Fatalf("wrong host key: %v", err)
		}
		for _, want := range []string{"host key verification failed", "does not match", "man in the middle", ssh.FingerprintSHA256(srv.HostKey)} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q: %v", want, err)
			}
		}
	})
	t.Run("unknown", func(t *testing.T) {
		conn := connectorTo(srv.URL(bare), "main", "")
		tm := newManager(t, st, t.TempDir(), srv.sshConfig(t), conn)
		err := tm.PushFolder(context.Background(), testFolder)[0].Err
		var hk *HostKeyError
		if !errors.As(err, &hk) || hk.Changed {
			t.Fatalf("unknown host: %v", err)
		}
		if want := fmt.Sprintf("ssh-keyscan -p %d 127.0.0.1 >> ", srv.Port); !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	})
	t.Run("key not authorized", func(t *testing.T) {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		key, err := sshkey.Parse(sshdtest.MarshalKey(t, priv))
		if err != nil {
			t.Fatal(err)
		}
		conn := connectorTo(srv.URL(bare), "main", "")
		conn.KnownHosts = srv.WriteKnownHosts(t)
		tm := newManager(t, st, t.TempDir(), Config{SSHKey: key}, conn)
		err = tm.PushFolder(context.Background(), testFolder)[0].Err
		if err == nil || !strings.Contains(err.Error(), "show-pubkey") {
			t.Errorf("unauthorized key: %v", err)
		}
	})
	t.Run("no key", func(t *testing.T) {
		conn := connectorTo(srv.URL(bare), "main", "")
		tm := newManager(t, st, t.TempDir(), Config{}, conn)
		err := tm.PushFolder(context.Background(), testFolder)[0].Err
		if !errors.Is(err, sshkey.ErrNotConfigured) {
			t.Errorf("no key: %v", err)
		}
	})
	if out := gitIn(t, bare, "for-each-ref"); out != "" {
		t.Errorf("the remote changed: %s", out)
	}
}

// Another clone (the git CLI, over SSH too) pushes to the branch between
// snapshots, round after round: every commit and every file of both sides
// survives.
func TestSSHConcurrentForeignPushes(t *testing.T) {
	rounds := 20
	if testing.Short() {
		rounds = 5
	}
	srv := startSSHD(t)
	st := openStore(t)
	sim := newFolderSim(t, st)
	bare := sshdtest.BareRepo(t, srv.User)
	kh := srv.WriteKnownHosts(t)
	conn := connectorTo(srv.URL(bare), "main", "")
	conn.KnownHosts = kh
	tm := newManager(t, st, t.TempDir(), srv.sshConfig(t), conn)

	sim.snap(map[string]string{"shared.md": "v0\n"})
	tm.push(t)
	extraGitEnv = []string{"GIT_SSH_COMMAND=" + srv.GitSSHCommand(kh)}
	defer func() { extraGitEnv = nil }()
	clone := filepath.Join(t.TempDir(), "clone")
	gitIn(t, filepath.Dir(clone), "clone", "-q", srv.URL(bare), clone)

	var foreignCommits []string
	var took []time.Duration
	defer func() { t.Logf("our pushes (fetch + merge + push): %v", took) }()
	foreignFiles := map[string]string{}
	for i := 1; i <= rounds; i++ {
		// The other side: pull, change its own files, push.
		gitIn(t, clone, "pull", "-q", "--no-rebase")
		name := fmt.Sprintf("other/%02d.txt", i)
		content := fmt.Sprintf("foreign %d\n", i)
		commitFiles(t, clone, fmt.Sprintf("Foreign change %d", i), map[string]string{name: content, "other/log.txt": strings.Repeat("x", i) + "\n"})
		gitIn(t, clone, "push", "-q", "origin", "HEAD:main")
		foreignCommits = append(foreignCommits, gitIn(t, clone, "rev-parse", "HEAD"))
		foreignFiles[name] = content
		foreignFiles["other/log.txt"] = strings.Repeat("x", i) + "\n"
		// Our side: a snapshot (a new file and an edit), pushed.
		sim.snap(map[string]string{fmt.Sprintf("notes/%02d.md", i): fmt.Sprintf("note %d\n", i), "shared.md": fmt.Sprintf("v%d\n", i)})
		t0 := time.Now()
		res := tm.push(t)
		took = append(took, time.Since(t0))
		if !res[0].Merged {
			t.Errorf("round %d: no merge: %+v", i, res[0])
		}
	}
	for _, c := range foreignCommits {
		if _, err := gitTry(t, bare, "merge-base", "--is-ancestor", c, "main"); err != nil {
			t.Errorf("foreign commit %s is not in main", c)
		}
	}
	want := map[string]string{}
	for p, c := range sim.files {
		want[p] = c
	}
	for p, c := range foreignFiles {
		want[p] = c
	}
	checkFiles(t, bare, "main", want)
	log := gitIn(t, bare, "log", "--format=%B", "main") + "\n"
	for seq := 1; seq <= rounds+1; seq++ {
		if !strings.Contains(log, fmt.Sprintf("Relay-Snapshot: %s#%d\n", testFolder, seq)) {
			t.Errorf("snapshot %d has no commit on main", seq)
		}
	}
	// Each snapshot's own commit has its files (the merge keeps them).
	gitIn(t, bare, "fsck", "--no-dangling")
}

// A remote that cannot be reached fails, is retried with backoff while
// new snapshots supersede the pending one, and gets everything once it is
// back.
func TestSSHUnreachableRemoteComesBack(t *testing.T) {
	srv := startSSHD(t)
	st := openStore(t)
	sim := newFolderSim(t, st)
	bare := sshdtest.BareRepo(t, srv.User)
	conn := connectorTo(srv.URL(bare), "main", "")
	conn.KnownHosts = srv.WriteKnownHosts(t)
	cfg := srv.sshConfig(t)
	cfg.MinBackoff, cfg.MaxBackoff = 100*time.Millisecond, 400*time.Millisecond
	results := make(chan Result, 100)
	cfg.OnResult = func(r Result) { results <- r }
	data := t.TempDir()
	tm := newManager(t, st, data, cfg, conn)

	srv.Stop()
	sim.snap(map[string]string{"a.md": "a\n"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tm.Run(ctx) }()
	defer func() { cancel(); <-done }()

	failures := 0
	for failures < 3 {
		r := waitResult(t, results)
		if r.Err == nil {
			t.Fatalf("push succeeded while sshd is down: %+v", r)
		}
		failures++
		if failures == 1 {
			// A newer snapshot while the remote is away.
			sim.snap(map[string]string{"b.md": "b\n"})
			tm.Notify(testFolder)
		}
	}
	ps, err := st.PushState(testFolder, ConnectorID(conn))
	if err != nil || ps.Attempts < 3 || ps.LastError == "" || ps.NextAttempt.IsZero() {
		t.Errorf("push state while down: %+v %v", ps, err)
	}
	status, err := ReadStatusFile(data)
	if err != nil || len(status.Connectors) != 1 || status.Connectors[0].LastError == "" {
		t.Errorf("status file while down: %+v %v", status, err)
	}
	srv.Restart()
	for {
		r := waitResult(t, results)
		if r.Err == nil {
			if r.Seq != 2 {
				t.Errorf("pushed snapshot %d, want 2", r.Seq)
			}
			break
		}
	}
	if got, want := gitIn(t, bare, "rev-parse", "main"), linearIDs(t, sim.all())[1]; got != want {
		t.Errorf("main = %s, want %s", got, want)
	}
	ps, _ = st.PushState(testFolder, ConnectorID(conn))
	if ps.Attempts != 0 || ps.Seq != 2 || !ps.NextAttempt.IsZero() {
		t.Errorf("push state after recovery: %+v", ps)
	}
}

func waitResult(t *testing.T, ch <-chan Result) Result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("no push attempt within 30 s")
	}
	return Result{}
}

// How long from a recorded snapshot (Notify, as serve's OnSnapshot does)
// to its commit on the remote, over SSH on loopback. Target: ≤ 1 s.
func TestSSHSnapshotToRemoteLatency(t *testing.T) {
	srv := startSSHD(t)
	st := openStore(t)
	sim := newFolderSim(t, st)
	bare := sshdtest.BareRepo(t, srv.User)
	conn := connectorTo(srv.URL(bare), "main", "")
	conn.KnownHosts = srv.WriteKnownHosts(t)
	cfg := srv.sshConfig(t)
	results := make(chan Result, 100)
	cfg.OnResult = func(r Result) { results <- r }
	tm := newManager(t, st, t.TempDir(), cfg, conn)
	sim.snap(map[string]string{"a.md": "a\n"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tm.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if r := waitResult(t, results); r.Err != nil {
		t.Fatal(r.Err)
	}
	refFile := filepath.Join(bare, "refs", "heads", "main")
	var lat []time.Duration
	for i := range 10 {
		before, _ := os.ReadFile(refFile)
		sim.snap(map[string]string{fmt.Sprintf("n%d.md", i): "x\n", "a.md": fmt.Sprintf("a %d\n", i)})
		start := time.Now()
		tm.Notify(testFolder)
		for {
			now, _ := os.ReadFile(refFile)
			if len(now) > 0 && string(now) != string(before) {
				break
			}
			if time.Since(start) > 30*time.Second {
				t.Fatal("the commit did not reach the remote within 30 s")
			}
			time.Sleep(2 * time.Millisecond)
		}
		lat = append(lat, time.Since(start))
		if r := waitResult(t, results); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	slices.Sort(lat)
	t.Logf("snapshot → commit on the remote over SSH (loopback): median %v, max %v (n=%d)", lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), len(lat))
	if lat[len(lat)/2] > 2*time.Second {
		t.Errorf("median latency %v, target ≤ 1 s", lat[len(lat)/2])
	}
}

// Notify never blocks, even while a push is running or the remote hangs.
func TestNotifyNeverBlocks(t *testing.T) {
	st := openStore(t)
	tm := newManager(t, st, t.TempDir(), Config{}, connectorTo("/nonexistent/x.git", "main", ""))
	var wg sync.WaitGroup
	start := time.Now()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10000 {
				tm.Notify(testFolder)
				tm.Notify(store.FolderID{Relay: "x", Folder: "y"})
			}
		}()
	}
	wg.Wait()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("40,000 Notify calls took %v", d)
	}
}
