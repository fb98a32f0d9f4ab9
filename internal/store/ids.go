package store

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// uuidRE matches a UUID in canonical textual form, hex digits in either case.
// Version and variant bits are not checked (Relay ids are random v4 UUIDs,
// but nothing here depends on that).
var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// FolderID names one shared folder: the relay it belongs to and the folder's
// own id, both UUIDs. The store accepts either case and always returns
// lower-case ids (Relay's filemeta ids are lower-case).
type FolderID struct {
	Relay  string
	Folder string
}

// String returns "relay/folder".
func (f FolderID) String() string { return f.Relay + "/" + f.Folder }

// ParseFolderID parses "relay/folder" where both parts are UUIDs, and
// returns them lower-cased.
func ParseFolderID(s string) (FolderID, error) {
	r, fo, ok := strings.Cut(s, "/")
	if !ok {
		return FolderID{}, fmt.Errorf("folder id %s: want <relay-uuid>/<folder-uuid>", quoteID(s))
	}
	if !uuidRE.MatchString(r) {
		return FolderID{}, fmt.Errorf("folder id %s: relay %s is not a UUID", quoteID(s), quoteID(r))
	}
	if !uuidRE.MatchString(fo) {
		return FolderID{}, fmt.Errorf("folder id %s: folder %s is not a UUID", quoteID(s), quoteID(fo))
	}
	return FolderID{Relay: strings.ToLower(r), Folder: strings.ToLower(fo)}, nil
}

// key returns the 32-byte binary form used in store keys.
func (f FolderID) key() (folderKey, error) {
	var k folderKey
	if !packUUID(k[:16], f.Relay) || !packUUID(k[16:], f.Folder) {
		return k, fmt.Errorf("folder id %s: relay and folder must be UUIDs", quoteID(f.String()))
	}
	return k, nil
}

// folderKey is a FolderID as 32 bytes (two binary UUIDs).
type folderKey [32]byte

func (k folderKey) id() FolderID {
	return FolderID{Relay: unpackUUID(k[:16]), Folder: unpackUUID(k[16:])}
}

// BlobID is a git blob id: the SHA-1 of "blob <len>\x00" followed by the
// data. Using git's id means history synthesis never re-hashes content.
type BlobID [20]byte

// BlobIDOf returns the git blob id of data.
func BlobIDOf(data []byte) BlobID {
	h := sha1.New()
	h.Write([]byte("blob " + strconv.Itoa(len(data)) + "\x00"))
	h.Write(data)
	var id BlobID
	h.Sum(id[:0])
	return id
}

// String returns the id as 40 lower-case hex digits.
func (b BlobID) String() string { return hex.EncodeToString(b[:]) }

// IsZero reports whether b is the zero id (no blob).
func (b BlobID) IsZero() bool { return b == BlobID{} }

// ParseBlobID parses 40 hex digits (either case).
func ParseBlobID(s string) (BlobID, error) {
	var id BlobID
	if len(s) != 40 {
		return id, fmt.Errorf("blob id %s: want 40 hex digits", quoteID(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return BlobID{}, fmt.Errorf("blob id %s: want 40 hex digits", quoteID(s))
	}
	return id, nil
}

// packUUID writes the 16 bytes of a canonical UUID (either case) into dst.
func packUUID(dst []byte, s string) bool {
	if len(s) != 36 || !uuidRE.MatchString(s) {
		return false
	}
	var h [32]byte
	copy(h[0:8], s[0:8])
	copy(h[8:12], s[9:13])
	copy(h[12:16], s[14:18])
	copy(h[16:20], s[19:23])
	copy(h[20:32], s[24:36])
	_, err := hex.Decode(dst[:16], h[:])
	return err == nil
}

// unpackUUID formats 16 bytes as a lower-case canonical UUID.
func unpackUUID(b []byte) string {
	var buf [36]byte
	hex.Encode(buf[0:8], b[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], b[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], b[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], b[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:36], b[10:16])
	return string(buf[:])
}

// isLowerUUID reports whether s is a canonical lower-case UUID, the form
// that packs losslessly into 16 bytes.
func isLowerUUID(s string) bool {
	return len(s) == 36 && uuidRE.MatchString(s) && strings.ToLower(s) == s
}

// quoteID quotes s for an error message, truncated so that hostile input
// cannot flood logs.
func quoteID(s string) string {
	if len(s) > 80 {
		return strconv.Quote(s[:80]) + "…"
	}
	return strconv.Quote(s)
}
