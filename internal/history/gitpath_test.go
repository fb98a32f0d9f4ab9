package history

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// Files git would refuse or interpret, Windows-reserved names and names
// over 255 bytes are written under safe names: git fsck --strict (the
// rules of receive.fsckObjects) finds nothing, and a clone checks out.
func TestHostileNamesPassFsckAndCheckout(t *testing.T) {
	needGit(t)
	dir, st := bareRepo(t)
	long := strings.Repeat("L", 300) + ".md"
	cjk := strings.Repeat("界", 100) + ".md"
	hostile := []byte("[submodule \"x\"]\n\tpath = x\n\turl = -oProxyCommand=touch /tmp/pwned\n")
	paths := map[string][]byte{
		".gitmodules": hostile, "sub/.GITMODULES": hostile, ".gitattributes": []byte("* filter=lfs\n"),
		"x/.git/config": []byte("[core]\n"), "git~1": []byte("a\n"), "CON": []byte("c\n"), "aux.md": []byte("d\n"),
		"what?.md": []byte("e\n"), "a:b.md": []byte("f\n"), "dot.": []byte("g\n"), long: []byte("h\n"), cjk: []byte("i\n"),
		long[:250] + "/x.md": []byte("j\n"), "ok.md": []byte("k\n"),
	}
	blobs := map[store.BlobID][]byte{}
	var files []store.File
	for p, c := range paths {
		blobs[store.BlobIDOf(c)] = c
		files = append(files, store.File{Path: p, Blob: store.BlobIDOf(c)})
	}
	putBlobs(t, st, blobs)
	s := New(goldenConfig, st)
	snap := &store.Snapshot{Folder: store.FolderID{Relay: "r", Folder: "f"}, Seq: 1, Files: files}
	h, err := s.Append(snap, plumbing.ZeroHash)
	if err != nil {
		t.Fatal(err)
	}
	setRef(t, st, "refs/heads/main", h)
	git(t, dir, nil, "fsck", "--strict", "--no-dangling", "--no-progress")

	work := filepath.Join(t.TempDir(), "clone")
	git(t, dir, nil, "clone", "--quiet", dir, work)
	if _, err := os.Stat(filepath.Join(work, "ok.md")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{".gitmodules", ".gitattributes", "x/.git"} {
		if _, err := os.Stat(filepath.Join(work, p)); err == nil {
			t.Errorf("%s checked out under its own name", p)
		}
	}
	var n int
	filepath.WalkDir(work, func(p string, d os.DirEntry, err error) error {
		if d != nil && d.Name() == ".git" && p == filepath.Join(work, ".git") {
			return filepath.SkipDir
		}
		if d != nil && !d.IsDir() {
			n++
		}
		return nil
	})
	if n != len(paths) {
		t.Errorf("clone has %d files, want %d", n, len(paths))
	}
}

// The commit body says where a renamed file went.
func TestMessageNotesRenamed(t *testing.T) {
	snap := &store.Snapshot{Folder: store.FolderID{Relay: "r", Folder: "f"}, Seq: 2,
		Files:   []store.File{{Path: ".gitmodules", Blob: store.BlobIDOf([]byte("x"))}, {Path: "a.md", Blob: store.BlobIDOf([]byte("y"))}},
		Changes: []store.Change{{Kind: store.ChangeAdded, Path: ".gitmodules"}}}
	m := Message(snap, nil)
	if !strings.Contains(m, "\n  .gitmodules -> .gitmodules~") {
		t.Fatalf("message:\n%s", m)
	}
	snap.Changes = []store.Change{{Kind: store.ChangeModified, Path: "a.md"}}
	if m := Message(snap, nil); strings.Contains(m, "another name") {
		t.Fatalf("message notes an unrenamed change:\n%s", m)
	}
}
