package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

var heldFolder = FolderID{Relay: "6ba7b810-9dad-11d1-80b4-00c04fd430c8", Folder: "f47ac10b-58cc-4372-a567-0e02b2c3d479"}

// heldFiles is a tree of n files, note-0.md … (doc ids doc-0 …).
func heldFiles(t *testing.T, s *Store, n int) []File {
	t.Helper()
	var out []File
	for i := 0; i < n; i++ {
		data := []byte(fmt.Sprintf("note %d\n", i))
		id, err := s.PutBlob(data, BlobID{})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, File{Path: fmt.Sprintf("note-%02d.md", i), Blob: id, Size: int64(len(data)), DocID: fmt.Sprintf("doc-%d", i), Kind: "markdown"})
	}
	return out
}

func addTree(t *testing.T, s *Store, files []File) uint64 {
	t.Helper()
	seq, err := s.AddSnapshot(&Snapshot{Folder: heldFolder, Time: time.Unix(1700000000, 0), Files: files}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func TestParseHoldPolicy(t *testing.T) {
	for in, want := range map[string]HoldPolicy{
		"50%": DefaultHoldPolicy, "0.5": DefaultHoldPolicy, " 50% ": DefaultHoldPolicy,
		"25%": {Fraction: 0.25, MinFiles: 10}, "0": {}, "0%": {}, "off": {},
	} {
		got, err := ParseHoldPolicy(in)
		if err != nil || got != want {
			t.Errorf("ParseHoldPolicy(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "half", "100%", "1", "-0.1", "150%", "NaN", "50%%"} {
		if p, err := ParseHoldPolicy(in); err == nil {
			t.Errorf("ParseHoldPolicy(%q) = %+v, want an error", in, p)
		}
	}
	if s := DefaultHoldPolicy.String(); s != "50%" {
		t.Errorf("String = %q", s)
	}
	if s := (HoldPolicy{}).String(); s != "0" {
		t.Errorf("String of off = %q", s)
	}
}

// TestHoldThreshold covers the edges of the default policy: more than half
// of at least 10 files.
func TestHoldThreshold(t *testing.T) {
	for _, c := range []struct {
		policy         HoldPolicy
		files, deleted int
		held           bool
	}{
		{DefaultHoldPolicy, 9, 9, false},  // too small a folder
		{DefaultHoldPolicy, 10, 5, false}, // half is not more than half
		{DefaultHoldPolicy, 10, 6, true},
		{DefaultHoldPolicy, 20, 15, true},
		{DefaultHoldPolicy, 20, 10, false},
		{HoldPolicy{}, 20, 20, false}, // 0 = off
	} {
		t.Run(fmt.Sprintf("%v/%d-%d", c.policy, c.files, c.deleted), func(t *testing.T) {
			s := must(Open("", Options{InMemory: true, HoldDeletions: c.policy}))
			defer s.Close()
			files := heldFiles(t, s, c.files)
			addTree(t, s, files)
			seq := addTree(t, s, files[c.deleted:])
			h, err := s.Held(heldFolder)
			if err != nil {
				t.Fatal(err)
			}
			if (h != nil) != c.held {
				t.Fatalf("held = %+v, want held %v", h, c.held)
			}
			if h != nil && (h.From != seq || h.Base != seq-1 || h.BaseFiles != c.files || h.Deleted != c.deleted) {
				t.Errorf("hold = %+v", h)
			}
		})
	}
}

// TestHoldRenamesAreNotDeletions: moving every note into a folder deletes
// nothing.
func TestHoldRenamesAreNotDeletions(t *testing.T) {
	s := must(Open("", Options{InMemory: true, HoldDeletions: DefaultHoldPolicy}))
	defer s.Close()
	files := heldFiles(t, s, 20)
	addTree(t, s, files)
	moved := make([]File, len(files))
	for i, f := range files {
		f.Path = "archive/" + f.Path
		moved[i] = f
	}
	addTree(t, s, moved)
	if h, _ := s.Held(heldFolder); h != nil {
		t.Fatalf("a move of every file was held: %+v", h)
	}
	if n := Deletions(files, moved); n != 0 {
		t.Errorf("Deletions of a move = %d", n)
	}
	// One document at two paths that keeps only one: one deletion.
	two := []File{files[0], {Path: "copy.md", Blob: files[0].Blob, Size: files[0].Size, DocID: files[0].DocID, Kind: "markdown"}}
	if n := Deletions(two, two[:1]); n != 1 {
		t.Errorf("Deletions of one of a document's two paths = %d", n)
	}
	// Notes deleted and made again at the same paths (new documents):
	// nothing is missing.
	again := make([]File, len(files))
	for i, f := range files {
		f.DocID = "new-" + f.DocID
		again[i] = f
	}
	if n := Deletions(files, again); n != 0 {
		t.Errorf("Deletions of notes made again at their paths = %d", n)
	}
	// A rename and a deletion: one.
	if n := Deletions(files[:2], []File{{Path: "moved.md", DocID: files[0].DocID}}); n != 1 {
		t.Errorf("Deletions of a rename and a deletion = %d", n)
	}
}

func TestHoldReleaseDropAndRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	s := must(Open(dir, Options{HoldDeletions: DefaultHoldPolicy}))
	files := heldFiles(t, s, 20)
	addTree(t, s, files)      // 1
	addTree(t, s, files[15:]) // 2: held
	addTree(t, s, files[14:]) // 3: held behind it
	if _, err := s.ReleaseHold(FolderID{Relay: heldFolder.Relay, Folder: "a47ac10b-58cc-4372-a567-0e02b2c3d479"}); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("releasing an unknown folder: %v", err)
	}
	s.Close()

	// The hold survives a restart, even with the guard turned off.
	s = must(Open(dir, Options{}))
	list := must(s.Holds())
	if len(list) != 1 || list[0].From != 2 || list[0].Folder != heldFolder || list[0].Deleted != 15 {
		t.Fatalf("Holds after restart = %+v", list)
	}
	h, r, err := s.DropHold(heldFolder)
	if err != nil || h.From != 2 || r != (SeqRange{2, 3}) {
		t.Fatalf("DropHold = %+v, %+v, %v", h, r, err)
	}
	if _, _, err := s.DropHold(heldFolder); !errors.Is(err, ErrNotHeld) || !errors.Is(err, ErrNotFound) {
		t.Fatalf("second drop: %v", err)
	}
	s.Close()

	s = must(Open(dir, Options{HoldDeletions: DefaultHoldPolicy}))
	defer s.Close()
	if d := must(s.Dropped(heldFolder)); len(d) != 1 || d[0] != (SeqRange{2, 3}) {
		t.Fatalf("Dropped after restart = %+v", d)
	}
	// Still empty after the drop: compared with snapshot 1, held again,
	// and a second drop extends the same range.
	addTree(t, s, files[14:]) // 4
	if h := must(s.Held(heldFolder)); h == nil || h.From != 4 || h.Base != 1 || h.Deleted != 14 {
		t.Fatalf("hold after drop = %+v", h)
	}
	if _, r, err := s.DropHold(heldFolder); err != nil || r != (SeqRange{4, 4}) {
		t.Fatalf("DropHold = %+v, %v", r, err)
	}
	if d := must(s.Dropped(heldFolder)); len(d) != 1 || d[0] != (SeqRange{2, 4}) {
		t.Fatalf("Dropped = %+v", d)
	}
	// Restored: not held.
	addTree(t, s, files) // 5
	if h := must(s.Held(heldFolder)); h != nil {
		t.Fatalf("restored folder held: %+v", h)
	}
	// A later mass deletion is held, and released.
	addTree(t, s, files[:3]) // 6
	if h := must(s.Held(heldFolder)); h == nil || h.From != 6 || h.Base != 5 {
		t.Fatalf("hold = %+v", h)
	}
	if h, err := s.ReleaseHold(heldFolder); err != nil || h.From != 6 {
		t.Fatalf("ReleaseHold = %+v, %v", h, err)
	}
	if list := must(s.Holds()); len(list) != 0 {
		t.Fatalf("Holds after release = %+v", list)
	}
	if d := must(s.Dropped(heldFolder)); len(d) != 1 {
		t.Fatalf("release changed the dropped ranges: %+v", d)
	}
}
