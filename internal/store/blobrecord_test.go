package store

import (
	"bytes"
	"strings"
	"testing"
)

// A delta's record moves to another store, which decodes it against the
// base it got first; a record that does not decode to its id is refused.
func TestBlobRecordTravels(t *testing.T) {
	a, b := openMem(t), openMem(t)
	v1 := []byte(strings.Repeat("the first version of a note. ", 200))
	v2 := append(bytes.Clone(v1), " one more line"...)
	id1, err := a.PutBlob(v1, BlobID{})
	if err := err; err != nil {
		t.Fatal(err)
	}
	id2, err := a.PutBlob(v2, id1)
	if err := err; err != nil {
		t.Fatal(err)
	}
	rec2, base, err := a.BlobRecord(id2)
	if err := err; err != nil {
		t.Fatal(err)
	}
	if base != id1 {
		t.Fatalf("base of the second version = %s, want %s (a delta)", base, id1)
	}
	if err := b.PutBlobRecord(id2, rec2); err == nil || !strings.Contains(err.Error(), "base") {
		t.Fatalf("a delta without its base: %v", err)
	}
	rec1, _, err := a.BlobRecord(id1)
	if err := err; err != nil {
		t.Fatal(err)
	}
	if err := b.PutBlobRecord(id1, rec1); err != nil {
		t.Fatal(err)
	}
	if err := b.PutBlobRecord(id2, rec2); err != nil {
		t.Fatal(err)
	}
	got, err := b.Blob(id2)
	if err := err; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, v2) {
		t.Fatal("the moved delta decodes to other bytes")
	}
	if err := b.PutBlobRecord(BlobIDOf([]byte("other")), rec1); err == nil {
		t.Fatal("a record stored under an id it does not decode to was accepted")
	}
}
