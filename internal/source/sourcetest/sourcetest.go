// Package sourcetest is the conformance suite of source.Source (after
// restic's backend tests): Run takes a way to get a Source over a store with
// given content and runs the same cases against it, so that every
// implementation (a data dir, a store this process holds, a running serve's
// read API) answers alike.
package sourcetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// Open returns a Source over a store that fill has written (fill gets an
// open, empty store; the implementation may close and reopen it after).
// The Source is closed by Run; everything else open cleans up with t.
type Open func(t *testing.T, fill func(store.Backend)) source.Source

// The folders of the fixture.
var (
	// Main has the history of fixture().
	Main = store.FolderID{Relay: "6ba7b810-9dad-11d1-80b4-00c04fd430c8", Folder: "f47ac10b-58cc-4372-a567-0e02b2c3d479"}
	// Empty is followed, without snapshots.
	Empty = store.FolderID{Relay: Main.Relay, Folder: "00000000-0000-4000-8000-000000000001"}
	// Other has one snapshot, under a relay that sorts first.
	Other = store.FolderID{Relay: "00000000-0000-4000-8000-0000000000aa", Folder: "ffffffff-0000-4000-8000-000000000002"}
	// Unknown is not followed.
	Unknown = store.FolderID{Relay: Main.Relay, Folder: "00000000-0000-4000-8000-00000000dead"}
)

// config is the recorded history config.
var config = history.Config{
	Author:    history.Identity{Name: "Notes Bot", Email: "bot@example.com"},
	Committer: history.Identity{Name: "Relay", Email: "relay@example.com"},
	Authors:   map[string]history.Identity{"u1": {Name: "Ada", Email: "ada@example.com"}},
}

// fixture is what fill writes: each folder's snapshots (with their seqs)
// and every content by blob id.
type fixture struct {
	snaps map[store.FolderID][]*store.Snapshot
	blobs map[store.BlobID][]byte
}

type step struct {
	users   []string
	set     map[string]string // path -> content ("" is an empty file)
	del     []string
	changes []store.Change
	origin  store.Origin
}

func newFixture() (*fixture, func(store.Backend)) {
	fx := &fixture{snaps: map[store.FolderID][]*store.Snapshot{}, blobs: map[store.BlobID][]byte{}}
	rnd := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 200<<10)
	for i := range big {
		big[i] = byte(rnd.Uint32())
	}
	bin := "\x00\x01\x02\xff\xfe\n\x00"
	ch := func(k store.ChangeKind, p string) store.Change {
		return store.Change{Kind: k, Path: p, DocID: "doc-" + p}
	}
	// Paths chosen so that byte order, directory order and a naive
	// "a/" < "a-" disagree; renames keep a blob; a later snapshot brings
	// back an old content; the last changes nothing but its metadata.
	steps := []step{
		{users: []string{"u1"}, set: map[string]string{"a.md": "# A\n", "a/b.md": "b\n", "img/x.png": bin, "empty.txt": ""},
			changes: []store.Change{ch(store.ChangeAdded, "a.md"), ch(store.ChangeAdded, "a/b.md"), ch(store.ChangeAdded, "img/x.png"), ch(store.ChangeAdded, "empty.txt")}},
		{users: []string{"u1", "u2"}, set: map[string]string{"a.md": "# A\nmore\n", "img/y.png": bin, "a-b.md": "dash\n", "a b.md": "space\n", "ä.md": "umlaut\n"},
			del:     []string{"img/x.png"},
			changes: []store.Change{ch(store.ChangeModified, "a.md"), {Kind: store.ChangeRenamed, Path: "img/y.png", OldPath: "img/x.png", DocID: "doc-img/x.png"}, ch(store.ChangeAdded, "a-b.md")}},
		{set: map[string]string{"a/b/c.md": "deep\n", "a-b.md": "dash 2\n"}, del: []string{"a/b.md"},
			changes: []store.Change{ch(store.ChangeDeleted, "a/b.md"), ch(store.ChangeAdded, "a/b/c.md"), ch(store.ChangeModified, "a-b.md")}},
		{set: map[string]string{"z.bin": string(big)}, del: []string{"a/b/c.md", "a-b.md", "a b.md", "ä.md", "img/y.png", "empty.txt"},
			changes: []store.Change{ch(store.ChangeAdded, "z.bin")}},
		{users: []string{"u2"}, set: map[string]string{"a/b.md": "b\n"}, changes: []store.Change{ch(store.ChangeAdded, "a/b.md")},
			origin: store.Origin{Restored: 1, Pushed: &store.Pushed{Commit: [20]byte{0xc0}, Parent: [20]byte{0xb0}}}},
		{users: []string{"u3"}},
	}
	t0 := time.Date(2026, 1, 31, 18, 0, 0, 123456789, time.UTC)
	fill := func(st store.Backend) {
		must := func(err error) {
			if err != nil {
				panic(fmt.Sprintf("sourcetest: filling the store: %v", err))
			}
		}
		b, err := config.MarshalJSON()
		must(err)
		must(st.SetHistoryConfig(b))
		must(st.AddFolder(Empty))
		add := func(f store.FolderID, seqTime time.Time, s step, tree map[string]store.File) {
			for p, content := range s.set {
				id, err := st.PutBlob([]byte(content), store.BlobID{})
				must(err)
				fx.blobs[id] = []byte(content)
				kind := "file"
				if strings.HasSuffix(p, ".md") {
					kind = "markdown"
				}
				tree[p] = store.File{Path: p, Blob: id, Size: int64(len(content)), Kind: kind, DocID: "doc-" + p}
			}
			for _, p := range s.del {
				delete(tree, p)
			}
			snap := &store.Snapshot{Folder: f, Time: seqTime, Users: s.users, Changes: s.changes, Origin: s.origin}
			if p := snap.Origin.Pushed; p != nil {
				pack := "a pack of the pushed commit"
				var err error
				p.Pack, err = st.PutBlob([]byte(pack), store.BlobID{})
				must(err)
				fx.blobs[p.Pack] = []byte(pack)
			}
			for _, file := range tree {
				snap.Files = append(snap.Files, file)
			}
			sortFiles(snap.Files)
			seq, err := st.AddSnapshot(snap, nil, nil)
			must(err)
			snap.Seq = seq
			fx.snaps[f] = append(fx.snaps[f], snap)
		}
		tree := map[string]store.File{}
		for i, s := range steps {
			add(Main, t0.Add(time.Duration(i)*time.Minute), s, tree)
		}
		add(Other, t0.Add(time.Hour), step{set: map[string]string{"x.md": "x\n"}}, map[string]store.File{})
	}
	return fx, fill
}

