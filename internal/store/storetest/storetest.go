// Package storetest is the conformance suite of store.Backend (after
// restic's backend tests): Run takes a way to open a fresh backend and runs
// the same cases against it, so that every implementation (Badger's
// *store.Store in memory or on disk, NATS JetStream in internal/natsstore)
// keeps the contract that the doc comments of internal/store state. Cases
// use only the Backend's methods, never an implementation's internals.
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"path"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// Open returns a fresh, empty backend for one test; hold is its
// mass-deletion policy. The backend is closed by the caller's t.Cleanup
// (Open registers it).
type Open func(t *testing.T, hold store.HoldPolicy) store.Backend

// Run runs every case against backends from open, each case on a backend
// of its own.
func Run(t *testing.T, open Open) {
	for _, c := range []struct {
		name string
		run  func(*testing.T, Open)
	}{
		{"Folders", testFolders},
		{"UnknownFolder", testUnknownFolder},
		{"BadFolderIDs", testBadFolderIDs},
		{"Snapshots", testSnapshots},
		{"RefusedSnapshots", testRefusedSnapshots},
		{"ManySnapshots", testManySnapshots},
		{"LargeTree", testLargeTree},
		{"DocStates", testDocStates},
		{"Blobs", testBlobs},
		{"BlobVersions", testBlobVersions},
		{"BlobsFromReaders", testBlobsFromReaders},
		{"Queue", testQueue},
		{"QueueDedupe", testQueueDedupe},
		{"RecordedEvents", testRecordedEvents},
		{"PushState", testPushState},
		{"Holds", testHolds},
		{"HoldsOff", testHoldsOff},
		{"Settings", testSettings},
		{"Concurrent", testConcurrent},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, open) })
	}
}

// Folder ids. Sorted by relay, then folder, they are C, B, A; sorted by
// folder alone, B, A, C.
var (
	folderA = store.FolderID{Relay: "6ba7b810-9dad-11d1-80b4-00c04fd430c8", Folder: "f47ac10b-58cc-4372-a567-0e02b2c3d479"}
	folderB = store.FolderID{Relay: "6ba7b810-9dad-11d1-80b4-00c04fd430c8", Folder: "0a47ac10-58cc-4372-a567-0e02b2c3d479"}
	folderC = store.FolderID{Relay: "00000000-0000-4000-8000-0000000000aa", Folder: "ffffffff-0000-4000-8000-000000000002"}
)

var (
	noHold = store.HoldPolicy{}
	// halfOf10 holds a snapshot that deletes more than half of a folder
	// of at least 10 files.
	halfOf10 = store.HoldPolicy{Fraction: 0.5, MinFiles: 10}
	// zone is where input times are given: backends return them in UTC.
	zone = time.FixedZone("UTC+05:30", 5*3600+30*60)
)

func upper(f store.FolderID) store.FolderID {
	return store.FolderID{Relay: strings.ToUpper(f.Relay), Folder: strings.ToUpper(f.Folder)}
}

func kindOf(p string) string {
	switch path.Ext(p) {
	case ".md":
		return "markdown"
	case ".canvas":
		return "canvas"
	}
	return "file"
}

// putFile stores content and returns a file entry for it.
func putFile(t *testing.T, b store.Backend, p, docID string, content []byte) store.File {
	t.Helper()
	id, err := b.PutBlob(content, store.BlobID{})
	if err != nil {
		t.Fatalf("PutBlob for %q: %v", p, err)
	}
	return store.File{Path: p, Blob: id, Size: int64(len(content)), DocID: docID, Kind: kindOf(p)}
}

func sortFiles(files []store.File) []store.File {
	slices.SortFunc(files, func(a, b store.File) int { return strings.Compare(a.Path, b.Path) })
	return files
}

func cloneSnap(s *store.Snapshot) *store.Snapshot {
	c := *s
	c.Users = slices.Clone(s.Users)
	c.Changes = slices.Clone(s.Changes)
	c.Files = slices.Clone(s.Files)
	if p := s.Origin.Pushed; p != nil {
		q := *p
		c.Origin.Pushed = &q
	}
	return &c
}

// addSnap records snap and returns what the backend must give back for it:
// a copy with its seq and lower-case folder.
func addSnap(t *testing.T, b store.Backend, snap *store.Snapshot, docs map[string]store.DocState, drop []string) *store.Snapshot {
	t.Helper()
	want := cloneSnap(snap)
	seq, err := b.AddSnapshot(snap, docs, drop)
	if err != nil {
		t.Fatalf("AddSnapshot: %v", err)
	}
	if snap.Seq != seq {
		t.Fatalf("AddSnapshot returned seq %d but set snap.Seq to %d", seq, snap.Seq)
	}
	want.Seq = seq
	want.Folder = store.FolderID{Relay: strings.ToLower(want.Folder.Relay), Folder: strings.ToLower(want.Folder.Folder)}
	if snap.Folder != want.Folder {
		t.Fatalf("AddSnapshot left snap.Folder %v, want it lower-cased to %v", snap.Folder, want.Folder)
	}
	return want
}

func nilIfEmpty[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return s
}

// sameTime reports whether got is want, in UTC (the zero time stays zero).
func sameTime(got, want time.Time) bool {
	return got.Equal(want) && (got.Location() == time.UTC || got.IsZero() && want.IsZero())
}

func sameSnapshot(t *testing.T, what string, got, want *store.Snapshot) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: nil snapshot", what)
	}
	if !sameTime(got.Time, want.Time) {
		t.Fatalf("%s: time %v (%v), want %v in UTC", what, got.Time, got.Time.Location(), want.Time)
	}
	g, w := *got, *want
	g.Time, w.Time = time.Time{}, time.Time{}
	g.Users, w.Users = nilIfEmpty(g.Users), nilIfEmpty(w.Users)
	g.Changes, w.Changes = nilIfEmpty(g.Changes), nilIfEmpty(w.Changes)
	// Files compared apart: comparable, and much faster than reflection
	// over trees of thousands of files.
	if !slices.Equal(g.Files, w.Files) {
		i := 0
		for i < min(len(g.Files), len(w.Files)) && g.Files[i] == w.Files[i] {
			i++
		}
		var gf, wf any = "none", "none"
		if i < len(g.Files) {
			gf = g.Files[i]
		}
		if i < len(w.Files) {
			wf = w.Files[i]
		}
		t.Fatalf("%s: %d files, want %d; file %d is\n %+v\nwant %+v", what, len(g.Files), len(w.Files), i, gf, wf)
	}
	g.Files, w.Files = nil, nil
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %s\nwant %s", what, fmtSnap(&g), fmtSnap(&w))
	}
}

func fmtSnap(s *store.Snapshot) string {
	p := "nil"
	if s.Origin.Pushed != nil {
		p = fmt.Sprintf("%+v", *s.Origin.Pushed)
	}
	return fmt.Sprintf("{Folder:%v Seq:%d Users:%q Changes:%+v Restored:%d Pushed:%s}",
		s.Folder, s.Seq, s.Users, s.Changes, s.Origin.Restored, p)
}

func infoOf(s *store.Snapshot) store.SnapshotInfo {
	return store.SnapshotInfo{Seq: s.Seq, Time: s.Time, Users: s.Users, Changes: s.Changes, Origin: s.Origin, NumFiles: len(s.Files)}
}

func sameInfo(t *testing.T, what string, got, want store.SnapshotInfo) {
	t.Helper()
	if !sameTime(got.Time, want.Time) {
		t.Fatalf("%s: time %v (%v), want %v in UTC", what, got.Time, got.Time.Location(), want.Time)
	}
	got.Time, want.Time = time.Time{}, time.Time{}
	got.Users, want.Users = nilIfEmpty(got.Users), nilIfEmpty(want.Users)
	got.Changes, want.Changes = nilIfEmpty(got.Changes), nilIfEmpty(want.Changes)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// checkHistory reads folder f back through every read method and compares
// with want (its snapshots 1…n).
func checkHistory(t *testing.T, b store.Backend, f store.FolderID, want []*store.Snapshot) {
	t.Helper()
	n := uint64(len(want))
	head, at, err := b.Head(f)
	switch {
	case err != nil:
		t.Fatalf("Head: %v", err)
	case head != n:
		t.Fatalf("Head = %d, want %d", head, n)
	case n == 0 && !at.IsZero():
		t.Fatalf("Head of a folder without snapshots has time %v", at)
	case n > 0 && !sameTime(at, want[n-1].Time):
		t.Fatalf("Head time %v (%v), want %v in UTC", at, at.Location(), want[n-1].Time)
	}
	latest, err := b.Latest(f)
	if n == 0 {
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Latest of a folder without snapshots: %v, %v; want ErrNotFound", latest, err)
		}
	} else {
		if err != nil {
			t.Fatalf("Latest: %v", err)
		}
		sameSnapshot(t, "Latest", latest, want[n-1])
	}
	// Ascending, then descending: each order has its own shortcuts.
	for i := range want {
		got, err := b.Snapshot(f, uint64(i+1))
		if err != nil {
			t.Fatalf("Snapshot(%d): %v", i+1, err)
		}
		sameSnapshot(t, fmt.Sprintf("Snapshot(%d)", i+1), got, want[i])
	}
	for i := len(want) - 1; i >= 0; i-- {
		got, err := b.Snapshot(f, uint64(i+1))
		if err != nil {
			t.Fatalf("Snapshot(%d), descending: %v", i+1, err)
		}
		sameSnapshot(t, fmt.Sprintf("Snapshot(%d), descending", i+1), got, want[i])
	}
	for _, seq := range []uint64{0, n + 1, n + 1000} {
		if got, err := b.Snapshot(f, seq); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Snapshot(%d) of %d: %v, %v; want ErrNotFound", seq, n, got, err)
		}
	}
	afters := []uint64{0, 1, n / 3, n / 2, n - min(n, 1), n, n + 5}
	slices.Sort(afters)
	for _, after := range slices.Compact(afters) {
		var walked []*store.Snapshot
		if err := b.Walk(f, after, func(s *store.Snapshot) error {
			walked = append(walked, s) // fn may keep what it is given
			return nil
		}); err != nil {
			t.Fatalf("Walk(after %d): %v", after, err)
		}
		rest := want[min(after, n):]
		if len(walked) != len(rest) {
			t.Fatalf("Walk(after %d) gave %d snapshots, want %d", after, len(walked), len(rest))
		}
		for i := range rest {
			sameSnapshot(t, fmt.Sprintf("Walk(after %d)[%d]", after, i), walked[i], rest[i])
		}
		infos, err := b.Snapshots(f, after)
		if err != nil {
			t.Fatalf("Snapshots(after %d): %v", after, err)
		}
		if len(infos) != len(rest) {
			t.Fatalf("Snapshots(after %d) gave %d snapshots, want %d", after, len(infos), len(rest))
		}
		for i := range rest {
			sameInfo(t, fmt.Sprintf("Snapshots(after %d)[%d]", after, i), infos[i], infoOf(rest[i]))
		}
	}
}

