package relay

import (
	"errors"
	"strings"
	"testing"
)

const (
	uFolder = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
	sha     = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
)

func TestS3RNEncodeDecode(t *testing.T) {
	const pre = "s3rn:relay:relay:" + uRelay + ":folder:" + uFolder
	tests := []struct {
		name string
		r    S3RN
		s    string
	}{
		{"product", S3RN{Kind: S3RNRelayProduct}, "s3rn:relay"},
		{"relay", S3RN{Kind: S3RNRelay, Relay: uRelay}, "s3rn:relay:relay:" + uRelay},
		{"remote folder", S3RN{Kind: S3RNRemoteFolder, Relay: uRelay, Folder: uFolder}, pre},
		{"remote document", S3RN{Kind: S3RNRemoteDocument, Relay: uRelay, Folder: uFolder, Resource: uDoc}, pre + ":doc:" + uDoc},
		{"remote canvas", S3RN{Kind: S3RNRemoteCanvas, Relay: uRelay, Folder: uFolder, Resource: uDoc}, pre + ":canvas:" + uDoc},
		{"remote file", S3RN{Kind: S3RNRemoteFile, Relay: uRelay, Folder: uFolder, Resource: uDoc}, pre + ":file:" + uDoc},
		{"remote blob", S3RN{Kind: S3RNRemoteBlob, Relay: uRelay, Folder: uFolder, Resource: uDoc, Hash: sha, ContentType: "image/png", ContentLength: 1234},
			pre + ":file:" + uDoc + ":sha256:" + sha + ":contentType:image/png:contentLength:1234"},
		{"blob, empty content type", S3RN{Kind: S3RNRemoteBlob, Relay: uRelay, Folder: uFolder, Resource: uDoc, Hash: sha},
			pre + ":file:" + uDoc + ":sha256:" + sha + ":contentType::contentLength:0"},
		{"local folder", S3RN{Kind: S3RNFolder, Folder: uFolder}, "s3rn:relay:folder:" + uFolder},
		{"local document", S3RN{Kind: S3RNDocument, Folder: uFolder, Resource: uDoc}, "s3rn:relay:folder:" + uFolder + ":doc:" + uDoc},
		{"local canvas", S3RN{Kind: S3RNCanvas, Folder: uFolder, Resource: uDoc}, "s3rn:relay:folder:" + uFolder + ":canvas:" + uDoc},
		{"local file", S3RN{Kind: S3RNFile, Folder: uFolder, Resource: uDoc}, "s3rn:relay:folder:" + uFolder + ":file:" + uDoc},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.r.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if got != tt.s || tt.r.String() != tt.s {
				t.Fatalf("Encode = %q, String = %q, want %q", got, tt.r.String(), tt.s)
			}
			back, err := ParseS3RN(got)
			if err != nil {
				t.Fatalf("ParseS3RN(%q): %v", got, err)
			}
			if back != tt.r {
				t.Fatalf("ParseS3RN(%q) = %+v, want %+v", got, back, tt.r)
			}
		})
	}
}

func TestS3RNQuirksAndNormalisation(t *testing.T) {
	// Python decoder's spelling for local documents.
	r, err := ParseS3RN("s3rn:relay:folder:" + uFolder + ":document:" + uDoc)
	if err != nil || r.Kind != S3RNDocument || r.Resource != uDoc {
		t.Fatalf(":document: = %+v, %v", r, err)
	}
	// TS decoder's key for blob hashes; upper case normalised.
	r, err = ParseS3RN("s3rn:relay:relay:" + strings.ToUpper(uRelay) + ":folder:" + uFolder + ":file:" + uDoc +
		":hash:" + strings.ToUpper(sha) + ":contentType:application/pdf:contentLength:7")
	if err != nil {
		t.Fatal(err)
	}
	want := S3RN{Kind: S3RNRemoteBlob, Relay: uRelay, Folder: uFolder, Resource: uDoc, Hash: sha, ContentType: "application/pdf", ContentLength: 7}
	if r != want {
		t.Fatalf("hash-keyed blob = %+v, want %+v", r, want)
	}
	// A blob without hash encodes like the Python: as a plain file.
	b := S3RN{Kind: S3RNRemoteBlob, Relay: uRelay, Folder: uFolder, Resource: uDoc}
	if got := b.String(); got != "s3rn:relay:relay:"+uRelay+":folder:"+uFolder+":file:"+uDoc {
		t.Fatalf("hashless blob String = %q", got)
	}
	if _, err := b.Encode(); err == nil {
		t.Fatal("Encode accepted a blob without hash")
	}
}

