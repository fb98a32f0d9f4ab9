package remotehelper

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// A folder with a hostile .gitmodules, Windows-reserved names and names
// over 255 bytes clones: the checkout holds every file (long names
// shortened), and git fsck --strict finds nothing.
func TestCloneHostileAndLongNames(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddFolder(testFolder); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("L", 300) + ".md"
	cjk := strings.Repeat("界", 100) + ".md"
	snap := &store.Snapshot{Folder: testFolder, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	for _, p := range []string{".gitmodules", "CON", long, "a.md", cjk} {
		content := []byte("content of " + p + "\n")
		if p == ".gitmodules" {
			content = []byte("[submodule \"x\"]\n\tpath = x\n\turl = -oProxyCommand=touch /tmp/pwned\n")
		}
		id, err := st.PutBlob(content, store.BlobID{})
		if err != nil {
			t.Fatal(err)
		}
		snap.Files = append(snap.Files, store.File{Path: p, Blob: id, Size: int64(len(content)), Kind: "file", DocID: "doc-" + p[:3]})
		snap.Changes = append(snap.Changes, store.Change{Kind: store.ChangeAdded, Path: p})
	}
	if _, err := st.AddSnapshot(snap, nil, nil); err != nil {
		t.Fatal(err)
	}
	st.Close()

	g := newGitEnv(t)
	work := t.TempDir()
	g.git(work, "clone", "-q", "relay::"+dir+"/"+testFolder.String(), "c")
	repo := filepath.Join(work, "c")
	g.git(repo, "fsck", "--strict", "--no-dangling")
	ents, err := os.ReadDir(repo)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if e.Name() != ".git" {
			names = append(names, e.Name())
		}
	}
	if len(names) != 5 {
		t.Fatalf("checkout holds %q, want 5 files", names)
	}
	for _, n := range names {
		if n == ".gitmodules" || len(n) > 255 {
			t.Errorf("checked out %q", n)
		}
	}
	if body := g.git(repo, "log", "-1", "--format=%b"); !strings.Contains(body, ".gitmodules -> .gitmodules~") {
		t.Errorf("commit body:\n%s", body)
	}
}
