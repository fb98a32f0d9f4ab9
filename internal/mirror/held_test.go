package mirror

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// twenty is a folder of 20 notes, and burst deletes 15 of them.
func twenty() (all, burst map[string]string) {
	all, burst = map[string]string{}, map[string]string{}
	for i := 0; i < 20; i++ {
		p := fmt.Sprintf("note-%02d.md", i)
		all[p] = fmt.Sprintf("note %d\n", i)
		if i >= 5 {
			burst[p] = ""
		}
	}
	return all, burst
}

func openGuardedStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	o := store.Options{HoldDeletions: store.DefaultHoldPolicy}
	if dir == "" {
		o.InMemory = true
	}
	st, err := store.Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// remoteFiles is the number of files on the remote branch.
func remoteFiles(t *testing.T, bare, rev string) int {
	t.Helper()
	return len(lsTree(t, bare, rev))
}

// A folder of 20 files loses 15 in one burst: the snapshot is recorded
// and held, the remote keeps the 20 files — through a restart of the
// store and the manager, and a later snapshot — until the hold is
// released; then it gets the deletion, as the folder's own history.
func TestHeldMassDeletionWaitsForRelease(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	st := openGuardedStore(t, dir)
	sim := newFolderSim(t, st)
	bare := bareRepo(t)
	conn := connectorTo(bare, "main", "")
	dataDir := t.TempDir()
	tm := newManager(t, st, dataDir, Config{}, conn)
	all, burst := twenty()
	sim.snap(all)
	tm.push(t)
	sim.snap(burst) // 2: held
	if res := tm.push(t); res[0].Held != 2 || res[0].Seq != 1 || !res[0].UpToDate {
		t.Fatalf("push of a held snapshot: %+v", res[0])
	}
	if n := remoteFiles(t, bare, "main"); n != 20 {
		t.Fatalf("remote has %d files after the held deletion, want 20", n)
	}

	// Restart: the hold is in the store.
	tm.Close()
	files := sim.files
	st.Close()
	st = openGuardedStore(t, dir)
	defer st.Close()
	sim = newFolderSim(t, st)
	sim.files, sim.when = files, sim.when.Add(time.Hour)
	tm = newManager(t, st, dataDir, Config{}, conn)
	sim.snap(map[string]string{"note-00.md": "note 0, edited\n"}) // 3: behind the hold
	if res := tm.push(t); res[0].Held != 2 || res[0].Seq != 1 {
		t.Fatalf("push after restart: %+v", res[0])
	}
	if n := remoteFiles(t, bare, "main"); n != 20 {
		t.Fatalf("remote has %d files after restart, want 20", n)
	}

	if _, err := st.ReleaseHold(testFolder); err != nil {
		t.Fatal(err)
	}
	res := tm.push(t)
	if res[0].Held != 0 || res[0].Seq != 3 || res[0].Commits != 2 {
		t.Fatalf("push after release: %+v", res[0])
	}
	checkFiles(t, bare, "main", sim.files)
	want := linearIDs(t, sim.all())
	if got := gitIn(t, bare, "rev-parse", "main"); got != want[len(want)-1] {
		t.Errorf("after release main = %s, want Linear's %s (the folder's own history)", got, want[len(want)-1])
	}
}

// Drop: the held snapshots are never pushed; a folder still emptied is
// held again; the next good snapshot is pushed on top of the last pushed
// commit, and the remote never sees the emptied tree.
func TestDroppedMassDeletionIsNeverPushed(t *testing.T) {
	st := openGuardedStore(t, "")
	defer st.Close()
	sim := newFolderSim(t, st)
	bare := bareRepo(t)
	tm := newManager(t, st, t.TempDir(), Config{}, connectorTo(bare, "main", ""))
	all, burst := twenty()
	sim.snap(all) // 1
	tm.push(t)
	before := gitIn(t, bare, "rev-parse", "main")
	sim.snap(burst) // 2: held
	if _, r, err := st.DropHold(testFolder); err != nil || r != (store.SeqRange{From: 2, Through: 2}) {
		t.Fatalf("DropHold: %+v, %v", r, err)
	}
	if res := tm.push(t); !res[0].UpToDate || res[0].Held != 0 {
		t.Fatalf("push after drop: %+v", res[0])
	}
	// Still emptied: compared with snapshot 1, held again.
	sim.snap(map[string]string{"note-00.md": "note 0, edited\n"}) // 3
	if res := tm.push(t); res[0].Held != 3 {
		t.Fatalf("a still emptied folder after a drop: %+v", res[0])
	}
	if _, _, err := st.DropHold(testFolder); err != nil {
		t.Fatal(err)
	}
	// Restored in Relay, with an edit: pushed, one commit on the last.
	restored := map[string]string{}
	for p, c := range all {
		restored[p] = c
	}
	restored["note-01.md"] = "note 1, edited\n"
	sim.snap(restored) // 4
	res := tm.push(t)
	if res[0].Seq != 4 || res[0].Commits != 1 || res[0].Held != 0 {
		t.Fatalf("push of the next good snapshot: %+v", res[0])
	}
	checkFiles(t, bare, "main", sim.files)
	if parent := gitIn(t, bare, "rev-parse", "main^"); parent != before {
		t.Errorf("parent of the pushed commit = %s, want the last pushed %s", parent, before)
	}
	for _, c := range strings.Fields(gitIn(t, bare, "rev-list", "main")) {
		if n := remoteFiles(t, bare, c); n != 20 {
			t.Errorf("remote commit %s has %d files: an emptied tree was pushed", c, n)
		}
	}
	log := gitIn(t, bare, "log", "--format=%B", "main")
	for _, seq := range []int{2, 3} {
		if strings.Contains(log, fmt.Sprintf("#%d\n", seq)) {
			t.Errorf("dropped snapshot %d has a commit on the remote", seq)
		}
	}
	// Later snapshots follow as usual.
	sim.snap(map[string]string{"note-02.md": "note 2, edited\n"})
	if res := tm.push(t); res[0].Commits != 1 || res[0].Seq != 5 {
		t.Fatalf("push after the drop's commit: %+v", res[0])
	}
	checkFiles(t, bare, "main", sim.files)
	gitIn(t, bare, "fsck", "--strict", "--no-dangling")
}
