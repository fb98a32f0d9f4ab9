package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func uuidFrom(r *rand.Rand) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return unpackUUID(b[:])
}

func testFolder(r *rand.Rand) FolderID { return FolderID{Relay: uuidFrom(r), Folder: uuidFrom(r)} }

// norm makes nil and empty slices compare equal.
func norm(s *Snapshot) Snapshot {
	c := *s
	if len(c.Users) == 0 {
		c.Users = nil
	}
	if len(c.Changes) == 0 {
		c.Changes = nil
	}
	if len(c.Files) == 0 {
		c.Files = nil
	}
	return c
}

func sameSnapshot(t *testing.T, what string, got, want *Snapshot) {
	t.Helper()
	g, w := norm(got), norm(want)
	if !g.Time.Equal(w.Time) || g.Time.Location() != time.UTC {
		t.Fatalf("%s: time %v, want %v (UTC)", what, g.Time, w.Time)
	}
	g.Time, w.Time = time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

// model is the in-memory reference a random history is checked against.
type model struct {
	r       *rand.Rand
	s       *Store
	folder  FolderID
	files   map[string]File   // by path
	content map[string][]byte // by path
	states  map[string]DocState
	history []*Snapshot
	users   []string
	t       time.Time
}

func newModel(r *rand.Rand, s *Store) *model {
	return &model{
		r: r, s: s, folder: testFolder(r),
		files: map[string]File{}, content: map[string][]byte{}, states: map[string]DocState{},
		users: []string{uuidFrom(r), uuidFrom(r), "not-a-uuid-user"},
		t:     time.Date(2024, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600)),
	}
}

func (m *model) randomPath() string {
	dirs := []string{"", "notes/", "notes/deep/", "Archive/", "ü/"}
	for {
		p := fmt.Sprintf("%snote-%d.md", dirs[m.r.IntN(len(dirs))], m.r.IntN(1000))
		if m.r.IntN(8) == 0 {
			p = strings.TrimSuffix(p, ".md") + ".png"
		}
		if _, ok := m.files[p]; !ok {
			return p
		}
	}
}

func (m *model) pick() string {
	paths := slices.Sorted(maps.Keys(m.files))
	return paths[m.r.IntN(len(paths))]
}

