package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// fillForBackup writes something of every kind of record into s: folders
// with snapshots (deltas and checkpoints), doc states, small, delta and
// big (split into parts) blobs, queued and acknowledged events, seen event
// ids, push states with owned paths, and the history config.
func fillForBackup(t *testing.T, s *Store, r *rand.Rand) {
	t.Helper()
	at := time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC)
	for fi := range 2 {
		f := testFolder(r)
		var prev BlobID
		var files []File
		for i := range 40 {
			data := textOf(r, 200+r.IntN(3000))
			id, err := s.PutBlob(data, prev)
			if err != nil {
				t.Fatal(err)
			}
			prev = id
			path := fmt.Sprintf("dir%d/note %d.md", i%3, i%7)
			files = slices.DeleteFunc(files, func(f File) bool { return f.Path == path })
			files = append(files, File{Path: path, Blob: id, Size: int64(len(data)), DocID: fmt.Sprintf("doc-%d", i%7), Kind: "markdown"})
			slices.SortFunc(files, func(a, b File) int { return cmpString(a.Path, b.Path) })
			docs := map[string]DocState{fmt.Sprintf("doc-%d", i%7): {Blob: id, Path: path, Hash: [32]byte{byte(i)}}}
			if _, err := s.AddSnapshot(&Snapshot{Folder: f, Time: at.Add(time.Duration(i) * time.Minute), Users: []string{"u1"},
				Files: slices.Clone(files)}, docs, nil); err != nil {
				t.Fatal(err)
			}
		}
		ps := &PushState{URL: "git@example.com:x.git", Branch: "main", Seq: 17, PushedAt: at, Linear: true}
		if err := s.SetPushState(f, fmt.Sprintf("conn%d", fi), ps, []string{"a.md", "b.md"}); err != nil {
			t.Fatal(err)
		}
	}
	// A big incompressible blob: stored in parts, in Badger's value log.
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	if _, err := s.PutBlob(big, BlobID{}); err != nil {
		t.Fatal(err)
	}
	var keys []uint64
	for i := range 10 {
		ev, _, err := s.Enqueue(QueuedEvent{ID: fmt.Sprintf("ev-%d", i), Relay: "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
			Doc: "d", Time: at, Received: at})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, ev.Key)
	}
	if err := s.AckEvents(keys[:4]); err != nil {
		t.Fatal(err)
	}
	if err := s.SetHistoryConfig([]byte(`{"author":{"name":"A"}}`)); err != nil {
		t.Fatal(err)
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// rawRecords returns every live key and value of s's database, but the
// queue sequence lease (Open renews it).
func rawRecords(t *testing.T, s *Store) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			if bytes.Equal(k, []byte{prefixQueueSeq}) {
				continue
			}
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out[string(k)] = v
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// contents reads s through its API: every folder's every snapshot, every
// blob they name, doc states, pending events, push states, history config.
type contents struct {
	Folders   []FolderID
	Snapshots map[FolderID][]*Snapshot
	Blobs     map[BlobID][]byte
	Docs      map[FolderID]map[string]DocState
	Pending   []QueuedEvent
	Pushes    []ConnectorPush
	Owned     map[string][]string
	History   []byte
}

func readContents(t *testing.T, s *Store) contents {
	t.Helper()
	c := contents{Snapshots: map[FolderID][]*Snapshot{}, Blobs: map[BlobID][]byte{}, Docs: map[FolderID]map[string]DocState{}, Owned: map[string][]string{}}
	var err error
	if c.Folders, err = s.Folders(); err != nil {
		t.Fatal(err)
	}
	for _, f := range c.Folders {
		if err := s.Walk(f, 0, func(snap *Snapshot) error {
			c.Snapshots[f] = append(c.Snapshots[f], snap)
			for _, file := range snap.Files {
				b, err := s.Blob(file.Blob)
				if err != nil {
					return err
				}
				c.Blobs[file.Blob] = b
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if c.Docs[f], err = s.DocStates(f); err != nil {
			t.Fatal(err)
		}
	}
	if c.Pending, err = s.PendingEvents(); err != nil {
		t.Fatal(err)
	}
	if c.Pushes, err = s.PushStates(); err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Pushes {
		if c.Owned[p.Folder.String()+" "+p.Conn], err = s.PushOwned(p.Folder, p.Conn); err != nil {
			t.Fatal(err)
		}
	}
	if c.History, err = s.HistoryConfig(); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 1))
	s := openDisk(t, filepath.Join(t.TempDir(), "db"), Options{})
	defer s.Close()
	fillForBackup(t, s, r)

	var buf bytes.Buffer
	if err := s.Backup(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	if err := VerifyBackup(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatalf("VerifyBackup of a fresh backup: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "restored", "db")
	n, err := Restore(dir, bytes.NewReader(buf.Bytes()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Errorf("Restore read %d bytes of %d", n, buf.Len())
	}
	if _, err := os.Stat(dir + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s.tmp left behind: %v", dir, err)
	}
	got := openDisk(t, dir, Options{})
	defer got.Close()

	want := readContents(t, s)
	have := readContents(t, got)
	if len(want.Folders) != 2 || len(want.Pending) != 6 || len(want.Pushes) != 2 {
		t.Fatalf("test store incomplete: %d folders, %d pending, %d pushes", len(want.Folders), len(want.Pending), len(want.Pushes))
	}
	if !reflect.DeepEqual(have, want) {
		t.Errorf("restored store reads differently:\n got %d folders, %d pending, %d pushes, history %q\nwant %d folders, %d pending, %d pushes, history %q",
			len(have.Folders), len(have.Pending), len(have.Pushes), have.History, len(want.Folders), len(want.Pending), len(want.Pushes), want.History)
	}
	// Byte for byte, every record (big blobs' parts, seen event ids too).
	wantRaw, haveRaw := rawRecords(t, s), rawRecords(t, got)
	if len(wantRaw) != len(haveRaw) {
		t.Errorf("%d records restored, want %d", len(haveRaw), len(wantRaw))
	}
	for k, v := range wantRaw {
		if !bytes.Equal(haveRaw[k], v) {
			t.Errorf("record %x differs after restore", k)
		}
	}
	// New events get keys after every restored one.
	ev, _, err := got.Enqueue(QueuedEvent{ID: "after-restore", Relay: "6ba7b810-9dad-11d1-80b4-00c04fd430c8", Doc: "d", Time: time.Now(), Received: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if last := want.Pending[len(want.Pending)-1].Key; ev.Key <= last {
		t.Errorf("event enqueued after restore got key %d, not after the restored %d", ev.Key, last)
	}
	// A seen event id stays seen.
	if _, dup, err := got.Enqueue(QueuedEvent{ID: "ev-1", Relay: "6ba7b810-9dad-11d1-80b4-00c04fd430c8", Doc: "d", Time: time.Now(), Received: time.Now()}); err != nil || !dup {
		t.Errorf("event id seen before the backup is not a duplicate after restore: %v %v", dup, err)
	}
}

// gateWriter blocks the first write of backup stream data (after the
// container header) until release is closed.
type gateWriter struct {
	buf     bytes.Buffer
	reached chan struct{}
	release chan struct{}
}

func (g *gateWriter) Write(p []byte) (int, error) {
	if g.buf.Len() >= len(backupMagic)+1 && g.reached != nil {
		close(g.reached)
		g.reached = nil
		<-g.release
	}
	return g.buf.Write(p)
}

// TestBackupPointInTime: what is committed while a backup streams is not
// in it; everything committed before it is.
func TestBackupPointInTime(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 2))
	s := openMem(t)
	fillForBackup(t, s, r)
	before := readContents(t, s)

	g := &gateWriter{reached: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- s.Backup(context.Background(), g) }()
	<-g.reached
	late := testFolder(r)
	if err := s.AddFolder(late); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Enqueue(QueuedEvent{ID: "late", Relay: late.Relay, Doc: "d", Time: time.Now(), Received: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.AckEvents([]uint64{before.Pending[0].Key}); err != nil {
		t.Fatal(err)
	}
	close(g.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "db")
	if _, err := Restore(dir, &g.buf, Options{}); err != nil {
		t.Fatal(err)
	}
	got := openDisk(t, dir, Options{})
	defer got.Close()
	if have := readContents(t, got); !reflect.DeepEqual(have, before) {
		t.Errorf("restored store is not the store when the backup began: %d folders (want %d), %d pending (want %d)",
			len(have.Folders), len(before.Folders), len(have.Pending), len(before.Pending))
	}
}

func TestRestoreRefuses(t *testing.T) {
	s := openMem(t)
	fillForBackup(t, s, rand.New(rand.NewPCG(12, 3)))
	var buf bytes.Buffer
	if err := s.Backup(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()

	t.Run("non-empty store", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "db")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "MANIFEST"), []byte("mine"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Restore(dir, bytes.NewReader(good), Options{})
		if !errors.Is(err, ErrStoreNotEmpty) {
			t.Fatalf("restore into a non-empty store: %v", err)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "MANIFEST")); string(b) != "mine" {
			t.Error("the existing store was touched")
		}
		if _, err := os.Stat(dir + ".tmp"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s.tmp made: %v", dir, err)
		}
	})

	t.Run("empty directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "db")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := Restore(dir, bytes.NewReader(good), Options{}); err != nil {
			t.Fatalf("restore into an empty directory: %v", err)
		}
	})

	// Cut at the header, inside a frame, at a frame boundary (Badger's own
	// stream alone would load that as a smaller store), before and inside
	// the checksum.
	firstFrame := len(backupMagic) + 1 + 4 + int(uint32(good[len(backupMagic)+1])<<24|uint32(good[len(backupMagic)+2])<<16|uint32(good[len(backupMagic)+3])<<8|uint32(good[len(backupMagic)+4]))
	flipped := slices.Clone(good)
	flipped[len(good)/2] ^= 0x40
	bad := map[string][]byte{
		"empty":               nil,
		"header only":         good[:len(backupMagic)+1],
		"inside first frame":  good[:len(backupMagic)+1+4+100],
		"frame boundary":      good[:firstFrame],
		"without end":         good[:len(good)-36],
		"inside checksum":     good[:len(good)-5],
		"one byte flipped":    flipped,
		"trailing data":       append(slices.Clone(good), 0),
		"not a backup":        []byte("PK\x03\x04 this is a zip file, not a backup, and it is long enough"),
		"badger stream alone": good[len(backupMagic)+1+4 : firstFrame],
	}
	if firstFrame >= len(good)-36 {
		t.Fatalf("the test backup has one frame (%d bytes): make it bigger", len(good))
	}
	for name, data := range bad {
		t.Run(name, func(t *testing.T) {
			if err := VerifyBackup(bytes.NewReader(data)); !errors.Is(err, ErrBackupDamaged) {
				t.Errorf("VerifyBackup: %v, want ErrBackupDamaged", err)
			}
			dir := filepath.Join(t.TempDir(), "db")
			_, err := Restore(dir, bytes.NewReader(data), Options{})
			if err == nil {
				t.Fatal("restored a damaged backup")
			}
			if name != "one byte flipped" && !errors.Is(err, ErrBackupDamaged) {
				t.Errorf("error %v, want ErrBackupDamaged", err)
			}
			for _, p := range []string{dir, dir + ".tmp"} {
				if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s left behind after a failed restore: %v", p, err)
				}
			}
		})
	}
}

// A backup stopped by its context is not a backup.
func TestBackupCanceled(t *testing.T) {
	s := openMem(t)
	fillForBackup(t, s, rand.New(rand.NewPCG(12, 4)))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var buf bytes.Buffer
	if err := s.Backup(ctx, &buf); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled backup: %v", err)
	}
	if err := VerifyBackup(&buf); err == nil {
		t.Error("a canceled backup verifies")
	}
}
