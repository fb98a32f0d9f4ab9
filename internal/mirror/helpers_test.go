package mirror

import (
	"context"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/relay-git-sync/relay-git-sync/internal/connectors"
	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/sshdtest"
	"github.com/relay-git-sync/relay-git-sync/internal/sshkey"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

var testFolder = store.FolderID{Relay: "6ba7b810-9dad-11d1-80b4-00c04fd430c8", Folder: "f47ac10b-58cc-4372-a567-0e02b2c3d479"}

var testHistory = history.Config{Author: history.Identity{Name: "Relay Sync Test", Email: "sync@example.invalid"}}

func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// folderSim records snapshots of a folder from whole file maps.
type folderSim struct {
	t      testing.TB
	st     *store.Store
	folder store.FolderID
	files  map[string]string
	when   time.Time
}

func newFolderSim(t testing.TB, st *store.Store) *folderSim {
	return &folderSim{t: t, st: st, folder: testFolder, files: map[string]string{},
		when: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// snap applies edits (content, or "" to delete) and records a snapshot.
func (s *folderSim) snap(edits map[string]string) *store.Snapshot {
	s.t.Helper()
	var changes []store.Change
	for _, p := range slices.Sorted(maps.Keys(edits)) {
		content := edits[p]
		old, had := s.files[p]
		switch {
		case content == "" && had:
			delete(s.files, p)
			changes = append(changes, store.Change{Kind: store.ChangeDeleted, Path: p, DocID: "doc:" + p})
		case content == "":
		case !had:
			s.files[p] = content
			changes = append(changes, store.Change{Kind: store.ChangeAdded, Path: p, DocID: "doc:" + p})
		case old != content:
			s.files[p] = content
			changes = append(changes, store.Change{Kind: store.ChangeModified, Path: p, DocID: "doc:" + p})
		}
	}
	var files []store.File
	for _, p := range slices.Sorted(maps.Keys(s.files)) {
		data := []byte(s.files[p])
		id, err := s.st.PutBlob(data, store.BlobID{})
		if err != nil {
			s.t.Fatal(err)
		}
		files = append(files, store.File{Path: p, Blob: id, Size: int64(len(data)), DocID: "doc:" + p, Kind: "markdown"})
	}
	s.when = s.when.Add(time.Minute)
	snap := &store.Snapshot{Folder: s.folder, Time: s.when, Users: []string{"user-1"}, Changes: changes, Files: files}
	if _, err := s.st.AddSnapshot(snap, nil, nil); err != nil {
		s.t.Fatal(err)
	}
	return snap
}

// all returns every snapshot of the folder.
func (s *folderSim) all() []*store.Snapshot {
	s.t.Helper()
	var out []*store.Snapshot
	if err := s.st.Walk(s.folder, 0, func(sn *store.Snapshot) error { out = append(out, sn); return nil }); err != nil {
		s.t.Fatal(err)
	}
	return out
}

// ---- git on the command line, as the owner of the repositories

// extraGitEnv is added to the environment of gitIn and gitTry.
var extraGitEnv []string

// gitIn runs git in dir (as dir's owner) and returns its trimmed output.
func gitIn(t testing.TB, dir string, args ...string) string {
	t.Helper()
	return sshdtest.Git(t, dir, extraGitEnv, args...)
}

func gitTry(t testing.TB, dir string, args ...string) (string, error) {
	t.Helper()
	return sshdtest.TryGit(dir, extraGitEnv, args...)
}

// bareRepo creates an empty bare repository owned by the current user.
func bareRepo(t testing.TB) string { return sshdtest.BareRepo(t, sshdtest.User{}) }

// foreignClone clones bare into a new work tree, owned by bare's owner.
func foreignClone(t testing.TB, bare string) string {
	t.Helper()
	owner, _ := sshdtest.OwnerOf(bare)
	dir := filepath.Join(sshdtest.Dir(t, owner), "clone")
	gitIn(t, filepath.Dir(dir), "clone", "-q", bare, dir)
	return dir
}

// commitFiles writes files in a work tree (content "" deletes) and
// commits them.
func commitFiles(t testing.TB, dir, msg string, files map[string]string) {
	t.Helper()
	owner, switchUser := sshdtest.OwnerOf(dir)
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if c == "" {
			os.Remove(full)
			continue
		}
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		if switchUser {
			for q := full; q != dir; q = filepath.Dir(q) {
				os.Chown(q, int(owner.UID), int(owner.GID))
			}
		}
	}
	gitIn(t, dir, "add", "-A")
	gitIn(t, dir, "commit", "-q", "-m", msg)
}

// lsTree returns path → content of the files of rev in a bare repository.
func lsTree(t testing.TB, bare, rev string) map[string]string {
	t.Helper()
	out := map[string]string{}
	list := gitIn(t, bare, "ls-tree", "-r", "-z", "--name-only", rev)
	for _, p := range strings.Split(list, "\x00") {
		if p == "" {
			continue
		}
		out[p] = gitIn(t, bare, "show", rev+":"+p)
	}
	return out
}

// ---- the connector and the manager

func connectorTo(url, branch, prefix string) connectors.Connector {
	return connectors.Connector{RelayID: testFolder.Relay, SharedFolderID: testFolder.Folder, URL: url, Branch: branch, RemoteName: "origin", Prefix: prefix}
}

type testManager struct {
	*Manager
	mu      sync.Mutex
	results []Result
}

func newManager(t testing.TB, st *store.Store, dataDir string, cfg Config, conns ...connectors.Connector) *testManager {
	t.Helper()
	tm := &testManager{}
	cfg.Store, cfg.DataDir, cfg.Connectors = st, dataDir, conns
	if cfg.History.Author.IsZero() {
		cfg.History = testHistory
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.Getenv == nil {
		cfg.Getenv = func(string) string { return "" }
	}
	prev := cfg.OnResult
	cfg.OnResult = func(r Result) {
		tm.mu.Lock()
		tm.results = append(tm.results, r)
		tm.mu.Unlock()
		if prev != nil {
			prev(r)
		}
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	tm.Manager = m
	return tm
}

// push pushes the test folder's connectors once and fails on errors.
func (tm *testManager) push(t testing.TB) []Result {
	t.Helper()
	res := tm.PushFolder(context.Background(), testFolder)
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("push to %s %s: %v", r.URL, r.Branch, r.Err)
		}
	}
	return res
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// linearIDs synthesizes snaps with history.Linear in memory.
func linearIDs(t testing.TB, snaps []*store.Snapshot) []string {
	t.Helper()
	st := newMemStorage()
	ids, err := history.New(testHistory, st).Linear(snaps, [20]byte{})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(ids))
	for i, h := range ids {
		out[i] = h.String()
	}
	return out
}

// ---- sshd

// sshServer is sshdtest's server with the mirror's configuration helpers.
type sshServer struct {
	*sshdtest.Server
}

func startSSHD(t testing.TB) *sshServer { return &sshServer{sshdtest.Start(t)} }

// getenv returns a Getenv with SSH_PRIVATE_KEY set, as serve sees it.
func (s *sshServer) getenv() func(string) string {
	return func(k string) string {
		if k == sshkey.EnvVar {
			return s.ClientPEM
		}
		return ""
	}
}

// sshConfig is the Config part for pushing to this server with the key
// from the (test) environment.
func (s *sshServer) sshConfig(t testing.TB) Config {
	key, err := sshkey.FromEnv(s.getenv())
	if err != nil {
		t.Fatal(err)
	}
	return Config{SSHKey: key, Getenv: s.getenv()}
}

func newMemStorage() *memory.Storage { return memory.NewStorage() }
