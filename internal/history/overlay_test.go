package history

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// fileSet builds files from "path=content" specs.
func fileSet(specs ...string) []store.File {
	var out []store.File
	for _, s := range specs {
		p, c, _ := strings.Cut(s, "=")
		if c == "" {
			c = "content of " + p
		}
		out = append(out, store.File{Path: p, Blob: store.BlobIDOf([]byte(c)), Size: int64(len(c)), DocID: "d", Kind: "markdown"})
	}
	slices.SortFunc(out, func(a, b store.File) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// under puts files under prefix.
func under(prefix string, files []store.File) []store.File {
	out := slices.Clone(files)
	for i := range out {
		out[i].Path = prefix + "/" + out[i].Path
	}
	return out
}

func TestTreeWithPrefix(t *testing.T) {
	st := memory.NewStorage()
	foreign := New(Config{}, st) // builds the remote's trees
	treeOf := func(files []store.File) plumbing.Hash {
		t.Helper()
		h, err := New(Config{}, st).Tree(files)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	snapFiles := fileSet("a.md", "sub/b.md", "sub/deeper/c.md")
	cases := []struct {
		name, prefix string
		base, files  []store.File // base nil: zero tree
		want         []store.File
	}{
		{"siblings kept", "docs",
			fileSet("README.md", "src/main.go", "docs/old.md", "docs/sub/x.md", "docsx/y", "docs.md", "docs-a/z"),
			snapFiles,
			append(fileSet("README.md", "src/main.go", "docsx/y", "docs.md", "docs-a/z"), under("docs", snapFiles)...)},
		{"nested prefix", "a/b/c",
			fileSet("a/keep.md", "a/b/keep2.md", "a/b/c/gone.md", "a/b/c/d/gone2.md", "a/b/cc/keep3.md"),
			snapFiles,
			append(fileSet("a/keep.md", "a/b/keep2.md", "a/b/cc/keep3.md"), under("a/b/c", snapFiles)...)},
		{"empty base", "docs", nil, snapFiles, under("docs", snapFiles)},
		{"empty tree base", "docs", []store.File{}, snapFiles, under("docs", snapFiles)},
		{"file at prefix replaced", "docs", fileSet("docs", "x.md"), snapFiles,
			append(fileSet("x.md"), under("docs", snapFiles)...)},
		{"file on the way replaced", "a/b", fileSet("a", "x.md"), snapFiles,
			append(fileSet("x.md"), under("a/b", snapFiles)...)},
		{"no files: prefix removed", "docs", fileSet("docs/x.md", "README.md"), nil, fileSet("README.md")},
		{"no files: nested prefix removed", "a/b", fileSet("a/b/x.md", "README.md"), nil, fileSet("README.md")},
		{"no files: everything removed", "docs", fileSet("docs/x.md"), nil, nil},
		{"no files: foreign file at prefix kept", "docs", fileSet("docs", "README.md"), nil, fileSet("docs", "README.md")},
		{"empty prefix: whole tree", "", fileSet("README.md", "x/y.md"), snapFiles, snapFiles},
		{"unicode prefix", "Ünïcødé/日本", fileSet("Ünïcødé/keep.md", "Ünïcødé/日本/old.md"), snapFiles,
			append(fileSet("Ünïcødé/keep.md"), under("Ünïcødé/日本", snapFiles)...)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var base plumbing.Hash
			if c.base != nil {
				var err error
				if base, err = foreign.Tree(c.base); err != nil {
					t.Fatal(err)
				}
			}
			s := New(Config{}, st)
			got, err := s.TreeWithPrefix(base, c.prefix, c.files)
			if err != nil {
				t.Fatal(err)
			}
			if want := treeOf(c.want); got != want {
				t.Fatalf("TreeWithPrefix = %s, want %s (the tree of %v)", got, want, paths(c.want))
			}
			// Idempotent: the result with the same files again is itself.
			if again, err := s.TreeWithPrefix(got, c.prefix, c.files); err != nil || again != got {
				t.Fatalf("again: %s, %v; want %s", again, err, got)
			}
		})
	}
}

func paths(files []store.File) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Path)
	}
	return out
}

func TestOverlayKeepsForeignFiles(t *testing.T) {
	st := memory.NewStorage()
	treeOf := func(files []store.File) plumbing.Hash {
		t.Helper()
		h, err := New(Config{}, st).Tree(files)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	// The remote: files the folder had (some now gone or changed) and
	// files someone else pushed.
	base := fileSet("README.md", "notes/a.md", "notes/b.md=old b", "notes/foreign.md", "x.md=foreign x",
		"y/z.md", "w", "gone/only.md", "gone/deeper/too.md", ".github/workflows/ci.yml")
	owned := map[string]bool{"notes/a.md": true, "notes/b.md": true, "gone/only.md": true, "gone/deeper/too.md": true,
		"x.md": true, "ever/had.md": true}
	everOwned := func(p string) bool { return owned[p] }
	files := fileSet("notes/b.md=new b", "x.md", "y", "w/q.md", "new/c.md")
	want := fileSet("README.md", "notes/foreign.md", ".github/workflows/ci.yml",
		"notes/b.md=new b", "x.md", "y", "w/q.md", "new/c.md")

	for _, prefix := range []string{"", "sub", "sub/dir"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			baseFiles, wantFiles, snap := base, want, files
			outside := fileSet("outside.md", "sub/outside.md", "subx/y.md")
			if prefix != "" {
				baseFiles = append(under(prefix, base), outside...)
				wantFiles = append(under(prefix, want), outside...)
				if prefix == "sub" {
					baseFiles = slices.DeleteFunc(baseFiles, func(f store.File) bool { return f.Path == "sub/outside.md" })
					wantFiles = slices.DeleteFunc(wantFiles, func(f store.File) bool { return f.Path == "sub/outside.md" })
				}
			}
			s := New(Config{}, st)
			got, err := s.Overlay(treeOf(baseFiles), prefix, everOwned, snap)
			if err != nil {
				t.Fatal(err)
			}
			if w := treeOf(wantFiles); got != w {
				t.Fatalf("Overlay = %s, want %s", got, w)
			}
			// Nothing owned, nothing to add: the base itself, untouched.
			b := treeOf(fileSet("README.md", "z/y.md"))
			if got, err := s.Overlay(b, prefix, func(string) bool { return false }, nil); err != nil || got != b {
				t.Fatalf("Overlay with nothing owned = %s, %v; want %s", got, err, b)
			}
		})
	}
}

