package store

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeHistory fills a store in dir with n random snapshots of one folder
// (checkpoints every few snapshots) and closes it.
func writeHistory(t *testing.T, dir string, n int) *model {
	t.Helper()
	s := openDisk(t, dir, Options{})
	s.ckptMinGap, s.ckptMaxGap = 3, 7
	m := newModel(rand.New(rand.NewPCG(16, 2)), s)
	for range n {
		m.step(t)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return m
}

// dirState describes every file in dir: name, size, modification time and
// content hash.
func dirState(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = fmt.Sprintf("%d bytes, %v, %x", fi.Size(), fi.ModTime().UnixNano(), sha256.Sum256(b))
	}
	return out
}

// TestReadOnly: a read-only store reads what a read-write one wrote,
// leaves its directory as it was, shares it with other readers (never with
// a writer), and refuses writes with an error.
func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	m := writeHistory(t, dir, 40)
	before := dirState(t, dir)

	ro := openDisk(t, dir, Options{ReadOnly: true})
	other := openDisk(t, dir, Options{ReadOnly: true})
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Errorf("read-write Open beside readers: %v", err)
	}
	m.s = other
	m.verify(t)
	m.s = ro
	m.verify(t)
	if _, err := ro.PutBlob([]byte("new content"), BlobID{}); err == nil {
		t.Error("PutBlob on a read-only store succeeded")
	}
	if _, err := ro.AddSnapshot(&Snapshot{Folder: m.folder, Time: time.Now()}, nil, nil); err == nil {
		t.Error("AddSnapshot on a read-only store succeeded")
	}
	if _, _, err := ro.Enqueue(QueuedEvent{ID: "e", Relay: m.folder.Relay, Doc: m.folder.Folder, Time: time.Now()}); err == nil {
		t.Error("Enqueue on a read-only store succeeded")
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	after := dirState(t, dir)
	for name, b := range before {
		if a := after[name]; a != b {
			t.Errorf("%s changed: %s, was %s", name, a, b)
		}
	}
	for name, a := range after {
		if _, ok := before[name]; !ok {
			t.Errorf("%s appeared: %s", name, a)
		}
	}

	w := openDisk(t, dir, Options{})
	defer w.Close()
	if _, err := Open(dir, Options{ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Errorf("read-only Open beside a writer: %v", err)
	}
}

// TestReadOnlyEmpty: a read-only open of a directory without a store says
// so (and creates nothing).
func TestReadOnlyEmpty(t *testing.T) {
	dir := t.TempDir()
	if s, err := Open(dir, Options{ReadOnly: true}); err == nil {
		s.Close()
		t.Fatal("read-only Open of an empty directory succeeded")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("read-only Open created %d files", len(ents))
	}
}

// TestHeadAndWalkLoadNothing: Head and Walk of a folder not yet in memory
// read the head record and the snapshots walked, without rebuilding the
// folder's latest tree (a whole checkpoint gap of tree deltas).
func TestHeadAndWalkLoadNothing(t *testing.T) {
	dir := t.TempDir()
	m := writeHistory(t, dir, 30)
	s := openDisk(t, dir, Options{ReadOnly: true})
	defer s.Close()
	n := len(m.history)
	last := m.history[n-1]
	if seq, tm, err := s.Head(m.folder); err != nil || seq != uint64(n) || !tm.Equal(last.Time) {
		t.Fatalf("Head = %d %v %v, want %d %v", seq, tm, err, n, last.Time)
	}
	next := uint64(20)
	if err := s.Walk(m.folder, next-1, func(got *Snapshot) error {
		sameSnapshot(t, fmt.Sprintf("walk %d", next), got, m.history[next-1])
		next++
		return nil
	}); err != nil || next != uint64(n+1) {
		t.Fatalf("Walk: %v (stopped at %d)", err, next)
	}
	if k := len(s.folders); k != 0 {
		t.Errorf("Head and Walk loaded %d folders", k)
	}
	if seq, tm, err := s.Head(testFolder(rand.New(rand.NewPCG(1, 1)))); err != nil || seq != 0 || !tm.IsZero() {
		t.Errorf("Head of an unknown folder = %d %v %v", seq, tm, err)
	}
	// Loaded, Head answers from memory, the same.
	if _, err := s.Latest(m.folder); err != nil {
		t.Fatal(err)
	}
	if seq, tm, err := s.Head(m.folder); err != nil || seq != uint64(n) || !tm.Equal(last.Time) {
		t.Fatalf("Head (loaded) = %d %v %v, want %d %v", seq, tm, err, n, last.Time)
	}
}
