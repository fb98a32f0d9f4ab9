package history

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// goldenConfig is the configuration of the golden histories.
var goldenConfig = Config{
	Author:    Identity{Name: "Ada Lovelace", Email: "ada@example.org"},
	Committer: Identity{Name: "Relay Git Sync", Email: "sync@example.org"},
	Authors: map[string]Identity{
		genUsers[0]: {Name: "Alice Example", Email: "alice@example.com"},
		genUsers[1]: {Name: "Bob", Email: "bob@example.com"},
		genUsers[2]: {Name: "No Mail"}, // no e-mail: listed in Relay-Users
	},
}

// Golden commit ids of the last commit of goldenHistory.
// They change only when the commit format changes; such a change must be a
// conscious decision, since every clone and mirror then gets new ids.
const (
	goldenTip        = "8e468afe624d44534371c903c1b9dc3137836549"
	goldenTipDefault = "47b5cfbcb112107adde862c3bd81e1980ed201a5"
)

// goldenHistory is a fixed five-snapshot history: adds, a modification, a
// rename with an addition, a deletion, and a snapshot without changes.
func goldenHistory() []*store.Snapshot {
	folder := store.FolderID{Relay: "6ba7b810-9dad-11d1-80b4-00c04fd430c8", Folder: "f47ac10b-58cc-4372-a567-0e02b2c3d479"}
	t0 := time.Date(2025, 6, 1, 9, 30, 0, 123456789, time.UTC)
	f := func(path, content string) store.File {
		return store.File{Path: path, Blob: store.BlobIDOf([]byte(content)), Size: int64(len(content)), DocID: "doc-" + path, Kind: "markdown"}
	}
	plan1, plan2 := f("notes/plan.md", "# Plan\n"), f("notes/plan.md", "# Plan\n\n- [ ] ship\n")
	readme, board := f("README.md", "hello\n"), f("canvas/board.canvas", `{"nodes":[],"edges":[]}`)
	moved, today := plan2, f("notes/today.md", "today\n")
	moved.Path = "notes/archive/plan.md"
	return []*store.Snapshot{
		{Folder: folder, Seq: 1, Time: t0, Users: []string{genUsers[0]},
			Changes: []store.Change{{Kind: store.ChangeAdded, Path: "README.md"}, {Kind: store.ChangeAdded, Path: "canvas/board.canvas"}, {Kind: store.ChangeAdded, Path: "notes/plan.md"}},
			Files:   []store.File{readme, board, plan1}},
		{Folder: folder, Seq: 2, Time: t0.Add(10 * time.Minute), Users: []string{genUsers[1], genUsers[0]},
			Changes: []store.Change{{Kind: store.ChangeModified, Path: "notes/plan.md"}},
			Files:   []store.File{readme, board, plan2}},
		{Folder: folder, Seq: 3, Time: t0.Add(time.Hour), Users: []string{genUsers[2]},
			Changes: []store.Change{{Kind: store.ChangeRenamed, Path: "notes/archive/plan.md", OldPath: "notes/plan.md"}, {Kind: store.ChangeAdded, Path: "notes/today.md"}},
			Files:   []store.File{readme, board, moved, today}},
		{Folder: folder, Seq: 4, Time: t0.Add(25 * time.Hour), Users: []string{genUsers[3], genUsers[2]},
			Changes: []store.Change{{Kind: store.ChangeDeleted, Path: "README.md"}},
			Files:   []store.File{board, moved, today}},
		{Folder: folder, Seq: 5, Time: t0.Add(26 * time.Hour), Users: []string{genUsers[3]},
			Files: []store.File{board, moved, today}},
	}
}

