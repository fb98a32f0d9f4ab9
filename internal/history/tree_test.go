package history

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/relay-git-sync/relay-git-sync/internal/gitpath"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

var contents = [][]byte{[]byte("one\n"), []byte("two\n"), []byte(""), []byte("# Plan\n\n- [ ] ship\n")}

func filesOf(paths ...string) []store.File {
	out := make([]store.File, len(paths))
	for i, p := range paths {
		c := contents[i%len(contents)]
		out[i] = store.File{Path: p, Blob: store.BlobIDOf(c), Size: int64(len(c)), DocID: "d", Kind: "markdown"}
	}
	slices.SortFunc(out, func(a, b store.File) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// gitWriteTree builds the tree of files with git's own plumbing
// (hash-object, update-index, write-tree) and returns its id.
func gitWriteTree(t *testing.T, files []store.File) string {
	t.Helper()
	dir := t.TempDir()
	git(t, dir, nil, "init", "--quiet", ".")
	for _, c := range contents {
		got := strings.TrimSpace(git(t, dir, c, "hash-object", "-w", "--stdin"))
		if got != store.BlobIDOf(c).String() {
			t.Fatalf("git hash-object %q = %s, store.BlobIDOf = %s", c, got, store.BlobIDOf(c))
		}
	}
	var info strings.Builder
	for _, f := range files {
		fmt.Fprintf(&info, "100644 %s\t%s\x00", f.Blob, treePath(files, f.Path))
	}
	git(t, dir, []byte(info.String()), "update-index", "--add", "-z", "--index-info")
	return strings.TrimSpace(git(t, dir, nil, "write-tree"))
}

// treePath is the path a file of files has in git trees (see gitpath).
func treePath(files []store.File, p string) string {
	if r, ok := gitpath.Rename(files, func(f store.File) string { return f.Path }, gitpath.Tree)[p]; ok {
		return r
	}
	return p
}

var trickySets = map[string][]string{
	"order": {"a-b", "a.b", "a/b", "a/b.x", "a/b-x", "a/b0/c", "a/c/d", "a0", "ab", "a!", "a~", "A", "Z", "_", "~",
		".hidden", ".config/x", "-dash", "a b", "x/y-/z", "x/y/z", "x/y0", "x/y.", "x/y/z-", "x/y.z/w"},
	"file a": {"a", "a-b", "a.b", "a0", "b/a", "b/a-b", "b/a.b", "b/ab/c", "b/a0"},
	"unicode": {"ä.md", "a.md", "z.md", "日本語/ノート.md", "日本/x", "emoji 🎉.md", "emoji/🎉", "Ünïcødé dir/é.md",
		"e\u0301.md", "é.md", "\u00a0nbsp"},
	"odd bytes": {"tab\there", "new\nline", "quote\"d.md", "back\\slash.md", "sp ace/x y.md", "trailing space ",
		"\"leading quote", "percent%20.md", "star*.md", "q?.md", "colon:x.md"},
	"deep": {"deep/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17/18/19/20/f.md", "deep/1/2/3/g.md", "deep/1/h.md", "deep/i.md"},
	"flat": func() []string {
		var p []string
		for i := range 300 {
			p = append(p, fmt.Sprintf("n%d.md", i))
		}
		return p
	}(),
	"one": {"only.md"},
}

func TestTreeMatchesGit(t *testing.T) {
	needGit(t)
	for name, paths := range trickySets {
		t.Run(name, func(t *testing.T) {
			files := filesOf(paths...)
			s := New(Config{}, memory.NewStorage())
			got, err := s.Tree(files)
			if err != nil {
				t.Fatal(err)
			}
			if want := gitWriteTree(t, files); got.String() != want {
				t.Errorf("Tree = %s, git write-tree = %s", got, want)
			}
		})
	}
}

func TestTreeWrittenObjectsReadByGit(t *testing.T) {
	needGit(t)
	dir, st := bareRepo(t)
	files := filesOf(append(slices.Clone(trickySets["order"]), trickySets["unicode"]...)...)
	blobs := map[store.BlobID][]byte{}
	for _, c := range contents {
		blobs[store.BlobIDOf(c)] = c
	}
	putBlobs(t, st, blobs)
	s := New(Config{}, st)
	h, err := s.Tree(files)
	if err != nil {
		t.Fatal(err)
	}
	git(t, dir, nil, "update-ref", "refs/tags/t", h.String())
	git(t, dir, nil, "fsck", "--strict", "--no-dangling")
	out := git(t, dir, nil, "ls-tree", "-r", "-z", "--full-tree", h.String())
	var lines []string
	for _, f := range files {
		lines = append(lines, fmt.Sprintf("100644 blob %s\t%s", f.Blob, treePath(files, f.Path)))
	}
	slices.SortFunc(lines, func(a, b string) int {
		return strings.Compare(a[strings.IndexByte(a, '\t'):], b[strings.IndexByte(b, '\t'):])
	})
	if want := strings.Join(lines, "\x00") + "\x00"; out != want {
		t.Errorf("git ls-tree -r:\n%q\nwant\n%q", out, want)
	}
}

func TestTreeEmpty(t *testing.T) {
	st := memory.NewStorage()
	s := New(Config{}, st)
	h, err := s.Tree(nil)
	if err != nil || h != EmptyTree {
		t.Fatalf("Tree(nil) = %s, %v; want %s", h, err, EmptyTree)
	}
	if err := st.HasEncodedObject(EmptyTree); err != nil {
		t.Fatalf("empty tree not written: %v", err)
	}
}

// The cached, incremental tree must always equal a tree built from scratch,
// whatever the order of the input.
func TestTreeIncrementalEqualsFresh(t *testing.T) {
	g := newGen(7, 120, false)
	inc := New(Config{}, memory.NewStorage())
	rng := rand.New(rand.NewPCG(1, 2))
	for range 800 {
		snap := g.next()
		got, err := inc.Tree(snap.Files)
		if err != nil {
			t.Fatal(err)
		}
		shuffled := slices.Clone(snap.Files)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		want, err := New(Config{}, memory.NewStorage()).Tree(shuffled)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("snapshot %d: incremental tree %s, fresh (shuffled) %s", snap.Seq, got, want)
		}
	}
}

func TestTreeFileReplacesDirectory(t *testing.T) {
	steps := [][]string{
		{"x/y.md", "x/z/w.md", "k.md"},
		{"x", "k.md"},                   // the directory x becomes a file
		{"x/y.md", "k.md"},              // and back
		{"x/y.md", "x/y0.md", "k.md/a"}, // k.md becomes a directory
		{},
		{"x.md"},
	}
	inc := New(Config{}, memory.NewStorage())
	for i, paths := range steps {
		files := filesOf(paths...)
		got, err := inc.Tree(files)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		want, _ := New(Config{}, memory.NewStorage()).Tree(files)
		if got != want {
			t.Fatalf("step %d: incremental %s, fresh %s", i, got, want)
		}
	}
}

func TestTreeErrors(t *testing.T) {
	cases := map[string][]store.File{
		"duplicate":      filesOf("a.md", "b.md", "a.md"),
		"file and dir":   filesOf("a", "a/b"),
		"dir and file":   filesOf("a/b/c", "a/b"),
		"empty":          filesOf(""),
		"leading slash":  filesOf("/a"),
		"trailing slash": filesOf("a/"),
		"double slash":   filesOf("a//b"),
		"dot":            filesOf("a/./b"),
		"dotdot":         filesOf("../b"),
		"nul":            filesOf("a\x00b"),
		"zero blob":      {{Path: "a"}},
	}
	s := New(Config{}, memory.NewStorage())
	good := filesOf("a.md", "dir/b.md")
	want, err := s.Tree(good)
	if err != nil {
		t.Fatal(err)
	}
	for name, files := range cases {
		if h, err := s.Tree(files); err == nil {
			t.Errorf("%s: no error (tree %s)", name, h)
		} else {
			t.Logf("%s: %v", name, err)
		}
		// A failure must not poison the cache.
		if got, err := s.Tree(good); err != nil || got != want {
			t.Fatalf("after %s: Tree = %s, %v; want %s", name, got, err, want)
		}
	}
}

// gitTreeFiles lists a tree with the git CLI: "mode type id\tpath" lines.
func gitTreeFiles(t *testing.T, dir string, h plumbing.Hash) []string {
	out := strings.TrimSuffix(git(t, dir, nil, "ls-tree", "-r", "-z", h.String()), "\x00")
	if out == "" {
		return nil
	}
	return strings.Split(out, "\x00")
}

// Concurrent callers of one Synthesizer (different folders, even) serialize
// and get the same trees as separate ones.
func TestTreeConcurrent(t *testing.T) {
	shared := New(Config{}, memory.NewStorage())
	done := make(chan error)
	for w := range 4 {
		go func() {
			g := newGen(uint64(100+w), 50, false)
			for range 100 {
				snap := g.next()
				got, err := shared.Append(snap, plumbing.ZeroHash)
				if err != nil {
					done <- err
					return
				}
				want, _ := New(Config{}, memory.NewStorage()).Append(snap, plumbing.ZeroHash)
				if got != want {
					done <- fmt.Errorf("worker %d, snapshot %d: %s, want %s", w, snap.Seq, got, want)
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