func sortedFolders(fs ...store.FolderID) []store.FolderID {
	out := slices.Clone(fs)
	slices.SortFunc(out, func(a, b store.FolderID) int {
		if c := strings.Compare(a.Relay, b.Relay); c != 0 {
			return c
		}
		return strings.Compare(a.Folder, b.Folder)
	})
	return out
}

func checkFolders(t *testing.T, b store.Backend, want ...store.FolderID) {
	t.Helper()
	got, err := b.Folders()
	if err != nil {
		t.Fatalf("Folders: %v", err)
	}
	if w := sortedFolders(want...); !slices.Equal(got, w) {
		t.Fatalf("Folders = %v, want %v", got, w)
	}
}

func testFolders(t *testing.T, open Open) {
	b := open(t, noHold)
	checkFolders(t, b)
	for _, f := range []store.FolderID{folderA, folderB} {
		if err := b.AddFolder(upper(f)); err != nil {
			t.Fatalf("AddFolder(%v): %v", upper(f), err)
		}
		if err := b.AddFolder(f); err != nil {
			t.Fatalf("AddFolder again (idempotent): %v", err)
		}
	}
	checkFolders(t, b, folderA, folderB)
	// A folder with a snapshot and no AddFolder is listed too.
	file := putFile(t, b, "a.md", "doc-a", []byte("a\n"))
	first := addSnap(t, b, &store.Snapshot{Folder: folderC, Time: time.Date(2026, 1, 2, 3, 4, 5, 6, zone), Files: []store.File{file}}, nil, nil)
	checkFolders(t, b, folderA, folderB, folderC)
	// AddFolder of a folder with snapshots changes nothing.
	if err := b.AddFolder(folderC); err != nil {
		t.Fatal(err)
	}
	checkFolders(t, b, folderA, folderB, folderC)
	checkHistory(t, b, folderC, []*store.Snapshot{first})
	checkHistory(t, b, folderA, nil)
}

// Reading a folder the backend never saw finds nothing, errs only where the
// contract says so, and records nothing.
func testUnknownFolder(t *testing.T, open Open) {
	b := open(t, noHold)
	check := func(what string) {
		t.Helper()
		checkHistory(t, b, folderA, nil)
		if err := b.Walk(folderA, 0, func(*store.Snapshot) error { return errors.New("called") }); err != nil {
			t.Fatalf("%s: Walk: %v", what, err)
		}
		if docs, err := b.DocStates(folderA); err != nil || docs == nil || len(docs) != 0 {
			t.Fatalf("%s: DocStates = %v, %v; want an empty map", what, docs, err)
		}
		if h, err := b.Held(folderA); err != nil || h != nil {
			t.Fatalf("%s: Held = %+v, %v", what, h, err)
		}
		if d, err := b.Dropped(folderA); err != nil || len(d) != 0 {
			t.Fatalf("%s: Dropped = %v, %v", what, d, err)
		}
		if ps, err := b.PushState(folderA, "c1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s: PushState = %+v, %v; want ErrNotFound", what, ps, err)
		}
		if owned, err := b.PushOwned(folderA, "c1"); err != nil || owned != nil {
			t.Fatalf("%s: PushOwned = %v, %v; want nil, nil", what, owned, err)
		}
		if h, err := b.ReleaseHold(folderA); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s: ReleaseHold = %+v, %v; want ErrNotFound", what, h, err)
		}
		if h, r, err := b.DropHold(folderA); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s: DropHold = %+v, %+v, %v; want ErrNotFound", what, h, r, err)
		}
	}
	check("unknown folder")
	checkFolders(t, b)
	if err := b.AddFolder(folderA); err != nil {
		t.Fatal(err)
	}
	check("followed folder without snapshots")
	checkFolders(t, b, folderA)
}

func testBadFolderIDs(t *testing.T, open Open) {
	b := open(t, noHold)
	file := putFile(t, b, "a.md", "doc-a", []byte("a\n"))
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, f := range []store.FolderID{
		{},
		{Relay: "nope", Folder: "nope"},
		{Relay: folderA.Relay, Folder: folderA.Folder[:35]},
		{Relay: folderA.Relay, Folder: folderA.Folder + "0"},
		{Relay: folderA.Relay, Folder: strings.ReplaceAll(folderA.Folder, "-", "_")},
		{Relay: folderA.Relay, Folder: "g47ac10b-58cc-4372-a567-0e02b2c3d479"},
		{Relay: "../" + folderA.Relay[3:], Folder: folderA.Folder},
		{Relay: folderA.Relay + "/" + folderA.Folder, Folder: ""},
		{Relay: "6ba7b810.9dad.11d1.80b4.00c04fd430c8", Folder: folderA.Folder},
		{Relay: "6ba7b810-9dad-11d1-80b4-00c04fd430c*", Folder: folderA.Folder},
	} {
		errs := map[string]error{}
		errs["AddFolder"] = b.AddFolder(f)
		_, errs["AddSnapshot"] = b.AddSnapshot(&store.Snapshot{Folder: f, Time: at, Files: []store.File{file}}, nil, nil)
		errs["PutDocStates"] = b.PutDocStates(f, map[string]store.DocState{"d": {Path: "a.md"}}, nil)
		_, errs["DocStates"] = b.DocStates(f)
		_, errs["Latest"] = b.Latest(f)
		_, _, errs["Head"] = b.Head(f)
		_, errs["Snapshot"] = b.Snapshot(f, 1)
		errs["Walk"] = b.Walk(f, 0, func(*store.Snapshot) error { return nil })
		_, errs["Snapshots"] = b.Snapshots(f, 0)
		errs["SetPushState"] = b.SetPushState(f, "c1", &store.PushState{Branch: "main"}, nil)
		_, errs["PushState"] = b.PushState(f, "c1")
		_, errs["PushOwned"] = b.PushOwned(f, "c1")
		_, errs["Held"] = b.Held(f)
		_, errs["Dropped"] = b.Dropped(f)
		_, errs["ReleaseHold"] = b.ReleaseHold(f)
		_, _, errs["DropHold"] = b.DropHold(f)
		for _, m := range slices.Sorted(maps.Keys(errs)) {
			if errs[m] == nil {
				t.Errorf("%s(%#v) took a folder id that is not two UUIDs", m, f)
			}
		}
	}
	checkFolders(t, b)
	if states, err := b.PushStates(); err != nil || len(states) != 0 {
		t.Fatalf("PushStates after refused writes = %+v, %v", states, err)
	}
}