func TestS3RNAccessors(t *testing.T) {
	tests := []struct {
		r        S3RN
		id, typ  string
		compound string
	}{
		{S3RN{Kind: S3RNRelayProduct}, "", "", ""},
		{S3RN{Kind: S3RNRelay, Relay: uRelay}, uRelay, "", ""},
		{S3RN{Kind: S3RNRemoteFolder, Relay: uRelay, Folder: uFolder}, uFolder, "folder", uRelay + "-" + uFolder},
		{S3RN{Kind: S3RNRemoteDocument, Relay: uRelay, Folder: uFolder, Resource: uDoc}, uDoc, "document", uRelay + "-" + uDoc},
		{S3RN{Kind: S3RNRemoteCanvas, Relay: uRelay, Folder: uFolder, Resource: uDoc}, uDoc, "canvas", uRelay + "-" + uDoc},
		{S3RN{Kind: S3RNRemoteFile, Relay: uRelay, Folder: uFolder, Resource: uDoc}, uDoc, "file", uRelay + "-" + uDoc},
		{S3RN{Kind: S3RNRemoteBlob, Relay: uRelay, Folder: uFolder, Resource: uDoc, Hash: sha}, uDoc, "file", uRelay + "-" + uDoc},
		{S3RN{Kind: S3RNFolder, Folder: uFolder}, uFolder, "folder", ""},
		{S3RN{Kind: S3RNDocument, Folder: uFolder, Resource: uDoc}, uDoc, "document", ""},
		{S3RN{Kind: S3RNCanvas, Folder: uFolder, Resource: uDoc}, uDoc, "canvas", ""},
		{S3RN{Kind: S3RNFile, Folder: uFolder, Resource: uDoc}, uDoc, "file", ""},
	}
	for _, tt := range tests {
		if got := tt.r.ResourceID(); got != tt.id {
			t.Errorf("%v.ResourceID() = %q, want %q", tt.r.Kind, got, tt.id)
		}
		if got := tt.r.ResourceType(); got != tt.typ {
			t.Errorf("%v.ResourceType() = %q, want %q", tt.r.Kind, got, tt.typ)
		}
		got, err := tt.r.CompoundID()
		if tt.compound == "" {
			if err == nil {
				t.Errorf("%v.CompoundID() = %q, want error", tt.r.Kind, got)
			}
		} else if err != nil || got != tt.compound {
			t.Errorf("%v.CompoundID() = %q, %v; want %q", tt.r.Kind, got, err, tt.compound)
		}
	}
	if got := S3RNRemoteCanvas.String(); got != "S3RemoteCanvas" {
		t.Errorf("kind String = %q", got)
	}
	if got := S3RNKind(99).String(); got != "S3RNKind(99)" {
		t.Errorf("bad kind String = %q", got)
	}
	if got := (S3RN{}).String(); !strings.HasPrefix(got, "s3rn:relay:invalid-kind") {
		t.Errorf("zero S3RN String = %q", got)
	}
}

