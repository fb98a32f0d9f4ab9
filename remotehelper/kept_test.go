package remotehelper

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/server"
)

// packNames lists the packs of a repository (pack-<sum>, sorted).
func packNames(t *testing.T, repo string) []string {
	t.Helper()
	idx, err := filepath.Glob(filepath.Join(repo, ".git", "objects", "pack", "pack-*.idx"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range idx {
		out = append(out, strings.TrimSuffix(filepath.Base(p), ".idx"))
	}
	return out
}

// TestKeptPackDataDir: the first clone from a data dir keeps its pack in the
// data dir; the next clone starts from it, synthesizes only the snapshots
// after it, and has the same commits; a kept pack made with another history
// config is passed over.
func TestKeptPackDataDir(t *testing.T) {
	dir, v := newDataDir(t, testFolder, 31, 60, history.Config{})
	g := newGitEnv(t)
	work := t.TempDir()
	url := "relay::" + dir + "/" + testFolder.String()
	g.git(work, "clone", "-q", url, "a")
	root := filepath.Join(dir, PackDirName)
	m, err := readKept(root, testFolder)
	if err != nil || m == nil || m.Seq != 60 {
		t.Fatalf("kept pack after the first clone: %+v, %v", m, err)
	}
	if p := packNames(t, filepath.Join(work, "a")); len(p) != 1 || p[0] != m.Pack {
		t.Errorf("clone a has packs %v, kept %s", p, m.Pack)
	}

	st := v.reopen(t, dir)
	v.grow(t, 5)
	ids := linearIDs(t, source.FromStore(st), testFolder)
	st.Close()
	_, stderr := g.git2(work, "clone", "-v", url, "b")
	b := filepath.Join(work, "b")
	if n, _, _ := fetchStats(t, stderr); n != 5 {
		t.Errorf("clone from the kept pack synthesized %d snapshots, want 5:\n%s", n, stderr)
	}
	if p := packNames(t, b); len(p) != 2 || !strings.Contains(strings.Join(p, " "), m.Pack) {
		t.Errorf("clone b has packs %v, want the kept %s and one more", p, m.Pack)
	}
	if got := strings.Fields(g.git(b, "rev-list", "--reverse", "HEAD")); strings.Join(got, " ") != strings.Join(hashStrings(ids), " ") {
		t.Errorf("the clone from the kept pack has other commits than history.Linear")
	}
	g.git(b, "fsck", "--strict", "--no-dangling")
	// The private ref is set: a fetch starts from the tip.
	st = v.reopen(t, dir)
	v.grow(t, 2)
	ids = linearIDs(t, source.FromStore(st), testFolder)
	st.Close()
	_, stderr = g.git2(b, "fetch", "-v")
	if n, _, _ := fetchStats(t, stderr); n != 2 {
		t.Errorf("fetch after a clone from the kept pack synthesized %d snapshots, want 2", n)
	}
	if tip := revParse(g, b, "origin/main"); tip != ids[len(ids)-1].String() {
		t.Errorf("after fetch: %s, want %s", tip, ids[len(ids)-1])
	}
	// Only a whole history is kept: not a clone's part after the kept
	// pack, nor a fetch's.
	if m2, err := readKept(root, testFolder); err != nil || m2 == nil || *m2 != *m {
		t.Errorf("kept pack after a clone from it and a fetch: %+v, %v; want %+v", m2, err, m)
	}

	// Another identity: the kept pack's commits are not the folder's.
	st = v.reopen(t, dir)
	if err := st.SetHistoryConfig([]byte(`{"author":{"name":"Renamed","email":"new@example.com"}}`)); err != nil {
		t.Fatal(err)
	}
	ids = linearIDs(t, source.FromStore(st), testFolder)
	st.Close()
	_, stderr = g.git2(work, "clone", "-v", url, "c")
	if n, _, _ := fetchStats(t, stderr); n != 67 {
		t.Errorf("clone after an identity change synthesized %d snapshots, want all 67", n)
	}
	if tip := revParse(g, filepath.Join(work, "c"), "HEAD"); tip != ids[len(ids)-1].String() {
		t.Errorf("clone after an identity change: %s, want %s", tip, ids[len(ids)-1])
	}
}

// TestKeptPackServe: serve's handler builds a folder's pack in the
// background after the first request for it (a clone that does not wait for
// it synthesizes the history); later clones download it instead of the
// blobs, synthesize only the newer snapshots and have the same commits; a
// fetch then continues from their tip. After an identity change the pack is
// rebuilt, and the clone that asked waits for it.
func TestKeptPackServe(t *testing.T) {
	const token = "kept-pack-token-0123456789"
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	v := newVault(st, testFolder, 41, 40)
	v.grow(t, 50)
	packs := NewPackCache(t.TempDir(), source.FromStore(st), nil)
	packs.wait.Store(0) // the first clone does not wait
	t.Cleanup(packs.Close)
	h, err := server.New(server.Config{InsecureNoAuth: true, APIToken: token, Events: nopEvents{}, Source: source.FromStore(st),
		Packs: func(ctx context.Context, f store.FolderID) (*server.FolderPack, error) {
			seq, commit, pack, idx, err := packs.Open(ctx, f)
			if err != nil || pack == nil {
				return nil, err
			}
			return &server.FolderPack{Seq: seq, Commit: commit, Pack: pack, Index: idx}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	var blobGets atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/v1/blobs/") {
			blobGets.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	g := newGitEnv(t, EnvToken+"="+token)
	work := t.TempDir()
	url := "relay::" + ts.URL + "/" + testFolder.String()

	g.git(work, "clone", "-q", url, "a") // asks for the pack: none yet, so it is built
	if blobGets.Load() == 0 {
		t.Fatal("the first clone downloaded no blobs")
	}
	for i := 0; ; i++ {
		if m, _ := readKept(packs.root, testFolder); m != nil {
			break
		}
		if i == 600 {
			t.Fatal("no kept pack was built")
		}
		time.Sleep(50 * time.Millisecond)
	}
	v.grow(t, 3)
	ids := linearIDs(t, source.FromStore(st), testFolder)
	before := blobGets.Load()
	_, stderr := g.git2(work, "clone", "-v", url, "b")
	b := filepath.Join(work, "b")
	if n, blobs, _ := fetchStats(t, stderr); n != 3 || blobGets.Load()-before != int64(blobs) {
		t.Errorf("clone from the server's pack: %d snapshots synthesized (want 3), %d blob downloads for %d new blobs", n, blobGets.Load()-before, blobs)
	}
	if got := strings.Fields(g.git(b, "rev-list", "--reverse", "HEAD")); strings.Join(got, " ") != strings.Join(hashStrings(ids), " ") {
		t.Errorf("the clone from the server's pack has other commits than history.Linear")
	}
	g.git(b, "fsck", "--strict", "--no-dangling")
	v.grow(t, 2)
	ids = linearIDs(t, source.FromStore(st), testFolder)
	_, stderr = g.git2(b, "fetch", "-v")
	if n, _, _ := fetchStats(t, stderr); n != 2 {
		t.Errorf("fetch after a clone from the server's pack synthesized %d snapshots, want 2", n)
	}
	if tip := revParse(g, b, "origin/main"); tip != ids[len(ids)-1].String() {
		t.Errorf("after fetch: %s, want %s", tip, ids[len(ids)-1])
	}

	if err := st.SetHistoryConfig([]byte(`{"author":{"name":"Renamed","email":"new@example.com"}}`)); err != nil {
		t.Fatal(err)
	}
	ids = linearIDs(t, source.FromStore(st), testFolder)
	packs.wait.Store(int64(firstPackWait))
	before = blobGets.Load()
	g.git(work, "clone", "-q", url, "c")
	if n := blobGets.Load() - before; n != 0 {
		t.Errorf("the clone that waited for the rebuilt pack downloaded %d blobs", n)
	}
	if got := strings.Fields(g.git(filepath.Join(work, "c"), "rev-list", "--reverse", "HEAD")); strings.Join(got, " ") != strings.Join(hashStrings(ids), " ") {
		t.Errorf("the clone from the rebuilt pack has other commits than history.Linear")
	}
}

// TestReceivePackChecks: a pack whose content does not match its checksum,
// or an index of another pack, is refused and leaves nothing behind.
func TestReceivePackChecks(t *testing.T) {
	dir := t.TempDir()
	pw, err := newPackWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("some content\n")
	if err := pw.write([20]byte{1}, objBlob, len(data), 0, compress(data)); err != nil {
		t.Fatal(err)
	}
	keepFile, err := pw.finish()
	if err != nil {
		t.Fatal(err)
	}
	base := strings.TrimSuffix(keepFile, ".keep")
	pack, err := os.ReadFile(base + ".pack")
	if err != nil {
		t.Fatal(err)
	}
	idx, err := os.ReadFile(base + ".idx")
	if err != nil {
		t.Fatal(err)
	}
	into := t.TempDir()
	if _, err := receivePack(bytes.NewReader(append(append([]byte(nil), pack...), idx...)), int64(len(pack)), into); err != nil {
		t.Fatalf("a good pack: %v", err)
	}
	bad := append([]byte(nil), pack...)
	bad[len(bad)-25] ^= 1
	badIdx := append([]byte(nil), idx...)
	badIdx[len(badIdx)-30] ^= 1
	for name, in := range map[string][]byte{"pack": append(bad, idx...), "index": append(append([]byte(nil), pack...), badIdx...)} {
		into := t.TempDir()
		if _, err := receivePack(bytes.NewReader(in), int64(len(pack)), into); err == nil {
			t.Errorf("a tampered %s was accepted", name)
		}
		if left, _ := os.ReadDir(into); len(left) != 0 {
			t.Errorf("a tampered %s left %d files", name, len(left))
		}
	}
}