func testSnapshots(t *testing.T, open Open) {
	b := open(t, noHold)
	t0 := time.Date(2026, 2, 3, 4, 5, 6, 789012345, zone)
	a := putFile(t, b, "a.md", "doc-a", []byte("# A\n"))
	a2 := putFile(t, b, "a.md", "doc-a", []byte("# A\nmore\n"))
	ab := putFile(t, b, "a/b.md", "doc-ab", []byte("b\n"))
	dash := putFile(t, b, "a-b.md", "doc-dash", []byte("dash\n"))
	img := putFile(t, b, "img/x.png", "doc-img", []byte("\x89PNG\x00\x01\xff"))
	canvas := putFile(t, b, "board.canvas", "doc-canvas", []byte(`{"nodes":[]}`))
	empty := putFile(t, b, "empty.txt", "doc-empty", nil)
	moved := img
	moved.Path = "pics/x.png"
	pack, err := b.PutBlob([]byte("PACK\x00\x00\x00\x02 the pushed objects"), store.BlobID{})
	if err != nil {
		t.Fatal(err)
	}
	ch := func(k store.ChangeKind, p, doc string) store.Change {
		return store.Change{Kind: k, Path: p, DocID: doc}
	}
	steps := []*store.Snapshot{
		{Folder: upper(folderA), Time: t0, Users: []string{"u1", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"},
			Changes: []store.Change{ch(store.ChangeAdded, "a.md", "doc-a"), ch(store.ChangeAdded, "img/x.png", "doc-img"), ch(store.ChangeAdded, "empty.txt", "doc-empty")},
			Files:   sortFiles([]store.File{a, img, empty})},
		{Folder: folderA, Time: t0.Add(time.Nanosecond), Users: []string{"u2"},
			Changes: []store.Change{ch(store.ChangeModified, "a.md", "doc-a"), {Kind: store.ChangeRenamed, Path: "pics/x.png", OldPath: "img/x.png", DocID: "doc-img"}, ch(store.ChangeAdded, "a/b.md", "doc-ab"), ch(store.ChangeAdded, "a-b.md", "doc-dash"), ch(store.ChangeAdded, "board.canvas", "doc-canvas")},
			Files:   sortFiles([]store.File{a2, moved, ab, dash, canvas, empty})},
		{Folder: folderA, Time: t0.Add(time.Hour),
			Changes: []store.Change{ch(store.ChangeDeleted, "a.md", "doc-a"), ch(store.ChangeDeleted, "pics/x.png", "doc-img"), ch(store.ChangeDeleted, "a/b.md", "doc-ab"), ch(store.ChangeDeleted, "a-b.md", "doc-dash"), ch(store.ChangeDeleted, "board.canvas", "doc-canvas"), ch(store.ChangeDeleted, "empty.txt", "doc-empty")}},
		{Folder: folderA, Time: t0.Add(2 * time.Hour), Users: []string{"u1"}, Origin: store.Origin{Restored: 1},
			Changes: []store.Change{ch(store.ChangeAdded, "a.md", "doc-a"), ch(store.ChangeAdded, "img/x.png", "doc-img"), ch(store.ChangeAdded, "empty.txt", "doc-empty")},
			Files:   sortFiles([]store.File{a, img, empty})},
		{Folder: folderA, Time: t0.Add(3 * time.Hour), Users: []string{"u3"},
			Origin:  store.Origin{Pushed: &store.Pushed{Commit: [20]byte{0xc0, 1, 19: 0xff}, Parent: [20]byte{0xb0, 19: 1}, Pack: pack}},
			Changes: []store.Change{ch(store.ChangeModified, "a.md", "doc-a")},
			Files:   sortFiles([]store.File{a2, img, empty})},
		{Folder: folderA, Time: t0.Add(4 * time.Hour),
			Origin:  store.Origin{Restored: 2, Pushed: &store.Pushed{Commit: [20]byte{0xc1}, Pack: pack}},
			Changes: []store.Change{ch(store.ChangeAdded, "a/b.md", "doc-ab")},
			Files:   sortFiles([]store.File{a2, ab, img, empty})},
		// Nothing but metadata changes, at the same time as the previous.
		{Folder: folderA, Time: t0.Add(4 * time.Hour), Users: []string{"u1", "u2", "u3"},
			Files: sortFiles([]store.File{a2, ab, img, empty})},
	}
	var want, wantB []*store.Snapshot
	for i, s := range steps {
		w := addSnap(t, b, s, nil, nil)
		if w.Seq != uint64(i+1) {
			t.Fatalf("snapshot %d got seq %d", i+1, w.Seq)
		}
		want = append(want, w)
		// The caller keeps its snapshot: changing it changes nothing stored.
		for j := range s.Files {
			s.Files[j].Path, s.Files[j].Size = "changed/"+s.Files[j].Path, 99
		}
		for j := range s.Changes {
			s.Changes[j].Path = "changed"
		}
		for j := range s.Users {
			s.Users[j] = "changed"
		}
		if p := s.Origin.Pushed; p != nil {
			p.Commit[0]++
		}
		// Another folder's seqs run on their own.
		if i%2 == 0 {
			w := addSnap(t, b, &store.Snapshot{Folder: folderB, Time: t0.Add(time.Duration(i) * time.Minute), Users: []string{fmt.Sprint("b", i)}, Files: []store.File{img}}, nil, nil)
			if w.Seq != uint64(len(wantB)+1) {
				t.Fatalf("snapshot %d of the second folder got seq %d", len(wantB)+1, w.Seq)
			}
			wantB = append(wantB, w)
		}
	}
	checkHistory(t, b, folderA, want)
	checkHistory(t, b, upper(folderA), want)
	checkHistory(t, b, folderB, wantB)

	// What reads return is the caller's.
	got, err := b.Latest(folderA)
	if err != nil {
		t.Fatal(err)
	}
	got.Files[0].Path, got.Users[0] = "changed", "changed"
	got.Origin.Restored = 7
	got, err = b.Snapshot(folderA, 2)
	if err != nil {
		t.Fatal(err)
	}
	got.Files[0].Path, got.Changes[0].Path = "changed", "changed"
	if err := b.Walk(folderA, 0, func(s *store.Snapshot) error {
		if len(s.Files) > 0 {
			s.Files[0].Size = -1
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	infos, err := b.Snapshots(folderA, 0)
	if err != nil {
		t.Fatal(err)
	}
	infos[1].Changes[0].Path, infos[0].Users[0] = "changed", "changed"
	checkHistory(t, b, folderA, want)

	// An error from fn stops the walk and is returned.
	stop := errors.New("stop here")
	calls := 0
	err = b.Walk(folderA, 2, func(s *store.Snapshot) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("Walk whose fn fails: %v after %d calls; want %v after 1", err, calls, stop)
	}
}

// A snapshot the contract refuses records nothing: not the snapshot, not
// its doc states, not its folder.
func testRefusedSnapshots(t *testing.T, open Open) {
	b := open(t, noHold)
	at := time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC)
	a := putFile(t, b, "a.md", "doc-a", []byte("abc"))
	c := putFile(t, b, "b/c.canvas", "doc-c", []byte("{}"))
	stateA := store.DocState{Hash: [32]byte{1}, Blob: a.Blob, Path: a.Path}
	first := addSnap(t, b, &store.Snapshot{Folder: folderA, Time: at, Files: []store.File{a, c}}, map[string]store.DocState{"doc-a": stateA}, nil)
	pack, err := b.PutBlob([]byte("a pack"), store.BlobID{})
	if err != nil {
		t.Fatal(err)
	}
	missing := store.BlobIDOf([]byte("never stored"))
	good := func() *store.Snapshot {
		return &store.Snapshot{Folder: folderA, Time: at.Add(time.Second), Users: []string{"u1"},
			Changes: []store.Change{{Kind: store.ChangeModified, Path: "a.md", DocID: "doc-a"}},
			Files:   []store.File{a, c}}
	}
	extra := func(f store.File) func(*store.Snapshot) {
		return func(s *store.Snapshot) { s.Files = sortFiles(append(s.Files, f)) }
	}
	refusedDocs := map[string]store.DocState{"doc-new": {Hash: [32]byte{2}, Blob: a.Blob, Path: "new.md"}}
	for _, tc := range []struct {
		name string
		mod  func(*store.Snapshot)
		docs map[string]store.DocState
		drop []string
	}{
		{name: "blob not stored", mod: extra(store.File{Path: "new.md", Blob: missing, Size: 12, DocID: "doc-new", Kind: "markdown"})},
		{name: "size larger than the blob", mod: extra(store.File{Path: "new.md", Blob: a.Blob, Size: 4, DocID: "doc-new", Kind: "markdown"})},
		{name: "size smaller than the blob", mod: extra(store.File{Path: "new.md", Blob: a.Blob, Size: 2, DocID: "doc-new", Kind: "markdown"})},
		{name: "changed size of a kept file", mod: func(s *store.Snapshot) { s.Files[0].Size = 5 }},
		{name: "new blob not stored for a kept path", mod: func(s *store.Snapshot) { s.Files[0].Blob = missing }},
		{name: "zero blob", mod: func(s *store.Snapshot) { s.Files[1].Blob = store.BlobID{} }},
		{name: "unsorted", mod: func(s *store.Snapshot) { s.Files[0], s.Files[1] = s.Files[1], s.Files[0] }},
		{name: "duplicate path", mod: func(s *store.Snapshot) { s.Files[1].Path = s.Files[0].Path }},
		{name: "empty path", mod: func(s *store.Snapshot) { s.Files[0].Path = "" }},
		{name: "leading slash", mod: func(s *store.Snapshot) { s.Files[0].Path = "/a.md" }},
		{name: "dot-dot", mod: func(s *store.Snapshot) { s.Files[1].Path = "b/../c" }},
		{name: "NUL in path", mod: func(s *store.Snapshot) { s.Files[1].Path = "b/c\x00" }},
		{name: "invalid UTF-8 path", mod: func(s *store.Snapshot) { s.Files[1].Path = "b/\xff" }},
		{name: "unknown kind", mod: func(s *store.Snapshot) { s.Files[0].Kind = "folder" }},
		{name: "no doc id", mod: func(s *store.Snapshot) { s.Files[0].DocID = "" }},
		{name: "negative size", mod: func(s *store.Snapshot) { s.Files[0].Size = -1 }},
		{name: "zero time", mod: func(s *store.Snapshot) { s.Time = time.Time{} }},
		{name: "invalid change kind", mod: func(s *store.Snapshot) { s.Changes[0].Kind = 0 }},
		{name: "rename without old path", mod: func(s *store.Snapshot) { s.Changes[0].Kind = store.ChangeRenamed }},
		{name: "old path on a change that is no rename", mod: func(s *store.Snapshot) { s.Changes[0].OldPath = "x.md" }},
		{name: "empty change path", mod: func(s *store.Snapshot) { s.Changes[0].Path = "" }},
		{name: "empty user", mod: func(s *store.Snapshot) { s.Users = append(s.Users, "") }},
		{name: "restored from itself", mod: func(s *store.Snapshot) { s.Origin.Restored = 2 }},
		{name: "restored from a later snapshot", mod: func(s *store.Snapshot) { s.Origin.Restored = 9 }},
		{name: "pushed commit without an id", mod: func(s *store.Snapshot) { s.Origin.Pushed = &store.Pushed{Pack: pack} }},
		{name: "pack not stored", mod: func(s *store.Snapshot) { s.Origin.Pushed = &store.Pushed{Commit: [20]byte{1}, Pack: missing} }},
		{name: "doc set and dropped", docs: map[string]store.DocState{"doc-a": stateA}, drop: []string{"doc-a"}},
		{name: "empty doc id", docs: map[string]store.DocState{"": stateA}},
		{name: "empty dropped doc id", drop: []string{""}},
	} {
		snap := good()
		if tc.mod != nil {
			tc.mod(snap)
		}
		docs, drop := tc.docs, tc.drop
		if docs == nil && drop == nil {
			docs, drop = refusedDocs, []string{"doc-a"}
		}
		if seq, err := b.AddSnapshot(snap, docs, drop); err == nil {
			t.Errorf("%s: recorded as snapshot %d", tc.name, seq)
			// Every check below would fail too: start over.
			b = open(t, noHold)
			a = putFile(t, b, "a.md", "doc-a", []byte("abc"))
			c = putFile(t, b, "b/c.canvas", "doc-c", []byte("{}"))
			if pack, err = b.PutBlob([]byte("a pack"), store.BlobID{}); err != nil {
				t.Fatal(err)
			}
			addSnap(t, b, &store.Snapshot{Folder: folderA, Time: at, Files: []store.File{a, c}}, map[string]store.DocState{"doc-a": stateA}, nil)
			continue
		}
		checkHistory(t, b, folderA, []*store.Snapshot{first})
		if got, err := b.DocStates(folderA); err != nil || !reflect.DeepEqual(got, map[string]store.DocState{"doc-a": stateA}) {
			t.Fatalf("%s: the refused snapshot changed the doc states: %v, %v", tc.name, got, err)
		}
	}
	if _, err := b.AddSnapshot(nil, nil, nil); err == nil {
		t.Error("a nil snapshot was recorded")
	}

	// The first snapshot of a new folder, refused: the folder is not
	// followed.
	bad := good()
	bad.Folder = folderC
	bad.Files[0].Blob = missing
	if seq, err := b.AddSnapshot(bad, refusedDocs, nil); err == nil {
		t.Fatalf("a snapshot with a missing blob was recorded as %d", seq)
	}
	checkFolders(t, b, folderA)
	checkHistory(t, b, folderC, nil)
	if got, err := b.DocStates(folderC); err != nil || len(got) != 0 {
		t.Fatalf("doc states of a refused first snapshot: %v, %v", got, err)
	}

	// The next good snapshots get the next seqs.
	second := addSnap(t, b, good(), nil, nil)
	if second.Seq != 2 {
		t.Fatalf("the snapshot after refused ones got seq %d, want 2", second.Seq)
	}
	fixed := good()
	fixed.Folder = folderC
	if w := addSnap(t, b, fixed, nil, nil); w.Seq != 1 {
		t.Fatalf("the first snapshot of a folder got seq %d", w.Seq)
	}
	checkHistory(t, b, folderA, []*store.Snapshot{first, second})
}

// model is a random folder history kept in memory to compare with.
type model struct {
	t       *testing.T
	b       store.Backend
	r       *rand.Rand
	f       store.FolderID
	files   map[string]store.File
	content map[string][]byte // by path
	states  map[string]store.DocState
	history []*store.Snapshot
	at      time.Time
	nextDoc int
}

var words = strings.Fields("the of and a to in is you that it he was for on are as with his they at be this have from or one had by word but not what all were we when your can said there use an each which she do how their if will up other about out many then them these so some her would make like him into time has look two more write go see number no way could people my than first water")

func (m *model) text(n int) []byte {
	var buf bytes.Buffer
	for buf.Len() < n {
		if m.r.IntN(10) == 0 {
			buf.WriteString(".\n")
		}
		buf.WriteString(words[m.r.IntN(len(words))])
		buf.WriteByte(' ')
	}
	return buf.Bytes()
}

func (m *model) put(data []byte, base store.BlobID) store.BlobID {
	m.t.Helper()
	id, err := m.b.PutBlob(data, base)
	if err != nil {
		m.t.Fatalf("PutBlob: %v", err)
	}
	if id != store.BlobIDOf(data) {
		m.t.Fatalf("PutBlob returned %s, want the git blob id %s", id, store.BlobIDOf(data))
	}
	return id
}

func (m *model) newPath() string {
	dirs := []string{"", "notes/", "notes/deep/", "Archive/", "ü/", "a b/"}
	exts := []string{".md", ".md", ".md", ".canvas", ".png"}
	for {
		p := fmt.Sprintf("%snote-%d%s", dirs[m.r.IntN(len(dirs))], m.r.IntN(500), exts[m.r.IntN(len(exts))])
		if _, ok := m.files[p]; !ok {
			return p
		}
	}
}

// pick returns a random path not in touched.
func (m *model) pick(touched map[string]bool) (string, bool) {
	var paths []string
	for _, p := range slices.Sorted(maps.Keys(m.files)) {
		if !touched[p] {
			paths = append(paths, p)
		}
	}
	if len(paths) == 0 {
		return "", false
	}
	return paths[m.r.IntN(len(paths))], true
}

// step records one random snapshot: a few adds, edits, renames and
// deletions (none, now and then) and their doc states.
func (m *model) step() {
	m.t.Helper()
	r := m.r
	docs := map[string]store.DocState{}
	var drop []string
	var changes []store.Change
	touched := map[string]bool{}
	set := func(f store.File, data []byte) {
		m.files[f.Path], m.content[f.Path] = f, data
		touched[f.Path] = true
		docs[f.DocID] = store.DocState{Hash: [32]byte{byte(r.Uint32()), byte(r.Uint32())}, Blob: f.Blob, Path: f.Path}
	}
	n := 1 + r.IntN(6)
	if r.IntN(15) == 0 {
		n = 0
	}
	for range n {
		op := r.IntN(10)
		switch {
		case len(m.files) < 45:
			op = 0
		case len(m.files) > 55:
			op = 9
		}
		switch {
		case op < 2: // add
			p := m.newPath()
			data := m.text(50 + r.IntN(2000))
			m.nextDoc++
			f := store.File{Path: p, Blob: m.put(data, store.BlobID{}), Size: int64(len(data)), DocID: fmt.Sprintf("doc-%d", m.nextDoc), Kind: kindOf(p)}
			set(f, data)
			changes = append(changes, store.Change{Kind: store.ChangeAdded, Path: p, DocID: f.DocID})
		case op < 7: // edit, stored against the previous version
			p, ok := m.pick(touched)
			if !ok {
				continue
			}
			f, old := m.files[p], m.content[p]
			cut := r.IntN(len(old) + 1)
			data := slices.Concat(old[:cut], m.text(1+r.IntN(80)), old[min(len(old), cut+r.IntN(40)):])
			f.Blob, f.Size = m.put(data, f.Blob), int64(len(data))
			set(f, data)
			changes = append(changes, store.Change{Kind: store.ChangeModified, Path: p, DocID: f.DocID})
		case op < 8: // rename, the content kept
			p, ok := m.pick(touched)
			if !ok {
				continue
			}
			f, data := m.files[p], m.content[p]
			delete(m.files, p)
			delete(m.content, p)
			touched[p] = true
			f.Path = m.newPath()
			f.Kind = kindOf(f.Path)
			set(f, data)
			changes = append(changes, store.Change{Kind: store.ChangeRenamed, Path: f.Path, OldPath: p, DocID: f.DocID})
		default: // delete
			p, ok := m.pick(touched)
			if !ok {
				continue
			}
			f := m.files[p]
			delete(m.files, p)
			delete(m.content, p)
			touched[p] = true
			drop = append(drop, f.DocID)
			changes = append(changes, store.Change{Kind: store.ChangeDeleted, Path: p, DocID: f.DocID})
		}
	}
	m.at = m.at.Add(time.Duration(1 + r.Int64N(int64(time.Hour))))
	snap := &store.Snapshot{Folder: m.f, Time: m.at, Changes: changes, Files: sortFiles(slices.Collect(maps.Values(m.files)))}
	for _, u := range []string{"u1", "u2", "7c9e6679-7425-40de-944b-e07fc1f90ae7"} {
		if r.IntN(2) == 0 {
			snap.Users = append(snap.Users, u)
		}
	}
	seq := uint64(len(m.history) + 1)
	switch {
	case seq > 1 && r.IntN(20) == 0:
		snap.Origin.Restored = 1 + r.Uint64N(seq-1)
	case r.IntN(20) == 0:
		pack := m.put(m.text(100+r.IntN(100)), store.BlobID{})
		snap.Origin.Pushed = &store.Pushed{Commit: [20]byte{byte(seq), byte(seq >> 8), 19: 1}, Pack: pack}
		if seq > 1 {
			snap.Origin.Pushed.Parent = [20]byte{byte(seq - 1), byte((seq - 1) >> 8), 19: 1}
		}
	}
	for id := range docs {
		m.states[id] = docs[id]
	}
	for _, id := range drop {
		delete(m.states, id)
	}
	w := addSnap(m.t, m.b, snap, docs, drop)
	if w.Seq != seq {
		m.t.Fatalf("snapshot %d got seq %d", seq, w.Seq)
	}
	m.history = append(m.history, w)
}

// Hundreds of snapshots of a tree of about 50 files, a few changes each:
// enough changes for an implementation that keeps trees as checkpoints
// and deltas (Badger's checkpoints come every few hundred changed entries)
// to cross several, read back alike through every read method.
func testManySnapshots(t *testing.T, open Open) {
	b := open(t, noHold)
	m := &model{t: t, b: b, r: rand.New(rand.NewPCG(300, 50)), f: folderA,
		files: map[string]store.File{}, content: map[string][]byte{}, states: map[string]store.DocState{},
		at: time.Date(2025, 12, 31, 23, 59, 59, 999999999, zone)}
	for range 300 {
		m.step()
	}
	checkHistory(t, b, folderA, m.history)
	got, err := b.DocStates(folderA)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m.states) {
		t.Fatalf("DocStates: %d states, want %d", len(got), len(m.states))
	}
	for _, p := range slices.Sorted(maps.Keys(m.content)) {
		f := m.files[p]
		data, err := b.Blob(f.Blob)
		if err != nil {
			t.Fatalf("Blob of %q: %v", p, err)
		}
		if !bytes.Equal(data, m.content[p]) {
			t.Fatalf("Blob of %q: %d bytes differ from the %d stored", p, len(data), len(m.content[p]))
		}
	}
}

// One snapshot of a folder of 10,000 files with their doc states (an
// initial import), then a one-file change.
func testLargeTree(t *testing.T, open Open) {
	b := open(t, noHold)
	blobs := []store.File{
		putFile(t, b, "x.md", "x", []byte("a note\n")),
		putFile(t, b, "x.md", "x", []byte("another note, a little longer\n")),
		putFile(t, b, "x.md", "x", nil),
	}
	var files []store.File
	docs := map[string]store.DocState{}
	for i := range 10000 {
		f := blobs[i%len(blobs)]
		f.Path = fmt.Sprintf("projects/project %03d/meeting notes of the week %05d.md", i%150, i)
		f.DocID = fmt.Sprintf("%08x-7425-40de-944b-e07fc1f90ae7", i)
		files = append(files, f)
		docs[f.DocID] = store.DocState{Hash: [32]byte{byte(i), byte(i >> 8)}, Blob: f.Blob, Path: f.Path}
	}
	sortFiles(files)
	at := time.Date(2026, 4, 5, 6, 7, 8, 9, time.UTC)
	first := addSnap(t, b, &store.Snapshot{Folder: folderA, Time: at, Users: []string{"u1"}, Files: files}, docs, nil)
	files = slices.Clone(files)
	files[5000].Blob, files[5000].Size = blobs[2].Blob, blobs[2].Size
	second := addSnap(t, b, &store.Snapshot{Folder: folderA, Time: at.Add(time.Minute),
		Changes: []store.Change{{Kind: store.ChangeModified, Path: files[5000].Path, DocID: files[5000].DocID}}, Files: files}, nil, nil)
	checkHistory(t, b, folderA, []*store.Snapshot{first, second})
	got, err := b.DocStates(folderA)
	if err != nil || !reflect.DeepEqual(got, docs) {
		t.Fatalf("DocStates: %d states (%v), want %d", len(got), err, len(docs))
	}
}

func checkDocStates(t *testing.T, b store.Backend, f store.FolderID, want map[string]store.DocState) {
	t.Helper()
	got, err := b.DocStates(f)
	if err != nil {
		t.Fatalf("DocStates: %v", err)
	}
	if got == nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("DocStates of %v = %v, want %v", f, got, want)
	}
}

func testDocStates(t *testing.T, open Open) {
	b := open(t, noHold)
	u := "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	sa := store.DocState{Hash: [32]byte{1, 31: 2}, Blob: store.BlobIDOf([]byte("a")), Path: "a.md"}
	sb := store.DocState{Hash: [32]byte{3, 31: 4}, Blob: store.BlobIDOf([]byte("b")), Path: "dir/b.md"}
	sc := store.DocState{Hash: [32]byte{5}, Path: "ü/c.md"}
	if err := b.PutDocStates(folderA, map[string]store.DocState{u: sa, "plain-id": sb}, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.PutDocStates(folderB, map[string]store.DocState{u: sb}, nil); err != nil {
		t.Fatal(err)
	}
	checkDocStates(t, b, folderA, map[string]store.DocState{u: sa, "plain-id": sb})
	// Set replaces, drop removes (an id never set is no error).
	if err := b.PutDocStates(upper(folderA), map[string]store.DocState{u: sb}, []string{"plain-id", "never-there"}); err != nil {
		t.Fatal(err)
	}
	checkDocStates(t, b, folderA, map[string]store.DocState{u: sb})
	checkDocStates(t, b, folderB, map[string]store.DocState{u: sb})
	// Refused updates change nothing.
	if err := b.PutDocStates(folderA, map[string]store.DocState{"x": sc, u: sa}, []string{u}); err == nil {
		t.Error("an id both set and dropped was taken")
	}
	if err := b.PutDocStates(folderA, map[string]store.DocState{"": sc, "x": sc}, nil); err == nil {
		t.Error("an empty doc id was taken")
	}
	if err := b.PutDocStates(folderA, map[string]store.DocState{"x": sc}, []string{""}); err == nil {
		t.Error("an empty dropped doc id was taken")
	}
	checkDocStates(t, b, folderA, map[string]store.DocState{u: sb})
	// With a snapshot.
	f := putFile(t, b, "ü/c.md", "x", []byte("c"))
	sc.Blob = f.Blob
	addSnap(t, b, &store.Snapshot{Folder: folderA, Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Files: []store.File{f}},
		map[string]store.DocState{"x": sc, "y": sa}, []string{u})
	checkDocStates(t, b, folderA, map[string]store.DocState{"x": sc, "y": sa})
	addSnap(t, b, &store.Snapshot{Folder: folderA, Time: time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC)}, nil, []string{"x"})
	checkDocStates(t, b, folderA, map[string]store.DocState{"y": sa})
	// Dropping the last leaves an empty map.
	if err := b.PutDocStates(folderA, nil, []string{"y"}); err != nil {
		t.Fatal(err)
	}
	checkDocStates(t, b, folderA, map[string]store.DocState{})
	checkDocStates(t, b, folderB, map[string]store.DocState{u: sb})
	checkDocStates(t, b, folderC, map[string]store.DocState{})
}

// readBlob reads blob id back through Blob, OpenBlob, BlobSize and HasBlob
// and fails unless each gives data.
func readBlob(t *testing.T, b store.Backend, what string, id store.BlobID, data []byte) {
	t.Helper()
	got, err := b.Blob(id)
	if err != nil {
		t.Fatalf("%s: Blob: %v", what, err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("%s: Blob gave %d bytes, not the %d stored", what, len(got), len(data))
	}
	rc, size, err := b.OpenBlob(id)
	if err != nil {
		t.Fatalf("%s: OpenBlob: %v", what, err)
	}
	streamed, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(rc, 64)))
	if err == nil {
		var rest []byte
		rest, err = io.ReadAll(rc)
		streamed = append(streamed, rest...)
	}
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("%s: reading OpenBlob: %v", what, err)
	}
	if size != int64(len(data)) || !bytes.Equal(streamed, data) {
		t.Fatalf("%s: OpenBlob gave %d bytes (size %d), not the %d stored", what, len(streamed), size, len(data))
	}
	if n, err := b.BlobSize(id); err != nil || n != int64(len(data)) {
		t.Fatalf("%s: BlobSize = %d, %v; want %d", what, n, err, len(data))
	}
	if has, err := b.HasBlob(id); err != nil || !has {
		t.Fatalf("%s: HasBlob = %v, %v", what, has, err)
	}
}

