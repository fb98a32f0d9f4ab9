package history

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// pushFixture is a synthesized history in a bare repository, and two
// commits made on top of its head in a clone with the git CLI, as a user
// would before `git push relay::`.
type pushFixture struct {
	snaps  []*store.Snapshot
	blobs  map[store.BlobID][]byte
	base   plumbing.Hash // the synthesized head the commits build on
	first  plumbing.Hash // the first pushed commit
	pushed plumbing.Hash // the second, the one pushed
	pack   []byte        // git pack-objects of pushed ^base
	tree   []store.File  // the pushed commit's files
}

func newPushFixture(t *testing.T) *pushFixture {
	t.Helper()
	needGit(t)
	dir, st := bareRepo(t)
	g := newGen(5, 12, true)
	snaps := g.history(6)
	putBlobs(t, st, g.blobs)
	ids, err := New(goldenConfig, st).Linear(snaps, plumbing.ZeroHash)
	if err != nil {
		t.Fatal(err)
	}
	setRef(t, st, "refs/heads/main", ids[len(ids)-1])

	work := t.TempDir()
	git(t, work, nil, "clone", "--quiet", dir, ".")
	for _, kv := range [][2]string{{"user.name", "Grace Hopper"}, {"user.email", "grace@example.org"}} {
		git(t, work, nil, "config", kv[0], kv[1])
	}
	last := snaps[len(snaps)-1].Files
	edit := filepath.Join(work, filepath.FromSlash(last[0].Path))
	if err := os.WriteFile(edit, []byte("edited in a clone\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, work, nil, "commit", "--quiet", "-am", "Edit one note")
	first := plumbing.NewHash(strings.TrimSpace(git(t, work, nil, "rev-parse", "HEAD")))
	if err := os.WriteFile(filepath.Join(work, "new note.md"), []byte("# New\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, work, nil, "rm", "--quiet", last[1].Path)
	git(t, work, nil, "add", "new note.md")
	git(t, work, nil, "commit", "--quiet", "-m", "Add a note, drop another")
	pushed := plumbing.NewHash(strings.TrimSpace(git(t, work, nil, "rev-parse", "HEAD")))

	fx := &pushFixture{snaps: snaps, blobs: g.blobs, base: ids[len(ids)-1], first: first, pushed: pushed}
	fx.pack = []byte(git(t, work, []byte(pushed.String()+"\n^"+fx.base.String()+"\n"), "pack-objects", "--revs", "--stdout", "-q"))
	for _, line := range strings.Split(strings.TrimSuffix(git(t, work, nil, "ls-tree", "-r", "-z", "-l", "HEAD"), "\x00"), "\x00") {
		meta, path, _ := strings.Cut(line, "\t")
		f := strings.Fields(meta) // mode type id size
		id, _ := store.ParseBlobID(f[2])
		size, _ := strconv.ParseInt(f[3], 10, 64)
		fx.tree = append(fx.tree, store.File{Path: path, Blob: id, Size: size, Kind: "markdown", DocID: "doc"})
		if _, ok := fx.blobs[id]; !ok {
			fx.blobs[id] = []byte(git(t, work, nil, "cat-file", "blob", id.String()))
		}
	}
	return fx
}

// snapshot is the snapshot a push of fx.pushed came back as, with files.
func (fx *pushFixture) snapshot(files []store.File, packID store.BlobID) *store.Snapshot {
	prev := fx.snaps[len(fx.snaps)-1]
	return &store.Snapshot{
		Folder: prev.Folder, Seq: prev.Seq + 1, Time: prev.Time.Add(time.Minute), Files: files,
		Changes: []store.Change{{Kind: store.ChangeModified, Path: files[0].Path, DocID: "doc"}},
		Origin:  store.Origin{Pushed: &store.Pushed{Commit: fx.pushed, Parent: fx.base, Pack: packID}},
	}
}

// The pushed commit is the snapshot's commit in a history synthesized from
// scratch: git finds both pushed commits, their messages and authors.
func TestPushedCommitTakesTheSnapshotsPlace(t *testing.T) {
	fx := newPushFixture(t)
	packID := store.BlobIDOf(fx.pack)
	reads := 0
	packs := func(id store.BlobID) ([]byte, error) {
		reads++
		if id != packID {
			t.Fatalf("asked for pack %s, want %s", id, packID)
		}
		return fx.pack, nil
	}
	dir, st := bareRepo(t)
	putBlobs(t, st, fx.blobs)
	syn := New(goldenConfig, st).ReadPacksWith(packs)
	snaps := append(slices.Clone(fx.snaps), fx.snapshot(fx.tree, packID))
	ids, err := syn.Linear(snaps, plumbing.ZeroHash)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids[len(ids)-1]; got != fx.pushed {
		t.Fatalf("the pushed snapshot's commit is %s, want the pushed commit %s", got, fx.pushed)
	}
	setRef(t, st, "refs/heads/main", fx.pushed)
	git(t, dir, nil, "fsck", "--strict", "--no-dangling", "--no-progress")
	log := git(t, dir, nil, "log", "--format=%H %an %s", "-3", "main")
	want := fx.pushed.String() + " Grace Hopper Add a note, drop another\n" +
		fx.first.String() + " Grace Hopper Edit one note\n" +
		fx.base.String() + " Ada Lovelace "
	if !strings.HasPrefix(log, want) {
		t.Fatalf("git log:\n%s\nwant it to start with\n%s", log, want)
	}
	// The same commit again (another Synthesizer over the same storer, as
	// a fetch after a clone): no error, same id.
	again, err := New(goldenConfig, st).ReadPacksWith(packs).Commit(snaps[len(snaps)-1], []plumbing.Hash{fx.base}, mustTree(t, syn, fx.tree))
	if err != nil || again != fx.pushed {
		t.Fatalf("again: %s %v", again, err)
	}
}

// Relay edited at the same time as the push: the snapshot's commit follows
// the pushed one, so the pusher still fast-forwards and sees the edit.
func TestPushedCommitWithConcurrentEdit(t *testing.T) {
	fx := newPushFixture(t)
	packID := store.BlobIDOf(fx.pack)
	dir, st := bareRepo(t)
	extra := []byte("typed in Obsidian during the push\n")
	putBlobs(t, st, fx.blobs)
	putBlobs(t, st, map[store.BlobID][]byte{store.BlobIDOf(extra): extra})
	files := append(slices.Clone(fx.tree), store.File{Path: "zz typed.md", Blob: store.BlobIDOf(extra), Size: int64(len(extra)), Kind: "markdown", DocID: "doc2"})
	syn := New(goldenConfig, st).ReadPacksWith(func(store.BlobID) ([]byte, error) { return fx.pack, nil })
	snap := fx.snapshot(files, packID)
	ids, err := syn.Linear(append(slices.Clone(fx.snaps), snap), plumbing.ZeroHash)
	if err != nil {
		t.Fatal(err)
	}
	head := ids[len(ids)-1]
	setRef(t, st, "refs/heads/main", head)
	git(t, dir, nil, "fsck", "--strict", "--no-dangling", "--no-progress")
	if parent := strings.TrimSpace(git(t, dir, nil, "rev-parse", head.String()+"^")); parent != fx.pushed.String() {
		t.Fatalf("parent of the snapshot's commit is %s, want the pushed commit %s", parent, fx.pushed)
	}
	if diff := git(t, dir, nil, "diff", "--name-status", fx.pushed.String(), head.String()); diff != "A\tzz typed.md\n" {
		t.Fatalf("the snapshot adds %q to the pushed commit, want only the concurrent edit", diff)
	}
	if msg := git(t, dir, nil, "log", "-1", "--format=%B", head.String()); !strings.Contains(msg, "Written into Relay by git push of commit "+fx.pushed.String()) {
		t.Fatalf("message %q does not name the pushed commit", msg)
	}
}

// A history that does not continue from the push's parent (another
// identity, so other commit ids) synthesizes the snapshot as any other and
// never reads the pack.
func TestPushedCommitElsewhere(t *testing.T) {
	fx := newPushFixture(t)
	_, st := bareRepo(t)
	putBlobs(t, st, fx.blobs)
	other := goldenConfig
	other.Author = Identity{Name: "Someone Else", Email: "else@example.org"}
	syn := New(other, st).ReadPacksWith(func(store.BlobID) ([]byte, error) {
		t.Fatal("read the pack of a push this history does not continue from")
		return nil, nil
	})
	ids, err := syn.Linear(append(slices.Clone(fx.snaps), fx.snapshot(fx.tree, store.BlobIDOf(fx.pack))), plumbing.ZeroHash)
	if err != nil {
		t.Fatal(err)
	}
	if ids[len(ids)-1] == fx.pushed {
		t.Fatal("the pushed commit was used on top of another parent")
	}
}

func TestParsePushPackRefusesBadPacks(t *testing.T) {
	fx := newPushFixture(t)
	wantTree := mustTree(t, New(goldenConfig, memory.NewStorage()), fx.tree)
	for name, tc := range map[string]struct {
		pack   []byte
		commit plumbing.Hash
		want   string
	}{
		"garbage":          {[]byte("PACK but not really"), fx.pushed, "unreadable"},
		"truncated":        {fx.pack[:len(fx.pack)/2], fx.pushed, "unreadable"},
		"another commit":   {fx.pack, fx.base, "does not hold that commit"},
		"not a commit id":  {fx.pack, plumbing.Hash(fx.tree[0].Blob), "does not hold that commit"},
		"the right commit": {fx.pack, fx.pushed, ""},
	} {
		objs, tree, err := ParsePushPack(tc.pack, tc.commit)
		switch {
		case tc.want == "" && (err != nil || len(objs) == 0 || objs[len(objs)-1].Type != plumbing.CommitObject || tree != wantTree):
			t.Errorf("%s: %d objects, tree %s (want %s), %v", name, len(objs), tree, wantTree, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
	}
	// Without a PackReader, a pushed snapshot is an error, not a silent
	// other commit.
	_, st := bareRepo(t)
	putBlobs(t, st, fx.blobs)
	if _, err := New(goldenConfig, st).Linear(append(slices.Clone(fx.snaps), fx.snapshot(fx.tree, store.BlobID{1})), plumbing.ZeroHash); err == nil || !strings.Contains(err.Error(), "PackReader") {
		t.Fatalf("no PackReader: %v", err)
	}
}

func mustTree(t *testing.T, s *Synthesizer, files []store.File) plumbing.Hash {
	t.Helper()
	h, err := s.Tree(files)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
