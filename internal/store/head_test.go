package store

import (
	"testing"
	"time"
)

func TestHead(t *testing.T) {
	s, err := Open("", Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := FolderID{Relay: "6ba7b810-9dad-11d1-80b4-00c04fd430c8", Folder: "f47ac10b-58cc-4372-a567-0e02b2c3d479"}
	if seq, tm, err := s.Head(f); err != nil || seq != 0 || !tm.IsZero() {
		t.Fatalf("unknown folder: %d %v %v", seq, tm, err)
	}
	var last time.Time
	for i := range 3 {
		data := []byte{byte(i)}
		id, err := s.PutBlob(data, BlobID{})
		if err != nil {
			t.Fatal(err)
		}
		last = time.Date(2026, 1, 1, 0, i, 0, 123, time.UTC)
		snap := &Snapshot{Folder: f, Time: last,
			Changes: []Change{{Kind: ChangeModified, Path: "a.md", DocID: "d"}},
			Files:   []File{{Path: "a.md", Blob: id, Size: 1, DocID: "d", Kind: "markdown"}}}
		if i == 0 {
			snap.Changes[0].Kind = ChangeAdded
		}
		if _, err := s.AddSnapshot(snap, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	seq, tm, err := s.Head(f)
	if err != nil || seq != 3 || !tm.Equal(last) {
		t.Errorf("Head = %d %v %v, want 3 %v", seq, tm, err, last)
	}
}