func randomBytes(seed byte, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

func testBlobs(t *testing.T, open Open) {
	b := open(t, noHold)
	m := &model{r: rand.New(rand.NewPCG(7, 7))}
	cases := []struct {
		name string
		data []byte
		git  string // `git hash-object` of data, where written out
	}{
		{"nil", nil, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"},
		{"empty", []byte{}, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"},
		{"hello", []byte("hello\n"), "ce013625030ba8dba906f756967f9e9ca394464a"},
		{"binary", []byte{0, 1, 0xff}, "494b1410a95b9ef0a980c33411fbf7d564472741"},
		{"crlf and ü", []byte("a\r\nü\r\n"), ""},
		{"31 random bytes", randomBytes(1, 31), ""},
		{"text", m.text(20000), ""},
		{"random", randomBytes(2, 70000), ""},
		{"zeros", make([]byte, 3<<20), ""},
	}
	for _, c := range cases {
		id, err := b.PutBlob(c.data, store.BlobID{})
		if err != nil {
			t.Fatalf("%s: PutBlob: %v", c.name, err)
		}
		if id != store.BlobIDOf(c.data) || c.git != "" && id.String() != c.git {
			t.Fatalf("%s: PutBlob returned %s, want the git blob id %s", c.name, id, store.BlobIDOf(c.data))
		}
		again, err := b.PutBlob(c.data, store.BlobID{})
		if err != nil || again != id {
			t.Fatalf("%s: PutBlob again = %s, %v; want %s", c.name, again, err, id)
		}
	}
	for _, c := range cases {
		readBlob(t, b, c.name, store.BlobIDOf(c.data), c.data)
	}
	// Blob's result is the caller's.
	id := store.BlobIDOf([]byte("hello\n"))
	got, err := b.Blob(id)
	if err != nil {
		t.Fatal(err)
	}
	got[0] = 'J'
	readBlob(t, b, "hello after changing a copy", id, []byte("hello\n"))

	unknown := store.BlobIDOf([]byte("never stored"))
	if data, err := b.Blob(unknown); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Blob of an unknown id = %d bytes, %v; want ErrNotFound", len(data), err)
	}
	if rc, _, err := b.OpenBlob(unknown); !errors.Is(err, store.ErrNotFound) {
		if rc != nil {
			rc.Close()
		}
		t.Errorf("OpenBlob of an unknown id: %v, want ErrNotFound", err)
	}
	if n, err := b.BlobSize(unknown); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("BlobSize of an unknown id = %d, %v; want ErrNotFound", n, err)
	}
	if has, err := b.HasBlob(unknown); has || err != nil {
		t.Errorf("HasBlob of an unknown id = %v, %v", has, err)
	}
}

// Versions of a document, each stored with the previous as base (deeper
// than any sensible delta chain), read back alike; a base that is not
// stored, or unrelated, is no error.
func testBlobVersions(t *testing.T, open Open) {
	b := open(t, noHold)
	m := &model{r: rand.New(rand.NewPCG(8, 8))}
	versions := [][]byte{m.text(8000)}
	ids := []store.BlobID{}
	base := store.BlobID{}
	for i := range 70 {
		if i > 0 {
			old := versions[i-1]
			cut := m.r.IntN(len(old))
			versions = append(versions, slices.Concat(old[:cut], m.text(1+m.r.IntN(200)), old[min(len(old), cut+m.r.IntN(100)):]))
		}
		id, err := b.PutBlob(versions[i], base)
		if err != nil || id != store.BlobIDOf(versions[i]) {
			t.Fatalf("version %d: PutBlob = %s, %v", i, id, err)
		}
		ids = append(ids, id)
		base = id
	}
	for _, i := range m.r.Perm(len(versions)) {
		readBlob(t, b, fmt.Sprint("version ", i), ids[i], versions[i])
	}
	for _, base := range []store.BlobID{store.BlobIDOf([]byte("not stored")), store.BlobIDOf([]byte("hello\n"))} {
		data := append(slices.Clone(versions[69]), "one more line\n"...)
		data = append(data, base[:]...)
		id, err := b.PutBlob(data, base)
		if err != nil || id != store.BlobIDOf(data) {
			t.Fatalf("PutBlob with base %s = %s, %v", base, id, err)
		}
		readBlob(t, b, "with base "+base.String(), id, data)
	}
	if _, err := b.PutBlob([]byte("hello\n"), store.BlobID{}); err != nil {
		t.Fatal(err)
	}
	data := append(slices.Clone(versions[3]), "x"...)
	id, err := b.PutBlob(data, store.BlobIDOf([]byte("hello\n")))
	if err != nil {
		t.Fatal(err)
	}
	readBlob(t, b, "with an unrelated base", id, data)
}

// hideLen hides a reader's type, so nothing can find its length.
type hideLen struct{ r io.Reader }

func (h hideLen) Read(p []byte) (int, error) { return h.r.Read(p) }

func testBlobsFromReaders(t *testing.T, open Open) {
	b := open(t, noHold)
	m := &model{r: rand.New(rand.NewPCG(9, 9))}
	old := m.text(30000)
	base, err := b.PutBlob(old, store.BlobID{})
	if err != nil {
		t.Fatal(err)
	}
	edited := append(slices.Clone(old), "one more line\n"...)
	big := randomBytes(3, 5<<20) // over the 4 MiB a backend may hold whole
	for _, c := range []struct {
		name string
		data []byte
		size int64
		base store.BlobID
	}{
		{"small, size known", []byte("small\n"), 6, store.BlobID{}},
		{"small, size unknown", []byte("small, unknown size\n"), -1, store.BlobID{}},
		{"empty, size known", nil, 0, store.BlobID{}},
		{"empty, size unknown", nil, -1, store.BlobID{}},
		{"an edit, size known, with base", edited, int64(len(edited)), base},
		{"an edit, size unknown, with base", append(slices.Clone(edited), '!'), -1, base},
		{"5 MiB, size unknown", big, -1, store.BlobID{}},
		{"5 MiB, size known (stored already)", big, int64(len(big)), store.BlobID{}},
	} {
		id, n, err := b.PutBlobFrom(hideLen{iotest.HalfReader(bytes.NewReader(c.data))}, c.size, c.base)
		if err != nil {
			t.Fatalf("%s: PutBlobFrom: %v", c.name, err)
		}
		if want := store.BlobIDOf(c.data); id != want || n != int64(len(c.data)) {
			t.Fatalf("%s: PutBlobFrom = %s, %d bytes; want %s, %d", c.name, id, n, want, len(c.data))
		}
		readBlob(t, b, c.name, id, c.data)
	}

	// Content of another length than announced, or a reader that fails,
	// stores nothing.
	other := randomBytes(4, 5<<20+100)
	for _, c := range []struct {
		data []byte
		size int64
	}{
		{other, int64(len(other)) + 1},
		{other, int64(len(other)) - 1},
		{other, 100},
		{[]byte("short content"), 20},
		{[]byte("short content"), 5},
	} {
		if id, _, err := b.PutBlobFrom(bytes.NewReader(c.data), c.size, store.BlobID{}); err == nil {
			t.Errorf("%d bytes announced as %d: stored as %s", len(c.data), c.size, id)
		}
		for _, d := range [][]byte{c.data, c.data[:min(int64(len(c.data)), c.size)]} {
			if has, err := b.HasBlob(store.BlobIDOf(d)); err != nil || has {
				t.Errorf("%d bytes announced as %d: blob of %d bytes stored (%v)", len(c.data), c.size, len(d), err)
			}
		}
	}
	boom := errors.New("connection reset")
	for _, size := range []int64{-1, int64(len(other))} {
		if _, _, err := b.PutBlobFrom(io.MultiReader(bytes.NewReader(other[:1<<20]), iotest.ErrReader(boom)), size, store.BlobID{}); !errors.Is(err, boom) {
			t.Errorf("a reader failing (size %d): %v, want %v", size, err, boom)
		}
	}
	for _, d := range [][]byte{other, other[:1<<20]} {
		if has, err := b.HasBlob(store.BlobIDOf(d)); err != nil || has {
			t.Errorf("a failed PutBlobFrom stored %d bytes (%v)", len(d), err)
		}
	}
}

// queueEvent is an event with every field set, its times in zone.
func queueEvent(i int) store.QueuedEvent {
	at := time.Date(2026, 3, 3, 21, 58, 48, 123456789, zone).Add(time.Duration(i) * time.Second)
	return store.QueuedEvent{
		ID:       fmt.Sprintf("evt_%04d", i),
		Relay:    "0b8c1f4e-2a5d-4c6b-9e7f-1a2b3c4d5e6f",
		Doc:      fmt.Sprintf("5e6f7a8b-9c0d-4e1f-8a2b-%012d", i),
		Time:     at,
		User:     fmt.Sprintf("user-%d", i%3),
		Received: at.Add(250*time.Millisecond + 1),
	}
}

// sameEvent compares everything but Key, times as sameTime.
func sameEvent(got, want store.QueuedEvent) bool {
	return got.ID == want.ID && got.Relay == want.Relay && got.Doc == want.Doc && got.User == want.User &&
		sameTime(got.Time, want.Time) && sameTime(got.Received, want.Received)
}

func pending(t *testing.T, b store.Backend) []store.QueuedEvent {
	t.Helper()
	evs, err := b.PendingEvents()
	if err != nil {
		t.Fatalf("PendingEvents: %v", err)
	}
	return evs
}

func checkPending(t *testing.T, b store.Backend, want []store.QueuedEvent) {
	t.Helper()
	got := pending(t, b)
	if len(got) != len(want) {
		t.Fatalf("PendingEvents: %d events, want %d:\n got %+v\nwant %+v", len(got), len(want), got, want)
	}
	for i := range got {
		if got[i].Key != want[i].Key || !sameEvent(got[i], want[i]) {
			t.Fatalf("pending[%d] = %+v, want %+v (times in UTC)", i, got[i], want[i])
		}
	}
}

func testQueue(t *testing.T, open Open) {
	b := open(t, noHold)
	checkPending(t, b, nil)
	var enq []store.QueuedEvent
	enqueue := func(ev store.QueuedEvent) store.QueuedEvent {
		t.Helper()
		q, dup, err := b.Enqueue(ev)
		if err != nil || dup {
			t.Fatalf("Enqueue %+v: dup=%v, %v", ev, dup, err)
		}
		if q.Key == 0 {
			t.Fatalf("Enqueue %+v: key 0", ev)
		}
		if len(enq) > 0 && q.Key <= enq[len(enq)-1].Key {
			t.Fatalf("Enqueue: key %d not above %d", q.Key, enq[len(enq)-1].Key)
		}
		if q.ID != ev.ID || q.Relay != ev.Relay || q.Doc != ev.Doc || q.User != ev.User || !q.Time.Equal(ev.Time) || !q.Received.Equal(ev.Received) {
			t.Fatalf("Enqueue returned %+v, want %+v", q, ev)
		}
		enq = append(enq, q)
		return q
	}
	for i := range 10 {
		ev := queueEvent(i)
		switch i {
		case 4:
			ev.ID, ev.User = "", "" // no dedupe id, no user
		case 5:
			ev.Time, ev.Received = time.Time{}, time.Time{} // zero times survive
		case 6:
			ev.Key = 1 << 40 // ignored: Enqueue assigns keys
		}
		enqueue(ev)
	}
	checkPending(t, b, enq)
	// Acking some (an unknown key and one twice among them) leaves the
	// rest, in order.
	if err := b.AckEvents([]uint64{enq[0].Key, enq[3].Key, enq[9].Key, enq[3].Key, enq[9].Key + 1<<20}); err != nil {
		t.Fatalf("AckEvents: %v", err)
	}
	if err := b.AckEvents(nil); err != nil {
		t.Fatalf("AckEvents(nil): %v", err)
	}
	rest := []store.QueuedEvent{enq[1], enq[2], enq[4], enq[5], enq[6], enq[7], enq[8]}
	checkPending(t, b, rest)
	// Acking acked keys again is no error, and changes nothing.
	if err := b.AckEvents([]uint64{enq[0].Key, enq[3].Key}); err != nil {
		t.Fatalf("AckEvents of acked keys: %v", err)
	}
	checkPending(t, b, rest)
	// Keys keep increasing after acks.
	last := enqueue(queueEvent(10))
	rest = append(rest, last)
	checkPending(t, b, rest)
	var keys []uint64
	for _, ev := range rest {
		keys = append(keys, ev.Key)
	}
	if err := b.AckEvents(keys); err != nil {
		t.Fatal(err)
	}
	checkPending(t, b, nil)
	enqueue(queueEvent(11))
	checkPending(t, b, enq[len(enq)-1:])
}

// The events a snapshot records are pending no more, whoever reads the
// queue next.
func testRecordedEvents(t *testing.T, open Open) {
	b := open(t, noHold)
	var keys []uint64
	for i := range 3 {
		ev, _, err := b.Enqueue(queueEvent(i))
		if err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
		keys = append(keys, ev.Key)
	}
	f := putFile(t, b, "a.md", "doc-a", []byte("a"))
	if _, err := b.AddSnapshot(&store.Snapshot{Folder: folderA, Time: time.Now(), Files: []store.File{f}, Events: keys[:2]}, nil, nil); err != nil {
		t.Fatalf("AddSnapshot: %v", err)
	}
	if evs := pending(t, b); len(evs) != 1 || evs[0].Key != keys[2] {
		t.Fatalf("PendingEvents after a snapshot recorded two of three: %+v, want only key %d", evs, keys[2])
	}
}

func testQueueDedupe(t *testing.T, open Open) {
	b := open(t, noHold)
	first, dup, err := b.Enqueue(queueEvent(1))
	if err != nil || dup {
		t.Fatalf("first: dup=%v, %v", dup, err)
	}
	// The same id with other content is a redelivery: not queued.
	again := queueEvent(2)
	again.ID = first.ID
	if _, dup, err := b.Enqueue(again); err != nil || !dup {
		t.Fatalf("same id: dup=%v, %v", dup, err)
	}
	checkPending(t, b, []store.QueuedEvent{first})
	// The id is remembered after its event is acknowledged.
	if err := b.AckEvents([]uint64{first.Key}); err != nil {
		t.Fatal(err)
	}
	if _, dup, err := b.Enqueue(queueEvent(1)); err != nil || !dup {
		t.Fatalf("same id after ack: dup=%v, %v", dup, err)
	}
	// Events without an id are never duplicates.
	var want []store.QueuedEvent
	noID := queueEvent(3)
	noID.ID = ""
	for i := range 3 {
		q, dup, err := b.Enqueue(noID)
		if err != nil || dup {
			t.Fatalf("no id #%d: dup=%v, %v", i, dup, err)
		}
		want = append(want, q)
	}
	// Ids differing only in case are different ids.
	up := queueEvent(4)
	up.ID = strings.ToUpper(first.ID)
	q, dup, err := b.Enqueue(up)
	if err != nil || dup {
		t.Fatalf("id %q after %q: dup=%v, %v", up.ID, first.ID, dup, err)
	}
	checkPending(t, b, append(want, q))
}

func samePushState(got, want *store.PushState) bool {
	if got == nil {
		return false
	}
	g, w := *got, *want
	if !sameTime(g.PushedAt, w.PushedAt) || !sameTime(g.ErrorAt, w.ErrorAt) || !sameTime(g.NextAttempt, w.NextAttempt) {
		return false
	}
	g.PushedAt, g.ErrorAt, g.NextAttempt = time.Time{}, time.Time{}, time.Time{}
	w.PushedAt, w.ErrorAt, w.NextAttempt = time.Time{}, time.Time{}, time.Time{}
	return g == w
}

func checkOwned(t *testing.T, b store.Backend, f store.FolderID, conn string, want []string) {
	t.Helper()
	got, err := b.PushOwned(f, conn)
	if err != nil {
		t.Fatalf("PushOwned(%s): %v", conn, err)
	}
	if len(got) != len(want) || !slices.Equal(got, want) {
		t.Fatalf("PushOwned(%s): %d paths, want %d (first: %q)", conn, len(got), len(want), got[:min(len(got), 3)])
	}
}

func testPushState(t *testing.T, open Open) {
	b := open(t, noHold)
	if states, err := b.PushStates(); err != nil || len(states) != 0 {
		t.Fatalf("PushStates of a new backend = %+v, %v", states, err)
	}
	now := time.Date(2026, 5, 6, 7, 8, 9, 123, zone)
	ps := &store.PushState{URL: "git@example.com:x.git", Branch: "main", Prefix: "docs/ü", Seq: 42, PushedAt: now, Linear: true,
		Attempts: 3, LastError: "push rejected: x\nsecond line", ErrorAt: now.Add(time.Second + 1), NextAttempt: now.Add(time.Minute)}
	ps.Commit[0], ps.Commit[19] = 0xab, 0xcd
	if err := b.SetPushState(upper(folderA), "c1", ps, []string{"a.md", "b/c.md"}); err != nil {
		t.Fatal(err)
	}
	got, err := b.PushState(folderA, "c1")
	if err != nil || !samePushState(got, ps) {
		t.Fatalf("PushState = %+v, %v; want %+v (times in UTC)", got, err, ps)
	}
	// The state is the caller's both ways.
	ps.Seq = 43
	got.Branch = "changed"
	if got, err := b.PushState(folderA, "c1"); err != nil || got.Seq != 42 || got.Branch != "main" {
		t.Fatalf("PushState after changing copies = %+v, %v", got, err)
	}
	checkOwned(t, b, folderA, "c1", []string{"a.md", "b/c.md"})
	// A nil owned leaves them; an empty one clears them.
	if err := b.SetPushState(folderA, "c1", ps, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := b.PushState(folderA, "c1"); err != nil || !samePushState(got, ps) {
		t.Fatalf("PushState after an update = %+v, %v", got, err)
	}
	checkOwned(t, b, folderA, "c1", []string{"a.md", "b/c.md"})
	var many []string
	for i := range 20000 {
		many = append(many, fmt.Sprintf("dir %03d/some fairly long note name %06d.md", i%500, i))
	}
	slices.Sort(many)
	if err := b.SetPushState(folderA, "c1", ps, many); err != nil {
		t.Fatal(err)
	}
	checkOwned(t, b, folderA, "c1", many)
	if err := b.SetPushState(folderA, "c1", ps, []string{}); err != nil {
		t.Fatal(err)
	}
	checkOwned(t, b, folderA, "c1", nil)
	// Refused: unsorted or duplicate paths, bad connector ids; nothing
	// changes.
	for _, owned := range [][]string{{"b", "a"}, {"a", "a"}} {
		if err := b.SetPushState(folderA, "c1", &store.PushState{Branch: "refused"}, owned); err == nil {
			t.Errorf("owned paths %q taken", owned)
		}
	}
	for _, conn := range []string{"", strings.Repeat("c", 65), "a\x00b"} {
		if err := b.SetPushState(folderA, conn, ps, nil); err == nil {
			t.Errorf("connector id %q taken", conn)
		}
	}
	if got, err := b.PushState(folderA, "c1"); err != nil || !samePushState(got, ps) {
		t.Fatalf("PushState after refused updates = %+v, %v", got, err)
	}
	checkOwned(t, b, folderA, "c1", nil)
	// Other connectors and folders are apart; zero times stay zero; a
	// connector id of 64 bytes is fine.
	long := strings.Repeat("L", 64)
	zero := &store.PushState{Branch: "b"}
	for _, c := range []struct {
		f    store.FolderID
		conn string
	}{{folderB, "zz"}, {folderA, "a0"}, {folderC, long}, {folderB, "a0"}} {
		if err := b.SetPushState(c.f, c.conn, zero, nil); err != nil {
			t.Fatalf("SetPushState(%v, %s): %v", c.f, c.conn, err)
		}
	}
	checkOwned(t, b, folderA, "a0", nil)
	all, err := b.PushStates()
	if err != nil {
		t.Fatal(err)
	}
	want := []store.ConnectorPush{
		{Folder: folderC, Conn: long, State: *zero},
		{Folder: folderB, Conn: "a0", State: *zero},
		{Folder: folderB, Conn: "zz", State: *zero},
		{Folder: folderA, Conn: "a0", State: *zero},
		{Folder: folderA, Conn: "c1", State: *ps},
	}
	if len(all) != len(want) {
		t.Fatalf("PushStates: %d states, want %d: %+v", len(all), len(want), all)
	}
	for i := range all {
		if all[i].Folder != want[i].Folder || all[i].Conn != want[i].Conn || !samePushState(&all[i].State, &want[i].State) {
			t.Fatalf("PushStates[%d] = %+v, want %+v (sorted by folder, then connector)", i, all[i], want[i])
		}
	}
	if _, err := b.PushState(folderC, "c1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PushState of an unknown connector: %v, want ErrNotFound", err)
	}
}

// holdTree stores n notes and returns them as a tree.
func holdTree(t *testing.T, b store.Backend, n int) []store.File {
	var out []store.File
	for i := range n {
		out = append(out, putFile(t, b, fmt.Sprintf("note-%02d.md", i), fmt.Sprint("doc-", i), []byte(fmt.Sprintf("note %d\n", i))))
	}
	return out
}

func checkHeld(t *testing.T, b store.Backend, f store.FolderID, want *store.Hold) {
	t.Helper()
	got, err := b.Held(f)
	if err != nil {
		t.Fatalf("Held: %v", err)
	}
	if !sameHold(got, want) {
		t.Fatalf("Held = %+v, want %+v", got, want)
	}
}

func sameHold(got, want *store.Hold) bool {
	if got == nil || want == nil {
		return got == want
	}
	g, w := *got, *want
	if !sameTime(g.Time, w.Time) {
		return false
	}
	g.Time, w.Time = time.Time{}, time.Time{}
	return g == w
}

func checkDropped(t *testing.T, b store.Backend, f store.FolderID, want ...store.SeqRange) {
	t.Helper()
	got, err := b.Dropped(f)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("Dropped = %v, %v; want %v", got, err, want)
	}
}

