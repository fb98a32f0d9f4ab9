package mirror

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/file"

	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
)

// longHistory is a mirror repository holding a folder's long linear
// history, shared by the push benchmarks.
type longHistory struct {
	dir        string
	repo       *repo
	head, prev plumbing.Hash // the last commit and its parent
	snapshots  int
	objects    int // objects reachable from head
	buildTook  time.Duration
}

var (
	longOnce sync.Once
	longHist *longHistory
	longErr  error
)

// benchSnapshots is the length of the long history (env
// RELAY_MIRROR_BENCH_SNAPSHOTS, default 5,000).
func benchSnapshots() int {
	if n, err := strconv.Atoi(os.Getenv("RELAY_MIRROR_BENCH_SNAPSHOTS")); err == nil && n > 1 {
		return n
	}
	return 5000
}

// buildLongHistory writes n snapshots of a folder of ndocs documents (1–6 KB
// of text each; every snapshot edits 1–3 documents, as typing does) into a
// store, and their linear history into a mirror repository.
func buildLongHistory(n, ndocs int) (*longHistory, error) {
	start := time.Now()
	st, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	dir, err := os.MkdirTemp("", "relay-mirror-bench-")
	if err != nil {
		return nil, err
	}
	r, err := openRepo(filepath.Join(dir, "mirror.git"))
	if err != nil {
		return nil, err
	}
	synth := history.New(testHistory, r.st)
	rng := rand.New(rand.NewPCG(7, 11))
	docs := make([][]string, ndocs)
	for i := range docs {
		for range 20 + rng.IntN(100) {
			docs[i] = append(docs[i], fmt.Sprintf("line %d of document %d: %s", rng.IntN(1e6), i, strings.Repeat("lorem ipsum ", rng.IntN(8))))
		}
	}
	blobs := make([]store.BlobID, len(docs))
	sizes := make([]int64, len(docs))
	put := func(i int) error {
		data := []byte(strings.Join(docs[i], "\n") + "\n")
		id, err := st.PutBlob(data, blobs[i])
		if err != nil {
			return err
		}
		if _, err := r.putBlob(data); err != nil {
			return err
		}
		blobs[i], sizes[i] = id, int64(len(data))
		return nil
	}
	for i := range docs {
		if err := put(i); err != nil {
			return nil, err
		}
	}
	when := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var head, prev plumbing.Hash
	for s := 1; s <= n; s++ {
		var changes []store.Change
		if s > 1 {
			for range 1 + rng.IntN(3) {
				i := rng.IntN(len(docs))
				l := rng.IntN(len(docs[i]))
				docs[i][l] += fmt.Sprintf(" edit %d", s)
				if rng.IntN(4) == 0 {
					docs[i] = append(docs[i], fmt.Sprintf("new line %d", s))
				}
				if err := put(i); err != nil {
					return nil, err
				}
				changes = append(changes, store.Change{Kind: store.ChangeModified, Path: docPath(i), DocID: fmt.Sprint("doc-", i)})
			}
		}
		files := make([]store.File, len(docs))
		for i := range docs {
			files[i] = store.File{Path: docPath(i), Blob: blobs[i], Size: sizes[i], DocID: fmt.Sprint("doc-", i), Kind: "markdown"}
		}
		sortFiles(files)
		when = when.Add(time.Minute)
		snap := &store.Snapshot{Folder: testFolder, Time: when, Changes: changes, Files: files}
		if _, err := st.AddSnapshot(snap, nil, nil); err != nil {
			return nil, err
		}
		prev = head
		if head, err = synth.Append(snap, head); err != nil {
			return nil, err
		}
	}
	if err := r.setRef(refHead, head); err != nil {
		return nil, err
	}
	objs, err := r.pushObjects(head, nil)
	if err != nil {
		return nil, err
	}
	return &longHistory{dir: dir, repo: r, head: head, prev: prev, snapshots: n, objects: len(objs), buildTook: time.Since(start)}, nil
}

func docPath(i int) string {
	return fmt.Sprintf("%s/doc %03d.md", []string{"notes", "projects/alpha", "projects/beta", "daily", "archive/2024"}[i%5], i)
}