func sortFiles(fs []store.File) {
	slices.SortFunc(fs, func(a, b store.File) int { return strings.Compare(a.Path, b.Path) })
}

// Run runs the suite against the Sources open gives.
func Run(t *testing.T, open Open) {
	fx, fill := newFixture()
	src := open(t, fill)
	t.Cleanup(func() {
		if err := src.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	cases := []struct {
		name string
		run  func(*testing.T, source.Source, *fixture)
	}{
		{"Folders", testFolders},
		{"Folder", testFolder},
		{"Snapshots", testSnapshots},
		{"Snapshot", testSnapshot},
		{"History", testHistory},
		{"HistoryConfig", testHistoryConfig},
		{"Blob", testBlob},
		{"Concurrent", testConcurrent},
		{"Cancelled", testCancelled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, src, fx) })
	}
	t.Run("EmptyStore", func(t *testing.T) {
		src := open(t, func(store.Backend) {})
		defer src.Close()
		ctx := context.Background()
		if list, err := src.Folders(ctx); err != nil || len(list) != 0 {
			t.Errorf("Folders of an empty store: %+v, %v", list, err)
		}
		if cfg, err := src.HistoryConfig(ctx); err != nil || !reflect.DeepEqual(cfg, history.Config{}) {
			t.Errorf("HistoryConfig never recorded: %+v, %v; want the zero Config", cfg, err)
		}
	})
}

// want is the Folder entry of f in the fixture.
func (fx *fixture) want(f store.FolderID) source.Folder {
	w := source.Folder{Relay: f.Relay, Folder: f.Folder}
	if s := fx.snaps[f]; len(s) > 0 {
		w.LatestSeq, w.LatestTime = s[len(s)-1].Seq, s[len(s)-1].Time
	}
	return w
}

func sameFolder(got, want source.Folder) bool {
	return got.ID() == want.ID() && got.LatestSeq == want.LatestSeq && got.LatestTime.Equal(want.LatestTime) &&
		(got.LatestTime.IsZero() || got.LatestTime.Location() == time.UTC)
}