func synthesize(t testing.TB, cfg Config, snaps []*store.Snapshot) []plumbing.Hash {
	t.Helper()
	ids, err := New(cfg, memory.NewStorage()).Linear(snaps, plumbing.ZeroHash)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestGolden(t *testing.T) {
	ids := synthesize(t, goldenConfig, goldenHistory())
	if got := ids[len(ids)-1].String(); got != goldenTip {
		t.Errorf("golden tip = %s, want %s", got, goldenTip)
	}
	ids = synthesize(t, Config{}, goldenHistory())
	if got := ids[len(ids)-1].String(); got != goldenTipDefault {
		t.Errorf("golden tip (default config) = %s, want %s", got, goldenTipDefault)
	}
}

// The golden commit, byte for byte.
func TestGoldenCommitBytes(t *testing.T) {
	snap := &store.Snapshot{
		Folder: store.FolderID{Relay: "6BA7B810-9DAD-11D1-80B4-00C04FD430C8", Folder: "f47ac10b-58cc-4372-a567-0e02b2c3d479"},
		Seq:    42,
		Time:   time.Date(2025, 1, 2, 3, 4, 5, 999999999, time.FixedZone("X", 5*3600+45*60)),
		Users:  []string{genUsers[1], genUsers[3], genUsers[0], genUsers[2], genUsers[1]},
		Changes: []store.Change{
			{Kind: store.ChangeModified, Path: "notes/plan.md"},
			{Kind: store.ChangeAdded, Path: "notes/new.md"},
			{Kind: store.ChangeRenamed, Path: "notes/archive/old.md", OldPath: "notes/old.md"},
			{Kind: store.ChangeDeleted, Path: "notes/gone.canvas"},
		},
		Files: filesOf("notes/plan.md", "notes/new.md", "notes/archive/old.md", "README.md"),
	}
	st := memory.NewStorage()
	s := New(goldenConfig, st)
	tree, err := s.Tree(snap.Files)
	if err != nil {
		t.Fatal(err)
	}
	parent := plumbing.NewHash("0123456789abcdef0123456789abcdef01234567")
	h, err := s.Commit(snap, []plumbing.Hash{parent}, tree)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := st.EncodedObject(plumbing.CommitObject, h)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := obj.Reader()
	var got bytes.Buffer
	got.ReadFrom(r)
	want := "tree " + tree.String() + "\n" +
		"parent 0123456789abcdef0123456789abcdef01234567\n" +
		"author Ada Lovelace <ada@example.org> 1735766345 +0000\n" + // 2025-01-01T21:19:05Z
		"committer Relay Git Sync <sync@example.org> 1735766345 +0000\n" +
		"\n" +
		"Update 4 files in notes/\n" +
		"\n" +
		"renamed:  notes/old.md -> notes/archive/old.md\n" +
		"deleted:  notes/gone.canvas\n" +
		"added:    notes/new.md\n" +
		"modified: notes/plan.md\n" +
		"\n" +
		"Co-authored-by: Alice Example <alice@example.com>\n" +
		"Co-authored-by: Bob <bob@example.com>\n" +
		"Relay-Users: 0f8e1c7a-users-0003, 0f8e1c7a-users-0004\n" +
		"Relay-Snapshot: 6ba7b810-9dad-11d1-80b4-00c04fd430c8/f47ac10b-58cc-4372-a567-0e02b2c3d479#42\n"
	if got.String() != want {
		t.Errorf("commit:\n%s\nwant:\n%s", got.String(), want)
	}
}

// Same snapshots, separate storers, another local time zone, other
// environment, times in other locations, unsorted input: same ids.
func TestDeterministic(t *testing.T) {
	want := synthesize(t, goldenConfig, goldenHistory())

	saved := time.Local
	t.Cleanup(func() { time.Local = saved })
	time.Local = time.FixedZone("Elsewhere", -(9*3600 + 30*60))
	t.Setenv("TZ", "Pacific/Chatham")
	t.Setenv("GIT_AUTHOR_NAME", "Someone Else")
	t.Setenv("GIT_COMMITTER_DATE", "2001-01-01T00:00:00Z")

	snaps := goldenHistory()
	for i, s := range snaps {
		s.Time = s.Time.In(time.FixedZone(fmt.Sprintf("Z%d", i), (i%25-12)*3600))
		slices.Reverse(s.Files)
		slices.Reverse(s.Changes)
		slices.Reverse(s.Users)
	}
	cfg := goldenConfig
	cfg.Authors = maps.Clone(goldenConfig.Authors)
	got := synthesize(t, cfg, snaps)
	if !slices.Equal(got, want) {
		t.Fatalf("ids differ:\n%v\n%v", got, want)
	}
}

// A child process with another time zone, locale and git environment, and
// other map seeds, gives the golden ids.
func TestDeterministicInOtherProcess(t *testing.T) {
	if os.Getenv("HISTORY_TEST_CHILD") == "1" {
		for _, h := range synthesize(t, goldenConfig, goldenHistory()) {
			fmt.Println("ID", h)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDeterministicInOtherProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "HISTORY_TEST_CHILD=1", "TZ=Asia/Kathmandu", "LC_ALL=tr_TR.UTF-8",
		"LANG=tr_TR.UTF-8", "GIT_AUTHOR_NAME=Other", "GIT_AUTHOR_EMAIL=other@example.net",
		"GIT_COMMITTER_NAME=Other", "GIT_AUTHOR_DATE=@0 +0100")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var got []plumbing.Hash
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "ID "); ok {
			got = append(got, plumbing.NewHash(id))
		}
	}
	if want := synthesize(t, goldenConfig, goldenHistory()); !slices.Equal(got, want) {
		t.Fatalf("child ids differ:\n%v\nwant\n%v\n%s", got, want, out)
	}
}