func sortFiles(fs []store.File) {
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && fs[j].Path < fs[j-1].Path; j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}

func getLongHistory(b *testing.B) *longHistory {
	b.Helper()
	longOnce.Do(func() { longHist, longErr = buildLongHistory(benchSnapshots(), 200) })
	if longErr != nil {
		b.Fatal(longErr)
	}
	return longHist
}

// pushWith pushes head (over old, zero for a new branch) from the mirror to
// url with go-git's transport and the given packer, and returns the pack
// size.
func pushWith(ctx context.Context, r *repo, rem *remote, head, old plumbing.Hash, pk packer) (int64, error) {
	sess, ar, err := rem.receivePack(ctx)
	if err != nil {
		return 0, err
	}
	defer sess.Close()
	_, haves := advertised(ar, plumbing.NewBranchReferenceName("main"))
	objs, err := r.pushObjects(head, haves)
	if err != nil {
		return 0, err
	}
	var n int64
	_, err = rem.send(ctx, sess, ar, plumbing.NewBranchReferenceName("main"), old, head, func(w io.Writer) error {
		cw := &countWriter{w: w}
		err := pk(ctx, cw, r, objs, supportsOFSDelta(ar))
		n = cw.n
		return err
	})
	return n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func fileRemote(b *testing.B, path string) *remote {
	ep, err := transport.NewEndpoint("file://" + path)
	if err != nil {
		b.Fatal(err)
	}
	return &remote{url: path, display: path, ep: ep, client: file.DefaultClient, fetchURL: "file://" + path}
}

func freshBare(b *testing.B) string {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "remote.git")
	if out, err := exec.Command("git", "init", "-q", "--bare", "-b", "main", dir).CombinedOutput(); err != nil {
		b.Fatalf("git init: %v %s", err, out)
	}
	return dir
}