func testFolders(t *testing.T, src source.Source, fx *fixture) {
	got, err := src.Folders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []source.Folder{fx.want(Other), fx.want(Empty), fx.want(Main)} // by relay, then folder
	if len(got) != len(want) {
		t.Fatalf("Folders: %+v, want %+v", got, want)
	}
	for i := range want {
		if !sameFolder(got[i], want[i]) {
			t.Errorf("Folders[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func testFolder(t *testing.T, src source.Source, fx *fixture) {
	ctx := context.Background()
	for _, f := range []store.FolderID{Main, Empty, Other} {
		if got, err := src.Folder(ctx, f); err != nil || !sameFolder(got, fx.want(f)) {
			t.Errorf("Folder(%s) = %+v, %v; want %+v", f, got, err, fx.want(f))
		}
	}
	_, err := src.Folder(ctx, Unknown)
	if !errors.Is(err, source.ErrNotFound) || !strings.Contains(err.Error(), "does not follow folder "+Unknown.String()) {
		t.Errorf("Folder(unknown): %v; want ErrNotFound saying it does not follow folder %s", err, Unknown)
	}
}

// info is s without its tree, with empty lists as nil.
func info(s *store.Snapshot) store.SnapshotInfo {
	return norm(store.SnapshotInfo{Seq: s.Seq, Time: s.Time, Users: s.Users, Changes: s.Changes, Origin: s.Origin, NumFiles: len(s.Files)})
}

func norm(in store.SnapshotInfo) store.SnapshotInfo {
	if len(in.Users) == 0 {
		in.Users = nil
	}
	if len(in.Changes) == 0 {
		in.Changes = nil
	}
	return in
}

func sameSnapshot(got, want *store.Snapshot) error {
	switch {
	case got.Folder != want.Folder:
		return fmt.Errorf("folder %s, want %s", got.Folder, want.Folder)
	case !reflect.DeepEqual(info(got), info(want)):
		return fmt.Errorf("\n got %+v\nwant %+v", info(got), info(want))
	case got.Time.Location() != time.UTC:
		return fmt.Errorf("time %v not in UTC", got.Time)
	case !reflect.DeepEqual(got.Files, want.Files):
		return fmt.Errorf("tree\n got %+v\nwant %+v", got.Files, want.Files)
	}
	return nil
}

func testSnapshots(t *testing.T, src source.Source, fx *fixture) {
	ctx := context.Background()
	snaps := fx.snaps[Main]
	for after := 0; after <= len(snaps)+1; after++ {
		got, err := src.Snapshots(ctx, Main, uint64(after))
		if err != nil {
			t.Fatalf("Snapshots(after %d): %v", after, err)
		}
		want := snaps[min(after, len(snaps)):]
		if len(got) != len(want) {
			t.Fatalf("Snapshots(after %d): %d, want %d", after, len(got), len(want))
		}
		for i, in := range got {
			if !reflect.DeepEqual(norm(in), info(want[i])) || in.Time.Location() != time.UTC {
				t.Errorf("Snapshots(after %d)[%d]:\n got %+v\nwant %+v", after, i, norm(in), info(want[i]))
			}
		}
	}
	if got, err := src.Snapshots(ctx, Empty, 0); err != nil || len(got) != 0 {
		t.Errorf("Snapshots(empty folder) = %+v, %v", got, err)
	}
	if _, err := src.Snapshots(ctx, Unknown, 0); !errors.Is(err, source.ErrNotFound) {
		t.Errorf("Snapshots(unknown folder): %v, want ErrNotFound", err)
	}
}

func testSnapshot(t *testing.T, src source.Source, fx *fixture) {
	ctx := context.Background()
	snaps := fx.snaps[Main]
	for seq := 0; seq <= len(snaps); seq++ {
		want := snaps[len(snaps)-1]
		if seq > 0 {
			want = snaps[seq-1]
		}
		got, err := src.Snapshot(ctx, Main, uint64(seq))
		if err != nil {
			t.Fatalf("Snapshot(%d): %v", seq, err)
		}
		if err := sameSnapshot(got, want); err != nil {
			t.Errorf("Snapshot(%d): %v", seq, err)
		}
	}
	for name, call := range map[string]func() error{
		"unknown seq":           func() error { _, err := src.Snapshot(ctx, Main, 99); return err },
		"unknown folder latest": func() error { _, err := src.Snapshot(ctx, Unknown, 0); return err },
		"unknown folder seq 1":  func() error { _, err := src.Snapshot(ctx, Unknown, 1); return err },
		"empty folder latest":   func() error { _, err := src.Snapshot(ctx, Empty, 0); return err },
	} {
		if err := call(); !errors.Is(err, source.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", name, err)
		}
	}
}

func testHistory(t *testing.T, src source.Source, fx *fixture) {
	ctx := context.Background()
	snaps := fx.snaps[Main]
	for after := 0; after <= len(snaps)+1; after++ {
		var got []*store.Snapshot
		if err := src.History(ctx, Main, uint64(after), func(s *store.Snapshot) error { got = append(got, s); return nil }); err != nil {
			t.Fatalf("History(after %d): %v", after, err)
		}
		want := snaps[min(after, len(snaps)):]
		if len(got) != len(want) {
			t.Fatalf("History(after %d): %d snapshots, want %d", after, len(got), len(want))
		}
		for i := range got {
			if err := sameSnapshot(got[i], want[i]); err != nil {
				t.Errorf("History(after %d), snapshot %d: %v", after, want[i].Seq, err)
			}
		}
	}
	none := func(s *store.Snapshot) error { return fmt.Errorf("called with snapshot %d", s.Seq) }
	if err := src.History(ctx, Empty, 0, none); err != nil {
		t.Errorf("History(empty folder): %v", err)
	}
	if err := src.History(ctx, Unknown, 0, none); !errors.Is(err, source.ErrNotFound) {
		t.Errorf("History(unknown folder): %v, want ErrNotFound", err)
	}
	// An error from fn stops the walk and comes back as is.
	stop := errors.New("stop here")
	calls := 0
	err := src.History(ctx, Main, 0, func(*store.Snapshot) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("History with fn failing: %v after %d calls; want %v after 1", err, calls, stop)
	}
}

func testHistoryConfig(t *testing.T, src source.Source, _ *fixture) {
	got, err := src.HistoryConfig(context.Background())
	if err != nil || !reflect.DeepEqual(got, config) {
		t.Errorf("HistoryConfig = %+v, %v; want %+v", got, err, config)
	}
}

func testBlob(t *testing.T, src source.Source, fx *fixture) {
	ctx := context.Background()
	for id, data := range fx.blobs {
		got, err := src.Blob(ctx, id)
		if err != nil || string(got) != string(data) {
			t.Fatalf("Blob(%s) = %d bytes, %v; want %d bytes", id, len(got), err, len(data))
		}
		if len(got) > 0 {
			got[0]++ // the caller's to keep and change
			if again, err := src.Blob(ctx, id); err != nil || string(again) != string(data) {
				t.Fatalf("Blob(%s) after changing the slice of an earlier call: %v", id, err)
			}
		}
	}
	if _, err := src.Blob(ctx, store.BlobIDOf([]byte("not in the store"))); !errors.Is(err, source.ErrNotFound) {
		t.Errorf("Blob(unknown): %v, want ErrNotFound", err)
	}
}

// testConcurrent reads from many goroutines at once (with -race, the
// implementations' state is checked too).
func testConcurrent(t *testing.T, src source.Source, fx *fixture) {
	ctx := context.Background()
	errs := make(chan error, 64)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id, data := range fx.blobs {
				if got, err := src.Blob(ctx, id); err != nil || string(got) != string(data) {
					errs <- fmt.Errorf("goroutine %d: Blob(%s): %v", g, id, err)
					return
				}
			}
			want := fx.snaps[Main][g%len(fx.snaps[Main])]
			got, err := src.Snapshot(ctx, Main, want.Seq)
			if err == nil {
				err = sameSnapshot(got, want)
			}
			if err != nil {
				errs <- fmt.Errorf("goroutine %d: Snapshot(%d): %v", g, want.Seq, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testCancelled(t *testing.T, src source.Source, fx *fixture) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var id store.BlobID
	for id = range fx.blobs {
		break
	}
	for name, call := range map[string]func() error{
		"Folders":       func() error { _, err := src.Folders(ctx); return err },
		"Folder":        func() error { _, err := src.Folder(ctx, Main); return err },
		"Snapshots":     func() error { _, err := src.Snapshots(ctx, Main, 0); return err },
		"Snapshot":      func() error { _, err := src.Snapshot(ctx, Main, 1); return err },
		"History":       func() error { return src.History(ctx, Main, 0, func(*store.Snapshot) error { return nil }) },
		"HistoryConfig": func() error { _, err := src.HistoryConfig(ctx); return err },
		"Blob":          func() error { _, err := src.Blob(ctx, id); return err },
	} {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want context.Canceled", name, err)
		}
	}
}