func TestParseS3RNErrors(t *testing.T) {
	const pre = "s3rn:relay:relay:" + uRelay + ":folder:" + uFolder
	bad := []string{
		"",
		"s3rn",
		"s3rn:",
		"s3rn:relay:",
		"s3rn:other",
		"s3rn:other:relay:" + uRelay,
		"xs3rn:relay",
		"S3RN:relay",
		"s3rn:relay:relay",                 // key without value
		"s3rn:relay:relay:",                // empty relay (the Python accepts it)
		"s3rn:relay:relay:not-a-uuid",      // bad uuid
		"s3rn:relay:relay:" + uRelay + ":", // dangling
		pre + ":doc:" + uDoc + ":extra:x",  // trailing pairs (the Python ignores them)
		pre + ":document:" + uDoc,          // remote documents use :doc:
		pre + ":doc:../../etc/passwd",
		pre + ":file:" + uDoc + ":sha256:" + sha, // incomplete blob
		pre + ":file:" + uDoc + ":sha256:abc:contentType:x:contentLength:1",           // short hash
		pre + ":file:" + uDoc + ":sha256:" + sha + ":contentType:x:contentLength:-1",  // negative
		pre + ":file:" + uDoc + ":sha256:" + sha + ":contentType:x:contentLength:+1",  // signed
		pre + ":file:" + uDoc + ":sha256:" + sha + ":contentType:x:contentLength:",    // empty
		pre + ":file:" + uDoc + ":sha256:" + sha + ":contentType:x:contentLength:1e3", // not an int
		pre + ":file:" + uDoc + ":sha256:" + sha + ":contentType:x:contentLength:99999999999999999999",
		pre + ":file:" + uDoc + ":sha256:" + sha + ":contentType:text/plain:charset=x:contentLength:1", // ':' in type
		"s3rn:relay:folder:" + uFolder + ":relay:" + uRelay,                                            // wrong order
		"s3rn:relay:canvas:" + uDoc,
		"s3rn:relay:" + strings.Repeat("relay:"+uRelay+":", 500),
		"s3rn:relay:relay:" + uRelay + ":folder:" + uFolder + ":file:" + uDoc + ":sha256:" + sha + ":contentType:a:contentLength:1:x:y",
	}
	for _, s := range bad {
		r, err := ParseS3RN(s)
		if err == nil {
			t.Errorf("ParseS3RN(%q) = %+v, want error", s, r)
			continue
		}
		if !errors.Is(err, ErrInvalidS3RN) {
			t.Errorf("ParseS3RN(%q) error %v does not wrap ErrInvalidS3RN", s, err)
		}
		if len(err.Error()) > 500 {
			t.Errorf("ParseS3RN error too long: %d bytes", len(err.Error()))
		}
	}
}

func TestS3RNValidate(t *testing.T) {
	bad := []S3RN{
		{},
		{Kind: 42},
		{Kind: S3RNRelay, Relay: "x"},
		{Kind: S3RNRemoteFolder, Relay: uRelay, Folder: ""},
		{Kind: S3RNRemoteDocument, Relay: uRelay, Folder: uFolder, Resource: "../x"},
		{Kind: S3RNRemoteBlob, Relay: uRelay, Folder: uFolder, Resource: uDoc, Hash: sha, ContentType: "a:b"},
		{Kind: S3RNRemoteBlob, Relay: uRelay, Folder: uFolder, Resource: uDoc, Hash: sha, ContentLength: -5},
		{Kind: S3RNRemoteBlob, Relay: uRelay, Folder: uFolder, Resource: uDoc, Hash: "zz"},
		{Kind: S3RNFile, Folder: uFolder},
	}
	for _, r := range bad {
		if s, err := r.Encode(); err == nil {
			t.Errorf("Encode(%+v) = %q, want error", r, s)
		} else if !errors.Is(err, ErrInvalidS3RN) {
			t.Errorf("Encode(%+v) error %v does not wrap ErrInvalidS3RN", r, err)
		}
	}
}

func FuzzParseS3RN(f *testing.F) {
	f.Add("s3rn:relay")
	f.Add("s3rn:relay:relay:" + uRelay + ":folder:" + uFolder + ":doc:" + uDoc)
	f.Add("s3rn:relay:relay:" + uRelay + ":folder:" + uFolder + ":file:" + uDoc + ":sha256:" + sha + ":contentType:image/png:contentLength:3")
	f.Add("s3rn:relay:folder:" + uFolder + ":document:" + uDoc)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseS3RN(s)
		if err != nil {
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("ParseS3RN(%q) = %+v which does not validate: %v", s, r, err)
		}
		enc, err := r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseS3RN(enc)
		if err != nil || back != r {
			t.Fatalf("re-decode of %q = %+v, %v; want %+v", enc, back, err, r)
		}
	})
}