// BenchmarkPushLongHistory pushes a folder's whole history (5,000
// snapshots by default; RELAY_MIRROR_BENCH_SNAPSHOTS) to an empty bare
// repository, and one new snapshot on top of it, in the ways considered:
//
//   - go-git-window10: our object walk + go-git's pack encoder with the
//     delta window go-git and git use for pushes (pure Go);
//   - go-git-nodelta: the same without delta search;
//   - git-pack-objects: our object walk + `git pack-objects` (C git),
//     both over go-git's transport;
//   - go-git-Remote.Push: go-git's own push (revlist over everything +
//     encoder);
//   - git-push-cli: `git push` of the mirror repository (C git end to end).
//
// pack-MB is the size of the pack sent.
func BenchmarkPushLongHistory(b *testing.B) {
	testreq.Git(b)
	h := getLongHistory(b)
	b.Logf("history: %d snapshots, %d objects, built in %v", h.snapshots, h.objects, h.buildTook.Round(time.Millisecond))
	ctx := context.Background()
	full := func(pk packer) func(b *testing.B) {
		return func(b *testing.B) {
			var size int64
			for b.Loop() {
				b.StopTimer()
				bare := freshBare(b)
				b.StartTimer()
				n, err := pushWith(ctx, h.repo, fileRemote(b, bare), h.head, plumbing.ZeroHash, pk)
				if err != nil {
					b.Fatal(err)
				}
				size = n
			}
			b.ReportMetric(float64(size)/1e6, "pack-MB")
		}
	}
	b.Run("full/go-git-window10", full(goGitPacker(PackWindow)))
	b.Run("full/go-git-nodelta", full(goGitPacker(0)))
	b.Run("full/git-pack-objects", full(gitPacker("git")))
	b.Run("full/go-git-Remote.Push", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			bare := freshBare(b)
			repoObj, err := git.Open(h.repo.st, nil)
			if err != nil {
				b.Fatal(err)
			}
			rem, err := repoObj.CreateRemoteAnonymous(&config.RemoteConfig{Name: "anonymous", URLs: []string{bare}})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			err = rem.PushContext(ctx, &git.PushOptions{RemoteName: "anonymous", RefSpecs: []config.RefSpec{config.RefSpec(refHead + ":refs/heads/main")}})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("full/git-push-cli", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			bare := freshBare(b)
			b.StartTimer()
			cmd := exec.Command("git", "push", "-q", bare, string(refHead)+":refs/heads/main")
			cmd.Env = append(os.Environ(), "GIT_DIR="+h.repo.path)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("git push: %v %s", err, out)
			}
		}
	})

	// One snapshot on top of the long history the remote already has.
	incr := func(push func(b *testing.B, bare string)) func(b *testing.B) {
		return func(b *testing.B) {
			b.StopTimer()
			base := freshBare(b)
			if _, err := pushWith(ctx, h.repo, fileRemote(b, base), h.prev, plumbing.ZeroHash, gitPacker("git")); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			for b.Loop() {
				b.StopTimer()
				bare := filepath.Join(b.TempDir(), "copy.git")
				if out, err := exec.Command("cp", "-a", base, bare).CombinedOutput(); err != nil {
					b.Fatalf("cp: %v %s", err, out)
				}
				b.StartTimer()
				push(b, bare)
			}
		}
	}
	b.Run("one-more/go-git-window10", incr(func(b *testing.B, bare string) {
		if _, err := pushWith(ctx, h.repo, fileRemote(b, bare), h.head, h.prev, goGitPacker(PackWindow)); err != nil {
			b.Fatal(err)
		}
	}))
	b.Run("one-more/git-pack-objects", incr(func(b *testing.B, bare string) {
		if _, err := pushWith(ctx, h.repo, fileRemote(b, bare), h.head, h.prev, gitPacker("git")); err != nil {
			b.Fatal(err)
		}
	}))
	b.Run("one-more/go-git-Remote.Push", incr(func(b *testing.B, bare string) {
		repoObj, err := git.Open(h.repo.st, nil)
		if err != nil {
			b.Fatal(err)
		}
		rem, _ := repoObj.CreateRemoteAnonymous(&config.RemoteConfig{Name: "anonymous", URLs: []string{bare}})
		if err := rem.PushContext(ctx, &git.PushOptions{RemoteName: "anonymous", RefSpecs: []config.RefSpec{config.RefSpec(refHead + ":refs/heads/main")}}); err != nil {
			b.Fatal(err)
		}
	}))
	b.Run("one-more/git-push-cli", incr(func(b *testing.B, bare string) {
		cmd := exec.Command("git", "push", "-q", bare, string(refHead)+":refs/heads/main")
		cmd.Env = append(os.Environ(), "GIT_DIR="+h.repo.path)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("git push: %v %s", err, out)
		}
	}))
}

// TestPackersAgree checks that every packer's pack gives the remote the
// same history (fsck-clean), on a short history.
func TestPackersAgree(t *testing.T) {
	h, err := buildLongHistory(150, 40)
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(h.dir)
	defer h.repo.close()
	ctx := context.Background()
	for name, pk := range map[string]packer{"go-git": goGitPacker(PackWindow), "go-git-nodelta": goGitPacker(0), "git": gitPacker("git")} {
		dir := filepath.Join(t.TempDir(), "r.git")
		if out, err := exec.Command("git", "init", "-q", "--bare", "-b", "main", dir).CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		ep, _ := transport.NewEndpoint("file://" + dir)
		rem := &remote{display: dir, ep: ep, client: file.DefaultClient}
		if _, err := pushWith(ctx, h.repo, rem, h.prev, plumbing.ZeroHash, pk); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := pushWith(ctx, h.repo, rem, h.head, h.prev, pk); err != nil {
			t.Fatalf("%s (incremental): %v", name, err)
		}
		out, err := exec.Command("git", "--git-dir", dir, "rev-parse", "main").Output()
		if err != nil || strings.TrimSpace(string(out)) != h.head.String() {
			t.Errorf("%s: main = %s %v", name, bytes.TrimSpace(out), err)
		}
		if out, err := exec.Command("git", "--git-dir", dir, "fsck", "--strict", "--no-dangling").CombinedOutput(); err != nil {
			t.Errorf("%s: fsck: %v %s", name, err, out)
		}
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if longHist != nil {
		longHist.repo.close()
		os.RemoveAll(longHist.dir)
	}
	os.Exit(code)
}