func (m *model) put(t *testing.T, data []byte, base BlobID) BlobID {
	id, err := m.s.PutBlob(data, base)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// step makes one random snapshot and checks it against the model.
func (m *model) step(t *testing.T) {
	r := m.r
	var changes []Change
	docs := map[string]DocState{}
	var drop []string
	touched := map[string]bool{} // paths changed in this step
	setFile := func(f File, data []byte) {
		m.files[f.Path], m.content[f.Path] = f, data
		touched[f.Path] = true
		docs[f.DocID] = DocState{Hash: sha256.Sum256(data), Blob: f.Blob, Path: f.Path}
	}
	n := r.IntN(4)
	if r.IntN(40) == 0 {
		n = 20 + r.IntN(30) // a burst (initial import, bulk move)
	}
	for i := 0; i < n; i++ {
		op := r.IntN(10)
		if len(m.files) == 0 {
			op = 0
		}
		switch {
		case op <= 2: // add
			p := m.randomPath()
			kind, doc := "markdown", uuidFrom(r)
			data := textOf(r, r.IntN(3000))
			switch {
			case strings.HasSuffix(p, ".png"):
				kind, data = "file", randBytes(r, r.IntN(5000))
			case r.IntN(10) == 0:
				kind = "canvas"
			}
			if r.IntN(7) == 0 {
				doc = "doc-" + doc[:8] // not a UUID: stored unpacked
			}
			f := File{Path: p, Blob: m.put(t, data, BlobID{}), Size: int64(len(data)), DocID: doc, Kind: kind}
			setFile(f, data)
			changes = append(changes, Change{Kind: ChangeAdded, Path: p, DocID: doc})
		case op <= 6: // modify
			p := m.pick()
			if touched[p] {
				continue
			}
			f := m.files[p]
			data := edit(r, m.content[p])
			f.Blob, f.Size = m.put(t, data, f.Blob), int64(len(data))
			setFile(f, data)
			changes = append(changes, Change{Kind: ChangeModified, Path: p, DocID: f.DocID})
		case op <= 8: // rename, sometimes with an edit
			old := m.pick()
			if touched[old] {
				continue
			}
			f, data := m.files[old], m.content[old]
			delete(m.files, old)
			delete(m.content, old)
			f.Path = m.randomPath()
			if r.IntN(3) == 0 {
				data = edit(r, data)
				f.Blob, f.Size = m.put(t, data, f.Blob), int64(len(data))
			}
			setFile(f, data)
			changes = append(changes, Change{Kind: ChangeRenamed, Path: f.Path, OldPath: old, DocID: f.DocID})
		default: // delete
			p := m.pick()
			if touched[p] {
				continue
			}
			f := m.files[p]
			delete(m.files, p)
			delete(m.content, p)
			delete(docs, f.DocID)
			drop = append(drop, f.DocID)
			changes = append(changes, Change{Kind: ChangeDeleted, Path: p, DocID: f.DocID})
		}
	}
	files := make([]File, 0, len(m.files))
	for _, p := range slices.Sorted(maps.Keys(m.files)) {
		files = append(files, m.files[p])
	}
	var users []string
	for _, u := range m.users {
		if r.IntN(2) == 0 {
			users = append(users, u)
		}
	}
	m.t = m.t.Add(time.Duration(r.Int64N(int64(time.Hour))))
	snap := &Snapshot{Folder: m.folder, Time: m.t, Users: users, Changes: changes, Files: files}
	// Some snapshots were written by a restore or a push (or, rarely,
	// both); large records go through the compressed format too.
	if n := uint64(len(m.history)); n > 0 && r.IntN(8) == 0 {
		snap.Origin.Restored = 1 + r.Uint64N(n)
	}
	if r.IntN(8) == 0 {
		p := &Pushed{Pack: m.put(t, randBytes(r, 100+r.IntN(1000)), BlobID{})}
		for i := range p.Commit {
			p.Commit[i], p.Parent[i] = byte(r.Uint32()), byte(r.Uint32())
		}
		snap.Origin.Pushed = p
	}
	want := *snap
	want.Origin = snap.Origin.clone()
	want.Files, want.Users, want.Changes = slices.Clone(files), slices.Clone(users), slices.Clone(changes)
	seq, err := m.s.AddSnapshot(snap, docs, drop)
	if err != nil {
		t.Fatal(err)
	}
	if seq != uint64(len(m.history)+1) || snap.Seq != seq {
		t.Fatalf("seq %d (snap.Seq %d), want %d", seq, snap.Seq, len(m.history)+1)
	}
	// The store must not keep the caller's slices.
	for i := range snap.Files {
		snap.Files[i].Path = "scribbled"
	}
	want.Seq = seq
	want.Time = want.Time.UTC()
	m.history = append(m.history, &want)
	for _, id := range drop {
		delete(m.states, id)
	}
	maps.Copy(m.states, docs)

	got, err := m.s.Latest(m.folder)
	if err != nil {
		t.Fatal(err)
	}
	sameSnapshot(t, fmt.Sprintf("latest %d", seq), got, &want)
}

// verify checks every snapshot, listing and doc state against the model.
func (m *model) verify(t *testing.T) {
	t.Helper()
	s, f := m.s, m.folder
	n := len(m.history)
	latest, err := s.Latest(f)
	if err != nil {
		t.Fatal(err)
	}
	sameSnapshot(t, "latest", latest, m.history[n-1])
	// Random order, then ascending, then descending.
	order := m.r.Perm(n)
	for _, i := range order[:min(n, 60)] {
		got, err := s.Snapshot(f, uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		sameSnapshot(t, fmt.Sprintf("snapshot %d", i+1), got, m.history[i])
	}
	for i := 0; i < n; i++ {
		got, err := s.Snapshot(f, uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		sameSnapshot(t, fmt.Sprintf("snapshot %d (ascending)", i+1), got, m.history[i])
	}
	for i := n - 1; i >= max(0, n-30); i-- {
		got, err := s.Snapshot(f, uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		sameSnapshot(t, fmt.Sprintf("snapshot %d (descending)", i+1), got, m.history[i])
	}
	for _, seq := range []uint64{0, uint64(n + 1)} {
		if _, err := s.Snapshot(f, seq); !errors.Is(err, ErrNotFound) {
			t.Fatalf("snapshot %d: %v", seq, err)
		}
	}
	// Walk from a few starting points.
	for _, after := range []uint64{0, uint64(n / 3), uint64(n - 1), uint64(n)} {
		next := after + 1
		err := s.Walk(f, after, func(got *Snapshot) error {
			if got.Seq != next {
				return fmt.Errorf("walk gave %d, want %d", got.Seq, next)
			}
			sameSnapshot(t, fmt.Sprintf("walk %d", next), got, m.history[next-1])
			got.Files = append(got.Files[:0], File{Path: "scribbled"}) // must not affect the next one
			next++
			return nil
		})
		if err != nil || next != uint64(n+1) {
			t.Fatalf("walk after %d: %v (stopped at %d)", after, err, next)
		}
	}
	stop := errors.New("stop")
	if err := s.Walk(f, 0, func(*Snapshot) error { return stop }); err != stop {
		t.Fatalf("walk error: %v", err)
	}
	// Listing.
	for _, after := range []uint64{0, uint64(n / 2), uint64(n)} {
		infos, err := s.Snapshots(f, after)
		if err != nil {
			t.Fatal(err)
		}
		if len(infos) != n-int(after) {
			t.Fatalf("Snapshots(%d): %d, want %d", after, len(infos), n-int(after))
		}
		for i, info := range infos {
			w := m.history[int(after)+i]
			got := &Snapshot{Folder: f, Seq: info.Seq, Time: info.Time, Users: info.Users, Changes: info.Changes, Origin: info.Origin, Files: w.Files}
			sameSnapshot(t, fmt.Sprintf("info %d", info.Seq), got, w)
			if info.NumFiles != len(w.Files) {
				t.Fatalf("info %d: %d files, want %d", info.Seq, info.NumFiles, len(w.Files))
			}
		}
	}
	states, err := s.DocStates(f)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(states, m.states) {
		t.Fatalf("doc states: %d, want %d", len(states), len(m.states))
	}
	for p, data := range m.content {
		got, err := s.Blob(m.files[p].Blob)
		if err != nil || string(got) != string(data) {
			t.Fatalf("content of %s: %v", p, err)
		}
	}
}

// countKeys counts the keys that start with prefix.
func countKeys(t *testing.T, s *Store, prefix []byte) int {
	n := 0
	if err := s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = prefix
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSnapshotsAgainstModel(t *testing.T) {
	for _, tc := range []struct {
		name           string
		minGap, maxGap int
		steps          int
	}{
		{"default checkpoints", checkpointMinEntries, checkpointMaxGap, 400},
		{"frequent checkpoints", 3, 7, 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tune := func(s *Store) *Store {
				s.ckptMinGap, s.ckptMaxGap = tc.minGap, tc.maxGap
				return s
			}
			s := tune(openDisk(t, dir, Options{}))
			m := newModel(rand.New(rand.NewPCG(42, uint64(tc.minGap))), s)
			if _, err := s.Latest(m.folder); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Latest of a new folder: %v", err)
			}
			for i := 0; i < tc.steps; i++ {
				m.step(t)
				if i == tc.steps/2 {
					// Reopen halfway: the folder state is rebuilt from disk
					// and the history continues where it was.
					m.verify(t)
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
					s = tune(openDisk(t, dir, Options{}))
					m.s = s
				}
			}
			m.verify(t)
			fk, _ := m.folder.key()
			t.Logf("%d snapshots, %d checkpoints", len(m.history), countKeys(t, s, folderPrefix(prefixCheckpoint, fk)))
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = tune(openDisk(t, dir, Options{}))
			defer s.Close()
			m.s = s
			m.verify(t)
			folders, err := s.Folders()
			if err != nil || len(folders) != 1 || folders[0] != m.folder {
				t.Fatalf("folders: %v %v", folders, err)
			}
		})
	}
}

func TestAddFolderAndFolders(t *testing.T) {
	s := openMem(t)
	r := rand.New(rand.NewPCG(9, 9))
	var want []FolderID
	for i := 0; i < 5; i++ {
		f := testFolder(r)
		want = append(want, f)
		up := FolderID{Relay: strings.ToUpper(f.Relay), Folder: strings.ToUpper(f.Folder)}
		if err := s.AddFolder(up); err != nil {
			t.Fatal(err)
		}
		if err := s.AddFolder(f); err != nil { // idempotent
			t.Fatal(err)
		}
	}
	// A folder that only has a snapshot is listed too.
	f := testFolder(r)
	want = append(want, f)
	data := []byte("x")
	id, _ := s.PutBlob(data, BlobID{})
	if _, err := s.AddSnapshot(&Snapshot{Folder: f, Time: time.Now(), Files: []File{{Path: "a.md", Blob: id, Size: 1, DocID: "d", Kind: "markdown"}}}, nil, nil); err != nil {
		t.Fatal(err)
	}
	sort.Slice(want, func(i, j int) bool { return want[i].String() < want[j].String() })
	got, err := s.Folders()
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Folders = %v, %v; want %v", got, err, want)
	}
	// A followed folder without snapshots.
	if _, err := s.Latest(want[0]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Latest: %v", err)
	}
	if infos, err := s.Snapshots(want[0], 0); err != nil || len(infos) != 0 {
		t.Fatalf("Snapshots: %v %v", infos, err)
	}
	if err := s.Walk(want[0], 0, func(*Snapshot) error { return errors.New("called") }); err != nil {
		t.Fatal(err)
	}
	if err := s.AddFolder(FolderID{Relay: "nope", Folder: "nope"}); err == nil {
		t.Fatal("invalid folder accepted")
	}
	// Reading folders the store never saw keeps no state for them.
	s.mu.Lock()
	before := len(s.folders)
	s.mu.Unlock()
	for i := 0; i < 10; i++ {
		g := testFolder(r)
		if _, err := s.Latest(g); !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
		if _, err := s.Snapshot(g, 1); !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
		if err := s.Walk(g, 0, func(*Snapshot) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	after := len(s.folders)
	s.mu.Unlock()
	if after != before {
		t.Fatalf("folder states grew from %d to %d on reads of unknown folders", before, after)
	}
}

func TestEmptyTreesAndNoChangeSnapshots(t *testing.T) {
	s := openMem(t)
	f := testFolder(rand.New(rand.NewPCG(1, 1)))
	at := time.Date(2025, 5, 6, 7, 8, 9, 123456789, time.UTC)
	id, _ := s.PutBlob([]byte("hi"), BlobID{})
	tree := []File{{Path: "a", Blob: id, Size: 2, DocID: "d1", Kind: "file"}}
	for i, files := range [][]File{nil, tree, tree, nil, nil, tree} {
		seq, err := s.AddSnapshot(&Snapshot{Folder: f, Time: at, Files: files}, nil, nil)
		if err != nil || seq != uint64(i+1) {
			t.Fatalf("%d: %d %v", i, seq, err)
		}
	}
	for i, n := range []int{0, 1, 1, 0, 0, 1} {
		got, err := s.Snapshot(f, uint64(i+1))
		if err != nil || len(got.Files) != n || !got.Time.Equal(at) {
			t.Fatalf("snapshot %d: %+v %v", i+1, got, err)
		}
	}
}

func TestValidation(t *testing.T) {
	s := openMem(t)
	r := rand.New(rand.NewPCG(2, 2))
	f := testFolder(r)
	id, _ := s.PutBlob([]byte("abc"), BlobID{})
	good := func() *Snapshot {
		return &Snapshot{Folder: f, Time: time.Now(), Files: []File{
			{Path: "a.md", Blob: id, Size: 3, DocID: "d1", Kind: "markdown"},
			{Path: "b/c.canvas", Blob: id, Size: 3, DocID: "d2", Kind: "canvas"},
		}, Changes: []Change{{Kind: ChangeAdded, Path: "a.md", DocID: "d1"}}}
	}
	missing := BlobIDOf([]byte("missing"))
	for _, tc := range []struct {
		name  string
		mod   func(*Snapshot)
		docs  map[string]DocState
		drop  []string
		wants string
	}{
		{"unsorted", func(s *Snapshot) { s.Files[0], s.Files[1] = s.Files[1], s.Files[0] }, nil, nil, `"a.md": files not sorted`},
		{"duplicate", func(s *Snapshot) { s.Files[1].Path = "a.md" }, nil, nil, `"a.md": duplicate path`},
		{"empty path", func(s *Snapshot) { s.Files[0].Path = "" }, nil, nil, "empty path"},
		{"leading slash", func(s *Snapshot) { s.Files[0].Path = "/a.md" }, nil, nil, `"/a.md": path has an empty component`},
		{"dotdot", func(s *Snapshot) { s.Files[1].Path = "b/../c" }, nil, nil, `".." component`},
		{"nul", func(s *Snapshot) { s.Files[1].Path = "b\x00" }, nil, nil, "NUL"},
		{"zero blob", func(s *Snapshot) { s.Files[1].Blob = BlobID{} }, nil, nil, `"b/c.canvas": no blob`},
		{"missing blob", func(s *Snapshot) { s.Files[1].Blob = missing }, nil, nil, `"b/c.canvas": blob ` + missing.String() + " is not stored"},
		{"size mismatch", func(s *Snapshot) { s.Files[0].Size = 4 }, nil, nil, `"a.md": size 4, but blob`},
		{"bad kind", func(s *Snapshot) { s.Files[0].Kind = "folder" }, nil, nil, `unknown kind "folder"`},
		{"no doc id", func(s *Snapshot) { s.Files[0].DocID = "" }, nil, nil, `"a.md": no doc id`},
		{"zero time", func(s *Snapshot) { s.Time = time.Time{} }, nil, nil, "time is not set"},
		{"bad change kind", func(s *Snapshot) { s.Changes[0].Kind = 0 }, nil, nil, "invalid kind"},
		{"rename without old path", func(s *Snapshot) { s.Changes[0].Kind = ChangeRenamed }, nil, nil, "OldPath"},
		{"old path on add", func(s *Snapshot) { s.Changes[0].OldPath = "x" }, nil, nil, "OldPath"},
		{"empty change path", func(s *Snapshot) { s.Changes[0].Path = "" }, nil, nil, "empty path"},
		{"empty user", func(s *Snapshot) { s.Users = []string{""} }, nil, nil, "user 0"},
		{"bad folder", func(s *Snapshot) { s.Folder.Folder = "x" }, nil, nil, "must be UUIDs"},
		{"set and drop", nil, map[string]DocState{"d1": {}}, []string{"d1"}, `"d1" is both set and dropped`},
		{"empty doc id", nil, map[string]DocState{"": {}}, nil, "empty doc id"},
	} {
		snap := good()
		if tc.mod != nil {
			tc.mod(snap)
		}
		_, err := s.AddSnapshot(snap, tc.docs, tc.drop)
		if err == nil || !strings.Contains(err.Error(), tc.wants) {
			t.Errorf("%s: error %v, want it to contain %q", tc.name, err, tc.wants)
		}
	}
	if _, err := s.AddSnapshot(nil, nil, nil); err == nil {
		t.Error("nil snapshot accepted")
	}
	// Nothing was recorded, and a valid snapshot gets seq 1.
	if seq, err := s.AddSnapshot(good(), nil, nil); err != nil || seq != 1 {
		t.Fatalf("good snapshot: %d %v", seq, err)
	}
}

func TestDocStates(t *testing.T) {
	s := openMem(t)
	r := rand.New(rand.NewPCG(4, 4))
	f, g := testFolder(r), testFolder(r)
	u := uuidFrom(r)
	a := DocState{Hash: sha256.Sum256([]byte("a")), Blob: BlobIDOf([]byte("a")), Path: "a.md"}
	b := DocState{Hash: sha256.Sum256([]byte("b")), Blob: BlobIDOf([]byte("b")), Path: "dir/b.md"}
	if err := s.PutDocStates(f, map[string]DocState{u: a, "plain-id": b}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.PutDocStates(g, map[string]DocState{u: b}, nil); err != nil {
		t.Fatal(err)
	}
	got, _ := s.DocStates(f)
	if !reflect.DeepEqual(got, map[string]DocState{u: a, "plain-id": b}) {
		t.Fatalf("states: %v", got)
	}
	if err := s.PutDocStates(f, map[string]DocState{u: b}, []string{"plain-id", "never-there"}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.DocStates(f)
	if !reflect.DeepEqual(got, map[string]DocState{u: b}) {
		t.Fatalf("states after replace and drop: %v", got)
	}
	got, _ = s.DocStates(g)
	if !reflect.DeepEqual(got, map[string]DocState{u: b}) {
		t.Fatalf("other folder: %v", got)
	}
	empty, err := s.DocStates(testFolder(r))
	if err != nil || empty == nil || len(empty) != 0 {
		t.Fatalf("unknown folder: %v %v", empty, err)
	}
}

// A huge initial import: values over Badger's limit are split into parts,
// and doc states that do not fit in one transaction are written ahead.
func TestHugeSnapshot(t *testing.T) {
	for _, mode := range []string{"memory", "disk"} {
		t.Run(mode, func(t *testing.T) {
			var s *Store
			dir := t.TempDir()
			if mode == "memory" {
				s = openMem(t)
			} else {
				s = openDisk(t, dir, Options{})
			}
			r := rand.New(rand.NewPCG(6, 6))
			f := testFolder(r)
			var files []File
			docs := map[string]DocState{}
			for i := 0; i < 8000; i++ {
				data := fmt.Appendf(nil, "content of file %d", i%10)
				id, err := s.PutBlob(data, BlobID{})
				if err != nil {
					t.Fatal(err)
				}
				doc := uuidFrom(r)
				p := fmt.Sprintf("dir-%d/file-%05d.md", i%13, i)
				files = append(files, File{Path: p, Blob: id, Size: int64(len(data)), DocID: doc, Kind: "markdown"})
				docs[doc] = DocState{Blob: id, Path: p}
			}
			sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
			snap := &Snapshot{Folder: f, Time: time.Now(), Files: files}
			if _, err := s.AddSnapshot(snap, docs, nil); err != nil {
				t.Fatal(err)
			}
			// Force a checkpoint of the whole tree too.
			s.ckptMaxGap = 1
			files[0].Size, files[0].Blob = 1, must(s.PutBlob([]byte("x"), files[0].Blob))
			if _, err := s.AddSnapshot(&Snapshot{Folder: f, Time: time.Now(), Files: files}, nil, nil); err != nil {
				t.Fatal(err)
			}
			if mode == "memory" && countKeys(t, s, []byte{prefixPart}) == 0 {
				t.Fatal("no value was split into parts")
			}
			if mode == "disk" {
				s.Close()
				s = openDisk(t, dir, Options{})
				defer s.Close()
			}
			for seq := uint64(1); seq <= 2; seq++ {
				got, err := s.Snapshot(f, seq)
				if err != nil || len(got.Files) != len(files) {
					t.Fatalf("snapshot %d: %v", seq, err)
				}
			}
			got, _ := s.DocStates(f)
			if len(got) != len(docs) {
				t.Fatalf("%d doc states, want %d", len(got), len(docs))
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestSecondOpenFails(t *testing.T) {
	dir := t.TempDir()
	s := openDisk(t, dir, Options{})
	defer s.Close()
	_, err := Open(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "is relay-git-sync serve running?") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second Open: %v", err)
	}
}

func TestConcurrentFolders(t *testing.T) {
	dir := t.TempDir()
	s := openDisk(t, dir, Options{SyncWrites: true})
	const writers, perWriter = 6, 25
	r := rand.New(rand.NewPCG(8, 8))
	folders := make([]FolderID, writers)
	for i := range folders {
		folders[i] = testFolder(r)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			f := folders[w]
			prev := BlobID{}
			doc := textOf(rand.New(rand.NewPCG(uint64(w), 0)), 2000)
			for i := 0; i < perWriter; i++ {
				doc = append(doc, fmt.Sprintf(" edit %d", i)...)
				id, err := s.PutBlob(doc, prev)
				if err != nil {
					errs <- err
					return
				}
				prev = id
				files := []File{{Path: "doc.md", Blob: id, Size: int64(len(doc)), DocID: "d", Kind: "markdown"}}
				seq, err := s.AddSnapshot(&Snapshot{Folder: f, Time: time.Now(), Files: files}, map[string]DocState{"d": {Blob: id}}, nil)
				if err != nil {
					errs <- err
					return
				}
				if seq != uint64(i+1) {
					errs <- fmt.Errorf("folder %d: seq %d, want %d", w, seq, i+1)
					return
				}
				if _, err := s.Latest(f); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	// Readers run alongside.
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				for _, f := range folders {
					if _, err := s.Snapshots(f, 0); err != nil {
						errs <- err
						return
					}
					if _, err := s.Snapshot(f, 1); err != nil && !errors.Is(err, ErrNotFound) {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDisk(t, dir, Options{})
	defer s.Close()
	for _, f := range folders {
		infos, err := s.Snapshots(f, 0)
		if err != nil || len(infos) != perWriter {
			t.Fatalf("%s: %d snapshots, %v", f, len(infos), err)
		}
	}
}

func TestConcurrentSameFolder(t *testing.T) {
	s := openMem(t)
	f := testFolder(rand.New(rand.NewPCG(10, 10)))
	id, _ := s.PutBlob([]byte("same"), BlobID{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[uint64]bool{}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				files := []File{{Path: fmt.Sprintf("w%d.md", w), Blob: id, Size: 4, DocID: "d", Kind: "markdown"}}
				seq, err := s.AddSnapshot(&Snapshot{Folder: f, Time: time.Now(), Files: files}, nil, nil)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[seq] {
					t.Errorf("seq %d assigned twice", seq)
				}
				seen[seq] = true
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	for seq := uint64(1); seq <= 80; seq++ {
		if !seen[seq] {
			t.Fatalf("seq %d missing", seq)
		}
		if _, err := s.Snapshot(f, seq); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOriginValidation(t *testing.T) {
	s := openMem(t)
	f := testFolder(rand.New(rand.NewPCG(3, 3)))
	at := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, o := range []Origin{
		{Restored: 1}, // no snapshot 1 before snapshot 1
		{Pushed: &Pushed{Pack: BlobIDOf([]byte("x"))}},                         // no commit id
		{Pushed: &Pushed{Commit: [20]byte{1}, Pack: BlobIDOf([]byte("pack"))}}, // pack not stored
	} {
		if _, err := s.AddSnapshot(&Snapshot{Folder: f, Time: at, Origin: o}, nil, nil); err == nil {
			t.Fatalf("origin %+v taken", o)
		}
	}
	if _, err := s.AddSnapshot(&Snapshot{Folder: f, Time: at}, nil, nil); err != nil {
		t.Fatal(err)
	}
	pack, _ := s.PutBlob([]byte("pack"), BlobID{})
	o := Origin{Restored: 1, Pushed: &Pushed{Commit: [20]byte{1}, Parent: [20]byte{2}, Pack: pack}}
	if seq, err := s.AddSnapshot(&Snapshot{Folder: f, Time: at, Origin: o}, nil, nil); err != nil || seq != 2 {
		t.Fatalf("%d %v", seq, err)
	}
	var found []Finding
	if _, err := s.Check(context.Background(), CheckOptions{}, func(f Finding) { found = append(found, f) }); err != nil || len(found) != 0 {
		t.Fatalf("check: %+v %v", found, err)
	}
}