func TestOverlayErrors(t *testing.T) {
	s := New(Config{}, memory.NewStorage())
	for _, p := range []string{"/abs", "a/", "a//b", "../x", "x/.git", "."} {
		if _, err := s.TreeWithPrefix(plumbing.ZeroHash, p, fileSet("a.md")); err == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
	if _, err := s.TreeWithPrefix(plumbing.NewHash("0123456789abcdef0123456789abcdef01234567"), "docs", fileSet("a.md")); err == nil {
		t.Errorf("missing base tree accepted")
	}
}

// Foreign entries that are not regular files (executables, symlinks,
// submodules), written by git itself, survive an overlay unchanged; git
// checks the result.
func TestOverlayForeignModesWithGit(t *testing.T) {
	needGit(t)
	dir, st := bareRepo(t)
	blob := strings.TrimSpace(git(t, dir, []byte("#!/bin/sh\necho hi\n"), "hash-object", "-w", "--stdin"))
	link := strings.TrimSpace(git(t, dir, []byte("docs/a.md"), "hash-object", "-w", "--stdin"))
	old := strings.TrimSpace(git(t, dir, []byte("old\n"), "hash-object", "-w", "--stdin"))
	sub := "0123456789abcdef0123456789abcdef01234567"
	mktree := func(lines ...string) string {
		return strings.TrimSpace(git(t, dir, []byte(strings.Join(lines, "\n")+"\n"), "mktree", "--missing"))
	}
	vendor := mktree("160000 commit " + sub + "\tlib")
	docs := mktree("100644 blob "+old+"\told.md", "100755 blob "+blob+"\tforeign-tool.sh")
	root := mktree("100755 blob "+blob+"\trun.sh", "120000 blob "+link+"\tlink", "040000 tree "+vendor+"\tvendor",
		"040000 tree "+docs+"\tdocs", "100644 blob "+old+"\tREADME.md")

	files := fileSet("a.md=alpha", "b/c.md=gamma")
	blobs := map[store.BlobID][]byte{}
	for _, c := range []string{"alpha", "gamma"} {
		blobs[store.BlobIDOf([]byte(c))] = []byte(c)
	}
	putBlobs(t, st, blobs)
	s := New(Config{}, st)

	check := func(got plumbing.Hash, want ...string) {
		t.Helper()
		git(t, dir, nil, "update-ref", "refs/tags/check", got.String())
		git(t, dir, nil, "fsck", "--strict", "--no-dangling", "--no-progress")
		lines := gitTreeFiles(t, dir, got)
		if !slices.Equal(lines, want) {
			t.Fatalf("git ls-tree -r:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
		}
	}
	a, c := store.BlobIDOf([]byte("alpha")), store.BlobIDOf([]byte("gamma"))

	// The prefix replaces docs/ entirely; the rest is kept as git wrote it.
	got, err := s.TreeWithPrefix(plumbing.NewHash(root), "docs", files)
	if err != nil {
		t.Fatal(err)
	}
	check(got,
		"100644 blob "+old+"\tREADME.md",
		fmt.Sprintf("100644 blob %s\tdocs/a.md", a),
		fmt.Sprintf("100644 blob %s\tdocs/b/c.md", c),
		"120000 blob "+link+"\tlink",
		"100755 blob "+blob+"\trun.sh",
		"160000 commit "+sub+"\tvendor/lib")

	// Empty prefix: only what the folder ever owned goes.
	owned := func(p string) bool { return p == "docs/old.md" || p == "README.md" }
	got, err = s.Overlay(plumbing.NewHash(root), "", owned, files)
	if err != nil {
		t.Fatal(err)
	}
	check(got,
		fmt.Sprintf("100644 blob %s\ta.md", a),
		fmt.Sprintf("100644 blob %s\tb/c.md", c),
		"100755 blob "+blob+"\tdocs/foreign-tool.sh",
		"120000 blob "+link+"\tlink",
		"100755 blob "+blob+"\trun.sh",
		"160000 commit "+sub+"\tvendor/lib")
	// The untouched subtree is the very same object.
	if ls := git(t, dir, nil, "ls-tree", got.String(), "vendor"); !strings.Contains(ls, vendor) {
		t.Fatalf("vendor subtree rewritten: %s", ls)
	}
}