func testHolds(t *testing.T, open Open) {
	b := open(t, halfOf10)
	files := holdTree(t, b, 20)
	t0 := time.Date(2026, 6, 7, 8, 9, 10, 11, zone)
	var history []*store.Snapshot
	add := func(f store.FolderID, tree []store.File) *store.Snapshot {
		t.Helper()
		w := addSnap(t, b, &store.Snapshot{Folder: f, Time: t0.Add(time.Duration(len(history)) * time.Minute), Files: tree}, nil, nil)
		if f == folderA {
			history = append(history, w)
		}
		return w
	}
	add(folderA, files) // 1
	checkHeld(t, b, folderA, nil)
	if _, err := b.ReleaseHold(folderA); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ReleaseHold of a folder not held: %v, want ErrNotFound", err)
	}
	// Half is not more than half; renames are no deletions.
	add(folderA, files[10:]) // 2
	checkHeld(t, b, folderA, nil)
	moved := slices.Clone(files)
	for i := range moved {
		moved[i].Path = "archive/" + moved[i].Path
	}
	add(folderA, moved) // 3
	checkHeld(t, b, folderA, nil)
	add(folderA, files) // 4

	s5 := add(folderA, files[15:]) // deletes 15 of 20: held
	hold := &store.Hold{Folder: folderA, From: 5, Base: 4, BaseFiles: 20, Deleted: 15, Time: s5.Time}
	checkHeld(t, b, folderA, hold)
	add(folderA, files[14:]) // 6: queued behind the hold
	checkHeld(t, b, folderA, hold)
	// A folder of fewer than MinFiles files is never held.
	add(folderB, files[:9])
	add(folderB, nil)
	checkHeld(t, b, folderB, nil)
	holds, err := b.Holds()
	if err != nil || len(holds) != 1 || !sameHold(&holds[0], hold) {
		t.Fatalf("Holds = %+v, %v; want [%+v]", holds, err, hold)
	}
	// Held snapshots are recorded like any other.
	checkHistory(t, b, folderA, history)

	h, r, err := b.DropHold(folderA)
	if err != nil || !sameHold(h, hold) || r != (store.SeqRange{From: 5, Through: 6}) {
		t.Fatalf("DropHold = %+v, %+v, %v; want %+v, 5–6", h, r, err, hold)
	}
	checkHeld(t, b, folderA, nil)
	checkDropped(t, b, folderA, store.SeqRange{From: 5, Through: 6})
	if h, r, err := b.DropHold(folderA); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a second DropHold = %+v, %+v, %v; want ErrNotFound", h, r, err)
	}
	if holds, err := b.Holds(); err != nil || len(holds) != 0 {
		t.Fatalf("Holds after the drop = %+v, %v", holds, err)
	}
	// Dropped snapshots are still read (only pushing skips them).
	checkHistory(t, b, folderA, history)

	// Still empty after the drop: compared with snapshot 4, the one before
	// the dropped range, held again; a drop extends the same range.
	s7 := add(folderA, files[14:])
	checkHeld(t, b, folderA, &store.Hold{Folder: folderA, From: 7, Base: 4, BaseFiles: 20, Deleted: 14, Time: s7.Time})
	if _, r, err := b.DropHold(folderA); err != nil || r != (store.SeqRange{From: 7, Through: 7}) {
		t.Fatalf("DropHold = %+v, %v; want 7–7", r, err)
	}
	checkDropped(t, b, folderA, store.SeqRange{From: 5, Through: 7})
	// Restored: not held.
	add(folderA, files) // 8
	checkHeld(t, b, folderA, nil)
	// A later mass deletion is held and released; the release keeps the
	// dropped ranges.
	s9 := add(folderA, files[:3])
	hold = &store.Hold{Folder: folderA, From: 9, Base: 8, BaseFiles: 20, Deleted: 17, Time: s9.Time}
	checkHeld(t, b, folderA, hold)
	// Another held folder: Holds lists both, sorted by folder.
	add(folderC, files)
	sc := add(folderC, nil)
	holdC := &store.Hold{Folder: folderC, From: 2, Base: 1, BaseFiles: 20, Deleted: 20, Time: sc.Time}
	holds, err = b.Holds()
	if err != nil || len(holds) != 2 || !sameHold(&holds[0], holdC) || !sameHold(&holds[1], hold) {
		t.Fatalf("Holds = %+v, %v; want [%+v %+v]", holds, err, holdC, hold)
	}
	if h, err := b.ReleaseHold(upper(folderA)); err != nil || !sameHold(h, hold) {
		t.Fatalf("ReleaseHold = %+v, %v; want %+v", h, err, hold)
	}
	checkHeld(t, b, folderA, nil)
	checkDropped(t, b, folderA, store.SeqRange{From: 5, Through: 7})
	if h, err := b.ReleaseHold(folderA); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a second ReleaseHold = %+v, %v; want ErrNotFound", h, err)
	}
	// After a release, the next snapshot is compared with the released
	// one: a folder that stays small is not held again.
	add(folderA, files[:2]) // 10
	checkHeld(t, b, folderA, nil)
	holds, err = b.Holds()
	if err != nil || len(holds) != 1 || !sameHold(&holds[0], holdC) {
		t.Fatalf("Holds = %+v, %v; want [%+v]", holds, err, holdC)
	}
	checkDropped(t, b, folderC)
	checkHistory(t, b, folderA, history)
}

