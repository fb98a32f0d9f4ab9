package mirror

import (
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// A snapshot written by git push relay:: reaches a mirror without a prefix
// as the pushed commit itself, so the mirror's branch and the pusher's
// agree; under a prefix it is a commit of the mirror's own.
func TestPushedCommitReachesTheMirror(t *testing.T) {
	st := openStore(t)
	sim := newFolderSim(t, st)
	bare, prefixed := bareRepo(t), bareRepo(t)
	tm := newManager(t, st, t.TempDir(), Config{}, connectorTo(bare, "main", ""), connectorTo(prefixed, "main", "vault"))
	sim.snap(map[string]string{"a.md": "alpha\n", "notes/b.md": "beta\n"})
	sim.snap(map[string]string{"a.md": "alpha 2\n"})
	tm.push(t)
	base := gitIn(t, bare, "rev-parse", "main")

	// The user's commit, made in a clone of the same history.
	work := foreignClone(t, bare)
	commitFiles(t, work, "Edit a in git", map[string]string{"a.md": "alpha from git\n", "c.md": "new\n"})
	pushed := gitIn(t, work, "rev-parse", "HEAD")
	cmd := exec.Command("git", "pack-objects", "--revs", "--stdout", "-q")
	cmd.Dir, cmd.Stdin = work, strings.NewReader(pushed+"\n^"+base+"\n")
	pack, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	packID, err := st.PutBlob(pack, store.BlobID{})
	if err != nil {
		t.Fatal(err)
	}

	// Its snapshot, as ingest records it after the push's writes.
	sim.files["a.md"], sim.files["c.md"] = "alpha from git\n", "new\n"
	var files []store.File
	for _, p := range slices.Sorted(maps.Keys(sim.files)) {
		data := []byte(sim.files[p])
		id, err := st.PutBlob(data, store.BlobID{})
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, store.File{Path: p, Blob: id, Size: int64(len(data)), DocID: "doc:" + p, Kind: "markdown"})
	}
	snap := &store.Snapshot{Folder: sim.folder, Time: sim.when.Add(time.Minute), Files: files,
		Changes: []store.Change{{Kind: store.ChangeModified, Path: "a.md", DocID: "doc:a.md"}, {Kind: store.ChangeAdded, Path: "c.md", DocID: "doc:c.md"}},
		Origin:  store.Origin{Pushed: &store.Pushed{Commit: plumbing.NewHash(pushed), Parent: plumbing.NewHash(base), Pack: packID}}}
	if _, err := st.AddSnapshot(snap, nil, nil); err != nil {
		t.Fatal(err)
	}
	tm.push(t)
	if got := gitIn(t, bare, "rev-parse", "main"); got != pushed {
		t.Fatalf("the mirror's main is %s, want the pushed commit %s", got, pushed)
	}
	gitIn(t, bare, "fsck", "--strict", "--no-dangling")
	if got := gitIn(t, prefixed, "show", "main:vault/a.md"); got != "alpha from git" {
		t.Errorf("the prefixed mirror has vault/a.md %q", got)
	}
	if msg := gitIn(t, prefixed, "log", "-1", "--format=%B", "main"); !strings.Contains(msg, "Written into Relay by git push of commit "+pushed) {
		t.Errorf("the prefixed mirror's commit does not name the pushed commit:\n%s", msg)
	}
	if !strings.Contains(gitIn(t, bare, "log", "--format=%s", "main"), "Edit a in git") {
		t.Error("the mirror's log lacks the pushed commit's message")
	}
}
