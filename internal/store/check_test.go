package store

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// checkFixture is a store on disk with something of every kind of record:
// three folders (one without snapshots), snapshots with checkpoints,
// delta-compressed blobs, a big blob in Badger's value log, doc states,
// queued events, push states with owned paths and the history config.
type checkFixture struct {
	dir        string
	a, b, c, d FolderID // d has a mass-deletion hold and a dropped snapshot
	headA      uint64
	big        []byte // content of blob bigID, added to folder b
	bigID      BlobID
	bigSeq     uint64
	ckptsA     []uint64 // checkpoints of folder a
	blobs      int      // blob records
	conn       string   // connector of folder a's push state
}

func makeCheckFixture(t *testing.T) *checkFixture {
	t.Helper()
	r := rand.New(rand.NewPCG(12, 34))
	fx := &checkFixture{dir: t.TempDir(), a: testFolder(r), b: testFolder(r), c: testFolder(r), d: testFolder(r), conn: "conn-a"}
	s := openDisk(t, fx.dir, Options{})
	s.ckptMaxGap = 5 // a checkpoint every 5 snapshots
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	fill := func(f FolderID, n int, docs int) {
		prev := make([]BlobID, docs)
		content := make([][]byte, docs)
		var files []File
		for i := range n {
			d := i % docs
			if content[d] == nil {
				content[d] = textOf(r, 3000)
			} else {
				content[d] = edit(r, content[d])
			}
			id, err := s.PutBlob(content[d], prev[d])
			if err != nil {
				t.Fatal(err)
			}
			prev[d] = id
			path := fmt.Sprintf("notes/doc %d.md", d)
			files = slices.DeleteFunc(files, func(f File) bool { return f.Path == path })
			files = append(files, File{Path: path, Blob: id, Size: int64(len(content[d])), DocID: fmt.Sprintf("doc-%d", d), Kind: "markdown"})
			slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
			states := map[string]DocState{fmt.Sprintf("doc-%d", d): {Blob: id, Path: path}}
			if _, err := s.AddSnapshot(&Snapshot{Folder: f, Time: at.Add(time.Duration(i) * time.Minute),
				Changes: []Change{{Kind: ChangeModified, Path: path, DocID: fmt.Sprintf("doc-%d", d)}},
				Files:   slices.Clone(files)}, states, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	fill(fx.a, 17, 3)
	fill(fx.b, 6, 2)
	if err := s.AddFolder(fx.c); err != nil {
		t.Fatal(err)
	}
	// Folder d loses 9 of its 12 files twice: the first is dropped, the
	// second held.
	s.hold = DefaultHoldPolicy
	var many []File
	for i := range 12 {
		data := fmt.Appendf(nil, "note %d of folder d\n", i)
		id, err := s.PutBlob(data, BlobID{})
		if err != nil {
			t.Fatal(err)
		}
		many = append(many, File{Path: fmt.Sprintf("n%02d.md", i), Blob: id, Size: int64(len(data)), DocID: fmt.Sprint("d", i), Kind: "markdown"})
	}
	for i, files := range [][]File{many, many[:3], many[:3]} {
		if _, err := s.AddSnapshot(&Snapshot{Folder: fx.d, Time: at.Add(time.Duration(i) * time.Minute), Files: files}, nil, nil); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if _, _, err := s.DropHold(fx.d); err != nil {
				t.Fatal(err)
			}
		}
	}
	if h, err := s.Held(fx.d); err != nil || h == nil || h.From != 3 {
		t.Fatalf("folder d: held %+v, %v; want a hold from snapshot 3", h, err)
	}
	// An incompressible blob over the value threshold: stored raw in the
	// value log, where a flipped bit goes unnoticed by Badger.
	fx.big = randBytes(r, 200<<10)
	var err error
	if fx.bigID, err = s.PutBlob(fx.big, BlobID{}); err != nil {
		t.Fatal(err)
	}
	latest, err := s.Latest(fx.b)
	if err != nil {
		t.Fatal(err)
	}
	files := append(latest.Files, File{Path: "z/big.bin", Blob: fx.bigID, Size: int64(len(fx.big)), DocID: "doc-big", Kind: "file"})
	if fx.bigSeq, err = s.AddSnapshot(&Snapshot{Folder: fx.b, Time: at, Files: files}, nil, nil); err != nil {
		t.Fatal(err)
	}
	fx.headA, _, _ = s.Head(fx.a)
	if err := s.SetPushState(fx.a, fx.conn, &PushState{URL: "git@example.com:a.git", Branch: "main", Seq: fx.headA, PushedAt: at}, []string{"notes/doc 0.md"}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, _, err := s.Enqueue(QueuedEvent{ID: fmt.Sprint("ev", i), Relay: fx.a.Relay, Doc: "doc-0", Time: at, Received: at}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetHistoryConfig([]byte(`{"author":{"name":"A"}}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.db.View(func(txn *badger.Txn) error {
		iterKeys(txn, []byte{prefixBlob}, func([]byte) { fx.blobs++ })
		return iterKeys(txn, folderPrefix(prefixCheckpoint, mustKey(t, fx.a)), func(k []byte) { fx.ckptsA = append(fx.ckptsA, seqOf(k)) })
	}); err != nil {
		t.Fatal(err)
	}
	if len(fx.ckptsA) < 2 {
		t.Fatalf("folder a has checkpoints %v, the fixture wants at least 2", fx.ckptsA)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return fx
}

func mustKey(t *testing.T, f FolderID) folderKey {
	t.Helper()
	fk, err := f.key()
	if err != nil {
		t.Fatal(err)
	}
	return fk
}

func iterKeys(txn *badger.Txn, prefix []byte, fn func(k []byte)) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		fn(it.Item().KeyCopy(nil))
	}
	return nil
}

// copyStore copies the fixture's store to a new directory.
func (fx *checkFixture) copyStore(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(fx.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(fx.dir, p)
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func runCheck(t *testing.T, s *Store, readData bool) ([]Finding, CheckStats) {
	t.Helper()
	var got []Finding
	stats, err := s.Check(context.Background(), CheckOptions{ReadData: readData}, func(f Finding) { got = append(got, f) })
	if err != nil {
		t.Fatal(err)
	}
	if stats.Problems != len(got) {
		t.Errorf("stats count %d problems, %d reported", stats.Problems, len(got))
	}
	return got, stats
}

func TestCheckClean(t *testing.T) {
	fx := makeCheckFixture(t)
	s := openDisk(t, fx.copyStore(t), Options{})
	defer s.Close()
	for _, readData := range []bool{false, true} {
		got, stats := runCheck(t, s, readData)
		for _, f := range got {
			t.Errorf("read data %v: clean store: %s", readData, f)
		}
		want := CheckStats{Blobs: fx.blobs, Folders: 4, Snapshots: 17 + 7 + 3, Checkpoints: stats.Checkpoints, DocStates: 3 + 2, Events: 3, PushStates: 2, Held: 1}
		if readData {
			want.BlobsRead = want.Blobs
			want.BytesRead = stats.BytesRead
			if stats.BytesRead < int64(len(fx.big)) {
				t.Errorf("read %d bytes, less than the big blob", stats.BytesRead)
			}
		}
		if stats != want || stats.Checkpoints < len(fx.ckptsA) {
			t.Errorf("read data %v: stats %+v, want %+v", readData, stats, want)
		}
	}
}

// firstUse returns the first snapshot of f whose tree has blob id, and the
// file's path.
func firstUse(t *testing.T, s *Store, f FolderID, id BlobID) (uint64, string) {
	t.Helper()
	var seq uint64
	var path string
	errFound := fmt.Errorf("found")
	err := s.Walk(f, 0, func(snap *Snapshot) error {
		for _, file := range snap.Files {
			if file.Blob == id {
				seq, path = snap.Seq, file.Path
				return errFound
			}
		}
		return nil
	})
	if err != errFound {
		t.Fatalf("blob %s is in no snapshot of %s (%v)", id, f, err)
	}
	return seq, path
}

// want is a finding a check must report: its non-zero fields must match,
// and the problem must contain problem.
type want struct {
	Finding
	problem string
}

func (w want) matches(f Finding) bool {
	eq := func(a, b any, zero any) bool { return a == zero || a == b }
	return f.Record == w.Record && eq(w.Folder, f.Folder, FolderID{}) && eq(w.Seq, f.Seq, uint64(0)) &&
		eq(w.Path, f.Path, "") && eq(w.Blob, f.Blob, BlobID{}) && eq(w.Doc, f.Doc, "") && eq(w.Conn, f.Conn, "") &&
		eq(w.Event, f.Event, uint64(0)) && strings.Contains(f.Problem, w.problem)
}

// expect fails unless got has a finding for each of wants, and nothing
// that none of them matches.
func expect(t *testing.T, got []Finding, wants ...want) {
	t.Helper()
	used := make([]bool, len(got))
	for _, w := range wants {
		found := false
		for i, f := range got {
			if w.matches(f) {
				found, used[i] = true, true
			}
		}
		if !found {
			t.Errorf("no finding like %s (problem containing %q)", w.Finding, w.problem)
		}
	}
	for i, f := range got {
		if !used[i] {
			t.Errorf("unexpected finding: %s", f)
		}
	}
}

// damage opens a copy of the fixture's store and lets fn change records.
func (fx *checkFixture) damage(t *testing.T, fn func(s *Store, txn *badger.Txn)) *Store {
	t.Helper()
	s := openDisk(t, fx.copyStore(t), Options{})
	t.Cleanup(func() { s.Close() })
	if err := s.db.Update(func(txn *badger.Txn) error { fn(s, txn); return nil }); err != nil {
		t.Fatal(err)
	}
	return s
}

func rawValue(t *testing.T, txn *badger.Txn, key []byte) []byte {
	t.Helper()
	v, err := getValue(txn, key)
	if err != nil {
		t.Fatalf("key %x: %v", key, err)
	}
	return v
}

func set(t *testing.T, txn *badger.Txn, key, v []byte) {
	t.Helper()
	if err := txn.Set(key, v); err != nil {
		t.Fatal(err)
	}
}

func del(t *testing.T, txn *badger.Txn, key []byte) {
	t.Helper()
	if err := txn.Delete(key); err != nil {
		t.Fatal(err)
	}
}

// deltaOf finds a blob of folder f's latest tree stored as a delta, and
// returns it with its base.
func deltaOf(t *testing.T, s *Store, f FolderID) (id, base BlobID) {
	t.Helper()
	latest, err := s.Latest(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range latest.Files {
		r, err := s.blobHeader(file.Blob)
		if err != nil {
			t.Fatal(err)
		}
		if r.format == blobDelta {
			return file.Blob, r.base
		}
	}
	t.Fatalf("no delta in the latest tree of %s", f)
	return
}

func TestCheckFindsDamage(t *testing.T) {
	fx := makeCheckFixture(t)
	fa := mustKey(t, fx.a)

	t.Run("missing delta base", func(t *testing.T) {
		var id, base BlobID
		s := fx.damage(t, func(s *Store, txn *badger.Txn) {
			id, base = deltaOf(t, s, fx.a)
			del(t, txn, blobKey(base))
		})
		seqBase, pathBase := firstUse(t, s, fx.a, base)
		seqID, pathID := firstUse(t, s, fx.a, id)
		got, _ := runCheck(t, s, false)
		expect(t, got,
			want{Finding{Record: "blob", Blob: id}, "delta base " + base.String()},
			want{Finding{Record: "snapshot", Folder: fx.a, Seq: seqBase, Path: pathBase, Blob: base}, "content is lost: blob not stored"},
			want{Finding{Record: "snapshot", Folder: fx.a, Seq: seqID, Path: pathID, Blob: id}, "content is damaged: blob delta base " + base.String()},
			// The doc state of the last version (the delta) names it.
			want{Finding{Record: "doc state", Folder: fx.a, Blob: id}, "its last version is damaged"},
		)
		for _, f := range got {
			if f.Folder != fx.a && f.Folder != (FolderID{}) {
				t.Errorf("finding outside the damaged folder: %s", f)
			}
		}
	})

	t.Run("blob content, read data", func(t *testing.T) {
		var id, base BlobID
		s := fx.damage(t, func(s *Store, txn *badger.Txn) {
			id, base = deltaOf(t, s, fx.a)
			v := bytes.Clone(rawValue(t, txn, blobKey(base)))
			v[len(v)-1] ^= 0x40
			set(t, txn, blobKey(base), v)
		})
		// Records and chains are intact: only reading the data tells.
		got, _ := runCheck(t, s, false)
		expect(t, got)
		seq, path := firstUse(t, s, fx.a, base)
		got, _ = runCheck(t, s, true)
		expect(t, got,
			want{Finding{Record: "blob", Blob: base}, ""},
			want{Finding{Record: "snapshot", Folder: fx.a, Seq: seq, Path: path, Blob: base}, "content is damaged"},
			want{Finding{Record: "blob", Blob: id}, "delta base " + base.String()},
			want{Finding{Record: "snapshot", Folder: fx.a, Blob: id}, "content is damaged: blob delta base " + base.String()},
			want{Finding{Record: "doc state", Folder: fx.a, Blob: id}, "its last version is damaged"},
		)
	})

	t.Run("snapshot record names another blob", func(t *testing.T) {
		// The file is not changed again before the next checkpoint (each
		// snapshot changes one of three documents in turn).
		seq := fx.ckptsA[1] - 1
		var file File
		s := fx.damage(t, func(s *Store, txn *badger.Txn) {
			key := seqKey(prefixSnapshot, fa, seq)
			v := bytes.Clone(rawValue(t, txn, key))
			rec, err := s.decodeSnapRecord(v)
			if err != nil || len(rec.Upserted) != 1 {
				t.Fatalf("snapshot %d: %v, %d files", seq, err, len(rec.Upserted))
			}
			file = rec.Upserted[0]
			i := bytes.Index(v, file.Blob[:])
			v[i+7] ^= 1
			file.Blob[7] ^= 1
			set(t, txn, key, v)
		})
		got, _ := runCheck(t, s, false)
		expect(t, got,
			want{Finding{Record: "snapshot", Folder: fx.a, Seq: seq, Path: file.Path, Blob: file.Blob}, "content is lost: blob not stored"},
			// The next checkpoint has the right blob.
			want{Finding{Record: "checkpoint", Folder: fx.a, Seq: fx.ckptsA[1]}, "differs from the tree rebuilt"},
		)
	})

	t.Run("snapshot record truncated", func(t *testing.T) {
		seq := fx.ckptsA[0] + 2
		s := fx.damage(t, func(s *Store, txn *badger.Txn) {
			key := seqKey(prefixSnapshot, fa, seq)
			v := rawValue(t, txn, key)
			set(t, txn, key, bytes.Clone(v[:len(v)-3]))
		})
		got, _ := runCheck(t, s, false)
		expect(t, got,
			want{Finding{Record: "snapshot", Folder: fx.a, Seq: seq}, "snapshot record damaged"},
			want{Finding{Record: "snapshot", Folder: fx.a, Seq: seq}, fmt.Sprintf("snapshots %d to %d cannot be rebuilt: snapshot %d is damaged", seq, fx.ckptsA[1]-1, seq)},
		)
		if _, err := s.Snapshot(fx.a, seq+1); err == nil {
			t.Errorf("snapshot %d reads, though check says it cannot be rebuilt", seq+1)
		}
		if _, err := s.Snapshot(fx.a, fx.ckptsA[1]); err != nil {
			t.Errorf("snapshot %d: %v, though check says it can be read", fx.ckptsA[1], err)
		}
	})

	t.Run("snapshot missing, latest lost", func(t *testing.T) {
		last := fx.ckptsA[len(fx.ckptsA)-1]
		if last >= fx.headA-1 {
			t.Fatalf("the fixture wants snapshots after the last checkpoint %d (latest %d)", last, fx.headA)
		}
		s := fx.damage(t, func(s *Store, txn *badger.Txn) {
			del(t, txn, seqKey(prefixSnapshot, fa, last+1))
		})
		got, _ := runCheck(t, s, false)
		expect(t, got,
			want{Finding{Record: "snapshot", Folder: fx.a, Seq: last + 1}, fmt.Sprintf("snapshot %d is missing", last+1)},
			want{Finding{Record: "snapshot", Folder: fx.a, Seq: last + 1}, fmt.Sprintf("snapshots %d to %d cannot be rebuilt", last+1, fx.headA)},
		)
		if _, err := s.Latest(fx.a); err == nil {
			t.Error("the folder loads, though check says it cannot")
		}
	})

	t.Run("checkpoint damaged", func(t *testing.T) {
		cp := fx.ckptsA[0]
		s := fx.damage(t, func(s *Store, txn *badger.Txn) {
			key := seqKey(prefixCheckpoint, fa, cp)
			v := bytes.Clone(rawValue(t, txn, key))
			v[len(v)/2] ^= 0xff
			set(t, txn, key, v[:len(v)-1])
		})
		got, _ := runCheck(t, s, false)
		expect(t, got,
			want{Finding{Record: "checkpoint", Folder: fx.a, Seq: cp}, fmt.Sprintf("checkpoint damaged (snapshots %d to %d cannot be read)", cp, fx.ckptsA[1]-1)},
		)
		if _, err := s.Snapshot(fx.a, cp); err == nil {
			t.Errorf("snapshot %d reads, though check says it cannot", cp)
		}
	})

	t.Run("folder record missing", func(t *testing.T) {
		s := fx.damage(t, func(s *Store, txn *badger.Txn) {
			del(t, txn, folderRecKey(mustKey(t, fx.b)))
		})
		got, _ := runCheck(t, s, false)
		expect(t, got, want{Finding{Record: "folder", Folder: fx.b}, "no folder record"})
	})

	t.Run("held records", func(t *testing.T) {
		s := fx.damage(t, func(s *Store, txn *badger.Txn) {
			set(t, txn, heldKey(fa), encodeHeld(&heldRec{hold: &Hold{From: fx.headA + 2, Base: fx.headA}, dropped: []SeqRange{{From: 4, Through: 3}}}))
			set(t, txn, heldKey(mustKey(t, fx.d)), []byte{heldV1, 9})
		})
		got, _ := runCheck(t, s, false)
		expect(t, got,
			want{Finding{Record: "held", Folder: fx.a, Seq: fx.headA + 2}, fmt.Sprintf("but the folder's latest snapshot is %d", fx.headA)},
			want{Finding{Record: "held", Folder: fx.a, Seq: 4}, "dropped snapshots 4 to 3 are not a range"},
			want{Finding{Record: "held", Folder: fx.d}, "held record damaged"},
		)
	})

	t.Run("queue, doc state, push state, history config", func(t *testing.T) {
		var ev uint64
		s := fx.damage(t, func(s *Store, txn *badger.Txn) {
			evs, err := s.PendingEvents()
			if err != nil {
				t.Fatal(err)
			}
			ev = evs[1].Key
			set(t, txn, queueKey(ev), []byte{queueV1, 200})
			set(t, txn, docStateKey(fa, "doc-1"), []byte{docV1, 1, 2})
			ps := encodePushState(&PushState{URL: "x", Seq: fx.headA + 3})
			set(t, txn, pushKey(fa, fx.conn, pushKindState), ps)
			set(t, txn, pushKey(mustKey(t, fx.b), "gone", pushKindOwned), []byte{ownedV1, 7})
			set(t, txn, historyConfigKey(), []byte{settingV1, '{'})
		})
		got, _ := runCheck(t, s, false)
		expect(t, got,
			want{Finding{Record: "queued event", Event: ev}, "queued webhook event damaged"},
			want{Finding{Record: "doc state", Folder: fx.a, Doc: "doc-1"}, "doc state damaged"},
			want{Finding{Record: "push state", Folder: fx.a, Conn: fx.conn}, fmt.Sprintf("records snapshot %d as pushed, but the folder's latest snapshot is %d", fx.headA+3, fx.headA)},
			want{Finding{Record: "push state", Folder: fx.b, Conn: "gone"}, "owned paths damaged"},
			want{Finding{Record: "history config"}, "not JSON"},
		)
	})

	t.Run("bit flip in the value log", func(t *testing.T) {
		dir := fx.copyStore(t)
		// The big blob is stored raw: find its bytes in a .vlog file and
		// flip one, as a disk would.
		vlogs, _ := filepath.Glob(filepath.Join(dir, "*.vlog"))
		flipped := false
		for _, p := range vlogs {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if i := bytes.Index(b, fx.big[1000:1064]); i >= 0 {
				b[i+10] ^= 0x08
				if err := os.WriteFile(p, b, 0o600); err != nil {
					t.Fatal(err)
				}
				flipped = true
			}
		}
		if !flipped {
			t.Fatalf("the big blob is in none of %v", vlogs)
		}
		// Badger finds the entry's checksum wrong when it replays the end
		// of its log at open, and drops the value.
		s := openDisk(t, dir, Options{})
		defer s.Close()
		got, _ := runCheck(t, s, false)
		expect(t, got,
			want{Finding{Record: "blob", Blob: fx.bigID}, "record damaged: the record is empty (its value was lost)"},
			want{Finding{Record: "snapshot", Folder: fx.b, Seq: fx.bigSeq, Path: "z/big.bin", Blob: fx.bigID}, "content is damaged: blob record damaged"},
		)
	})

	t.Run("raw blob content", func(t *testing.T) {
		s := fx.damage(t, func(s *Store, txn *badger.Txn) {
			v := bytes.Clone(rawValue(t, txn, blobKey(fx.bigID)))
			v[len(v)/2] ^= 0x08
			set(t, txn, blobKey(fx.bigID), v)
		})
		got, _ := runCheck(t, s, false)
		expect(t, got)
		got, _ = runCheck(t, s, true)
		expect(t, got,
			want{Finding{Record: "blob", Blob: fx.bigID}, "content does not match its id"},
			want{Finding{Record: "snapshot", Folder: fx.b, Seq: fx.bigSeq, Path: "z/big.bin", Blob: fx.bigID}, "content is damaged: blob content does not match its id"},
		)
	})
}

func TestFindingString(t *testing.T) {
	f := Finding{Record: "snapshot", Folder: FolderID{Relay: "r", Folder: "f"}, Seq: 3, Path: "a.md", Blob: BlobID{1}, Problem: "gone"}
	want := `folder r/f, snapshot 3, file "a.md", blob 0100000000000000000000000000000000000000: gone`
	if got := f.String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := (Finding{Record: "history config", Problem: "x"}).String(); got != "history config: x" {
		t.Errorf("got %s", got)
	}
}