// A backend opened with the zero policy holds nothing.
func testHoldsOff(t *testing.T, open Open) {
	b := open(t, noHold)
	files := holdTree(t, b, 20)
	at := time.Date(2026, 6, 7, 8, 9, 10, 11, time.UTC)
	addSnap(t, b, &store.Snapshot{Folder: folderA, Time: at, Files: files}, nil, nil)
	addSnap(t, b, &store.Snapshot{Folder: folderA, Time: at}, nil, nil)
	checkHeld(t, b, folderA, nil)
	if holds, err := b.Holds(); err != nil || len(holds) != 0 {
		t.Fatalf("Holds = %+v, %v", holds, err)
	}
}

func testSettings(t *testing.T, open Open) {
	b := open(t, noHold)
	if cfg, err := b.HistoryConfig(); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("HistoryConfig of a new backend = %q, %v; want ErrNotFound", cfg, err)
	}
	first := []byte(`{"author":{"name":"Notes Bot","email":"bot@example.com"},"authors":{"u1":{"name":"Ädä"}}}`)
	if err := b.SetHistoryConfig(first); err != nil {
		t.Fatal(err)
	}
	first[2] = 'X' // the caller's
	if got, err := b.HistoryConfig(); err != nil || string(got) != `{"author":{"name":"Notes Bot","email":"bot@example.com"},"authors":{"u1":{"name":"Ädä"}}}` {
		t.Fatalf("HistoryConfig = %q, %v", got, err)
	}
	big := []byte(`{"pad":"` + strings.Repeat("x", 512<<10) + `"}`) // over any single-value limit of 64 KiB
	for _, cfg := range [][]byte{[]byte(`{}`), big} {
		if err := b.SetHistoryConfig(cfg); err != nil {
			t.Fatalf("SetHistoryConfig of %d bytes: %v", len(cfg), err)
		}
		if got, err := b.HistoryConfig(); err != nil || !bytes.Equal(got, cfg) {
			t.Fatalf("HistoryConfig after replacing = %d bytes, %v; want %d", len(got), err, len(cfg))
		}
	}
	if err := b.SetHistoryConfig([]byte(`{"pad":"` + strings.Repeat("x", 1<<20) + `"}`)); err == nil {
		t.Fatal("a config over 1 MiB was taken")
	}
	if got, err := b.HistoryConfig(); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("HistoryConfig after a refused write = %d bytes, %v", len(got), err)
	}
}

