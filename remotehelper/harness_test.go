package remotehelper

// Harness of the end-to-end tests: the real binaries (git-remote-relay on
// PATH, relay-git-sync serve), the real git client in an isolated
// environment, and the fake Relay Server.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binaries builds git-remote-relay and relay-git-sync once per test run and
// returns the directory that holds them.
func binaries(t testing.TB) string {
	t.Helper()
	testreq.Git(t)
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "git-remote-relay-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binDir = dir
		cmd := exec.Command("go", "build", "-tags", "nomsgpack", "-o", dir+string(os.PathSeparator),
			"../cmd/git-remote-relay", "../cmd/relay-git-sync")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// gitEnv runs the real git client with git-remote-relay on PATH, in an
// environment of its own: a fresh HOME and global config, no prompts, and
// git identity variables that differ from the server's (the helper must not
// use them).
type gitEnv struct {
	t    testing.TB
	home string
	env  []string
}

func newGitEnv(t testing.TB, extra ...string) *gitEnv {
	t.Helper()
	bin := binaries(t)
	home := t.TempDir()
	g := &gitEnv{t: t, home: home}
	g.env = []string{
		"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=" + filepath.Join(home, ".gitconfig"),
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=Someone Else", "GIT_AUTHOR_EMAIL=else@example.org",
		"GIT_COMMITTER_NAME=Someone Else", "GIT_COMMITTER_EMAIL=else@example.org",
		"LC_ALL=C",
		"TMPDIR=" + os.TempDir(),
	}
	g.env = append(g.env, extra...)
	if err := os.WriteFile(filepath.Join(home, ".gitconfig"), []byte("[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return g
}

// with returns a copy of g with more environment variables.
func (g *gitEnv) with(extra ...string) *gitEnv {
	c := *g
	c.env = append(append([]string(nil), g.env...), extra...)
	return &c
}

// run runs git in dir and returns its stdout and stderr.
func (g *gitEnv) run(dir string, args ...string) (stdout, stderr string, err error) {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = g.env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// timed runs git (which must succeed) and returns its wall-clock time and
// the CPU time of git and everything it waited for (helper, index-pack).
func (g *gitEnv) timed(dir string, args ...string) (wall, cpu time.Duration) {
	g.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = g.env
	var e bytes.Buffer
	cmd.Stderr = &e
	t := time.Now()
	if err := cmd.Run(); err != nil {
		g.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, e.String())
	}
	wall = time.Since(t)
	return wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

// git runs git and fails the test if it fails; it returns stdout.
func (g *gitEnv) git(dir string, args ...string) string {
	g.t.Helper()
	out, errOut, err := g.run(dir, args...)
	if err != nil {
		g.t.Fatalf("git %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// mustFail runs git, expects it to fail, and returns its stderr.
func (g *gitEnv) mustFail(dir string, args ...string) string {
	g.t.Helper()
	out, errOut, err := g.run(dir, args...)
	if err == nil {
		g.t.Fatalf("git %s succeeded, want a failure\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), out, errOut)
	}
	return errOut
}

func revParse(g *gitEnv, dir, rev string) string {
	g.t.Helper()
	return strings.TrimSpace(g.git(dir, "rev-parse", rev))
}

// refs lists every ref of a repository with its value.
func refs(g *gitEnv, dir string) string {
	g.t.Helper()
	return g.git(dir, "for-each-ref", "--format=%(refname) %(objectname)")
}

// linearTip synthesizes the folder's whole history with internal/history
// (as a connector mirror would) and returns the commit ids in order.
func linearIDs(t testing.TB, src source.Source, f store.FolderID) []plumbing.Hash {
	t.Helper()
	ctx := context.Background()
	cfg, err := src.HistoryConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var snaps []*store.Snapshot
	if err := src.History(ctx, f, 0, func(s *store.Snapshot) error { snaps = append(snaps, s); return nil }); err != nil {
		t.Fatal(err)
	}
	ids, err := history.New(cfg, memory.NewStorage()).Linear(snaps, plumbing.ZeroHash)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// lastPackObjects returns the object types in the newest pack of a
// repository (git verify-pack).
func newestPack(t testing.TB, g *gitEnv, gitDir string) (types map[string]int, total int) {
	t.Helper()
	packs, _ := filepath.Glob(filepath.Join(gitDir, "objects", "pack", "*.idx"))
	var newest string
	var when time.Time
	for _, p := range packs {
		fi, err := os.Stat(p)
		if err == nil && fi.ModTime().After(when) {
			newest, when = p, fi.ModTime()
		}
	}
	if newest == "" {
		t.Fatalf("no pack in %s", gitDir)
	}
	out := g.git(gitDir, "verify-pack", "-v", newest)
	types = map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && len(f[0]) == 40 {
			types[f[1]]++
			total++
		}
	}
	return types, total
}

// ---- relay-git-sync serve, the real binary ----

type serveBin struct {
	t       testing.TB
	url     string
	token   string
	dataDir string
	cmd     *exec.Cmd
	logs    *lockedBuffer
	done    chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

const e2eToken = "e2e-read-api-token-0123456789"

var servingAddr = regexp.MustCompile(`msg=serving addr=(\S+)`)

// startServe runs `relay-git-sync serve` on a data dir that follows the
// given folders of the fake Relay Server, with the server identity given in
// env (GIT_AUTHOR_NAME…), and registers its webhook with the fake.
func startServe(t testing.TB, relay *relaytest.Server, apiKey, dataDir string, folders []*relaytest.Folder, env ...string) *serveBin {
	t.Helper()
	return startServeArgs(t, relay, apiKey, dataDir, folders, nil, env...)
}

// startServeArgs is startServe with more serve flags (e.g. --allow-writes).
func startServeArgs(t testing.TB, relay *relaytest.Server, apiKey, dataDir string, folders []*relaytest.Folder, args []string, env ...string) *serveBin {
	t.Helper()
	bin := binaries(t)
	var conns strings.Builder
	for i, f := range folders {
		fmt.Fprintf(&conns, "[[git_connector]]\nshared_folder_id = %q\nrelay_id = %q\nurl = \"git@git.example.invalid:notes-%d.git\"\n\n", f.ID(), f.RelayID(), i)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "git_connectors.toml"), []byte(conns.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	const secret = "e2e-webhook-secret"
	cmd := exec.Command(filepath.Join(bin, "relay-git-sync"), append([]string{"--data-dir", dataDir, "serve",
		"--host", "127.0.0.1", "--port", "0", "--commit-interval", "0.2", "--max-delay", "2s",
		"--api-token", e2eToken, "--webhook-secret", secret}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"RELAY_SERVER_URL=" + relay.URL(), "RELAY_SERVER_API_KEY=" + apiKey}, env...)
	s := &serveBin{t: t, token: e2eToken, dataDir: dataDir, cmd: cmd, logs: &lockedBuffer{}, done: make(chan struct{})}
	pr, pw := io.Pipe()
	cmd.Stdout = s.logs
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.logs.Write(append(sc.Bytes(), '\n'))
			if m := servingAddr.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		cmd.Wait()
		pw.Close()
		close(s.done)
	}()
	select {
	case a := <-addr:
		s.url = "http://" + a
	case <-s.done:
		t.Fatalf("serve exited:\n%s", s.logs)
	case <-time.After(60 * time.Second):
		s.stop()
		t.Fatalf("serve did not start:\n%s", s.logs)
	}
	relay.AddWebhook(relaytest.WebhookConfig{URL: s.url + "/webhooks", Secret: secret})
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("serve log:\n%s", s.logs)
		}
	})
	return s
}

func (s *serveBin) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// waitFor polls the folder's latest snapshot until ok accepts it.
func (s *serveBin) waitFor(f store.FolderID, what string, ok func(*store.Snapshot) bool) *store.Snapshot {
	s.t.Helper()
	src, err := source.NewHTTP(s.url, s.token)
	if err != nil {
		s.t.Fatal(err)
	}
	defer src.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var latest *store.Snapshot
		err := src.History(context.Background(), f, 0, func(snap *store.Snapshot) error { latest = snap; return nil })
		if err == nil && latest != nil && ok(latest) {
			return latest
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("waiting for %s: latest snapshot %+v, err %v", what, latest, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// blobRequests returns how many blobs the server has served (its metrics).
func (s *serveBin) blobRequests() int {
	s.t.Helper()
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "relay_git_sync_http_requests_total{") && strings.Contains(line, `route="/api/v1/blobs/:id"`) {
			var v float64
			fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &v)
			n += int(v)
		}
	}
	return n
}

func hasFile(s *store.Snapshot, path string) bool {
	for _, f := range s.Files {
		if f.Path == path {
			return true
		}
	}
	return false
}
