package store

import (
	"strings"
	"testing"
)

func TestBlobIDOfMatchesGit(t *testing.T) {
	// `git hash-object` of "" and of "hello\n".
	for data, want := range map[string]string{
		"":        "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391",
		"hello\n": "ce013625030ba8dba906f756967f9e9ca394464a",
	} {
		id := BlobIDOf([]byte(data))
		if id.String() != want {
			t.Errorf("BlobIDOf(%q) = %s, want %s", data, id, want)
		}
		back, err := ParseBlobID(strings.ToUpper(want))
		if err != nil || back != id {
			t.Errorf("ParseBlobID(%s) = %s, %v", want, back, err)
		}
		if id.IsZero() {
			t.Errorf("%s IsZero", id)
		}
	}
	if !(BlobID{}).IsZero() {
		t.Error("zero id not IsZero")
	}
	for _, bad := range []string{"", "e69de29", strings.Repeat("g", 40), strings.Repeat("a", 41)} {
		if _, err := ParseBlobID(bad); err == nil {
			t.Errorf("ParseBlobID(%q) succeeded", bad)
		}
	}
}

func TestParseFolderID(t *testing.T) {
	const r, f = "0b4f1c9e-8a44-4e0e-9c1f-6c1f1a2b3c4d", "f00dfeed-0000-4000-8000-00000000abcd"
	id, err := ParseFolderID(r + "/" + strings.ToUpper(f))
	if err != nil {
		t.Fatal(err)
	}
	if id.Relay != r || id.Folder != f || id.String() != r+"/"+f {
		t.Fatalf("got %+v", id)
	}
	for _, bad := range []string{"", r, r + "/", "/" + f, r + "/" + f + "/x", r + "/not-a-uuid", "x/" + f, r + "/" + f[:35]} {
		if _, err := ParseFolderID(bad); err == nil {
			t.Errorf("ParseFolderID(%q) succeeded", bad)
		}
	}
	fk, err := id.key()
	if err != nil {
		t.Fatal(err)
	}
	if fk.id() != id {
		t.Fatalf("key round trip: %v", fk.id())
	}
	if _, err := (FolderID{Relay: "x", Folder: f}).key(); err == nil {
		t.Error("invalid FolderID accepted")
	}
}

func TestPackedID(t *testing.T) {
	for _, s := range []string{"", "abc", "0b4f1c9e-8a44-4e0e-9c1f-6c1f1a2b3c4d", "0B4F1C9E-8A44-4E0E-9C1F-6C1F1A2B3C4D", "ü/\x00"} {
		b := appendPackedID(nil, s)
		d := &dec{b: b}
		if got := d.packedID(); got != s || d.err != nil || len(d.b) != 0 {
			t.Errorf("packed id %q: got %q, %v", s, got, d.err)
		}
	}
	if n := len(appendPackedID(nil, "0b4f1c9e-8a44-4e0e-9c1f-6c1f1a2b3c4d")); n != 17 {
		t.Errorf("UUID packs to %d bytes, want 17", n)
	}
}

func TestChangeKindString(t *testing.T) {
	for k, want := range map[ChangeKind]string{ChangeAdded: "added", ChangeModified: "modified", ChangeRenamed: "renamed", ChangeDeleted: "deleted", 0: "ChangeKind(0)"} {
		if k.String() != want {
			t.Errorf("%d: %q", k, k.String())
		}
	}
}