// Writers at once: one folder's snapshots get distinct, gapless seqs in
// the order each writer made them; an id enqueued by many at once is
// queued once; the same blob stored at once is one blob.
func testConcurrent(t *testing.T, open Open) {
	b := open(t, noHold)
	const writers, each = 4, 8
	tree := []store.File{putFile(t, b, "a.md", "doc-a", []byte("a\n"))}
	at := time.Date(2026, 7, 8, 9, 10, 11, 12, time.UTC)
	var (
		mu   sync.Mutex
		errs []error
		seqs = map[uint64][2]int{} // seq -> writer, i
		wg   sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				snap := &store.Snapshot{Folder: folderA, Time: at.Add(time.Duration(w*each + i)), Users: []string{fmt.Sprint("writer-", w)},
					Changes: []store.Change{{Kind: store.ChangeModified, Path: fmt.Sprintf("w%d-%d.md", w, i), DocID: "doc-a"}}, Files: tree}
				seq, err := b.AddSnapshot(snap, map[string]store.DocState{fmt.Sprint("doc-", w): {Path: fmt.Sprint(i)}}, nil)
				if err != nil {
					fail(fmt.Errorf("writer %d, snapshot %d: %w", w, i, err))
					return
				}
				mu.Lock()
				if prev, ok := seqs[seq]; ok {
					errs = append(errs, fmt.Errorf("seq %d given to writer %d (#%d) and writer %d (#%d)", seq, prev[0], prev[1], w, i))
				}
				seqs[seq] = [2]int{w, i}
				mu.Unlock()
			}
		})
	}
	var (
		fresh   = map[string]int{}
		keys    = map[uint64]bool{}
		blobIDs = map[store.BlobID]bool{}
	)
	blob := randomBytes(5, 100<<10)
	for g := range 8 {
		wg.Go(func() {
			for i := range 5 {
				ev := queueEvent(i)
				if g%2 == 1 {
					ev.ID = "" // never a duplicate
				}
				q, dup, err := b.Enqueue(ev)
				if err != nil {
					fail(fmt.Errorf("enqueueing: %w", err))
					return
				}
				mu.Lock()
				if !dup {
					fresh[ev.ID]++
					if keys[q.Key] {
						errs = append(errs, fmt.Errorf("queue key %d given twice", q.Key))
					}
					keys[q.Key] = true
				}
				mu.Unlock()
			}
			id, err := b.PutBlob(blob, store.BlobID{})
			if err != nil {
				fail(fmt.Errorf("PutBlob: %w", err))
				return
			}
			mu.Lock()
			blobIDs[id] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errors.Join(errs...))
	}
	infos, err := b.Snapshots(folderA, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != writers*each || len(seqs) != writers*each {
		t.Fatalf("%d snapshots listed, %d seqs returned; want %d", len(infos), len(seqs), writers*each)
	}
	last := map[int]int{}
	for i, info := range infos {
		wi, ok := seqs[info.Seq]
		if info.Seq != uint64(i+1) || !ok {
			t.Fatalf("Snapshots[%d] has seq %d (returned by AddSnapshot: %v)", i, info.Seq, ok)
		}
		w, n := wi[0], wi[1]
		if len(info.Users) != 1 || info.Users[0] != fmt.Sprint("writer-", w) || len(info.Changes) != 1 || info.Changes[0].Path != fmt.Sprintf("w%d-%d.md", w, n) {
			t.Fatalf("snapshot %d, returned to writer %d for its #%d, is %+v", info.Seq, w, n, info)
		}
		if prev, ok := last[w]; ok && n != prev+1 {
			t.Fatalf("writer %d: its #%d is after its #%d", w, n, prev)
		}
		last[w] = n
	}
	docs, err := b.DocStates(folderA)
	if err != nil {
		t.Fatal(err)
	}
	for w := range writers {
		if d := docs[fmt.Sprint("doc-", w)]; d.Path != fmt.Sprint(each-1) {
			t.Errorf("doc state of writer %d: %+v, want its last", w, d)
		}
	}
	for i := range 5 {
		if id := queueEvent(i).ID; fresh[id] != 1 {
			t.Errorf("event %s queued %d times by 8 writers, want once", id, fresh[id])
		}
	}
	if fresh[""] != 4*5 {
		t.Errorf("%d events without an id queued, want 20", fresh[""])
	}
	if evs := pending(t, b); len(evs) != 25 {
		t.Errorf("%d events pending, want 25", len(evs))
	}
	if len(blobIDs) != 1 || !blobIDs[store.BlobIDOf(blob)] {
		t.Errorf("the same blob stored at once gave ids %v", slices.Collect(maps.Keys(blobIDs)))
	}
	readBlob(t, b, "blob stored at once", store.BlobIDOf(blob), blob)
}
