// Package relay owns talking to and interpreting a Relay Server: the
// identifiers it uses (UUIDs, compound document ids, S3RN resource names),
// the shared-folder metadata map (filemeta_v0) and how its keys become safe
// paths, and the canvas export format (a byte-exact port of the Python
// implementation's json.dumps output). The HTTP client lives in this package
// too; everything in ids.go, s3rn.go, paths.go, filemeta.go, canvas.go and
// pyjson.go is pure (no I/O) and safe for concurrent use.
package relay

import (
	"errors"
	"fmt"
	"strings"
)

// UUIDLen is the length of a canonical textual UUID (8-4-4-4-12 hex digits).
const UUIDLen = 36

// ErrInvalidUUID is wrapped by errors about strings that are not UUIDs.
var ErrInvalidUUID = errors.New("not a UUID")

// ErrInvalidCompoundID is wrapped by every ParseCompoundID error.
var ErrInvalidCompoundID = errors.New("invalid compound document id")

// IsUUID reports whether s is a UUID in canonical textual form
// (^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$),
// hex digits in either case. Version and variant bits are not checked.
func IsUUID(s string) bool {
	if len(s) != UUIDLen {
		return false
	}
	for i := 0; i < UUIDLen; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return true
}

// NormalizeUUID checks s with IsUUID and returns it lower-cased.
// The error wraps ErrInvalidUUID and quotes (a prefix of) s.
func NormalizeUUID(s string) (string, error) {
	if !IsUUID(s) {
		return "", fmt.Errorf("%w: %s", ErrInvalidUUID, quoteTrunc(s))
	}
	return strings.ToLower(s), nil
}

// ParseCompoundID splits a Relay Server document id into the relay UUID and
// the resource (folder, document, canvas or file) UUID, both lower-cased.
//
// Accepted forms (§3.4): "<relay>-<resource>" and "<relay>-<middle>-<resource>";
// the middle UUID is validated and then ignored, as in the Python. Unlike the
// Python, every part must be a real UUID, so a webhook cannot smuggle
// arbitrary strings into directory names or store keys (§10 item 25).
// Errors wrap ErrInvalidCompoundID; their text keeps the Python's phrases
// "at least 2 UUIDs" and "2 or 3 complete UUIDs".
//
// Note on case: ids are lower-cased because filemeta ids (written by the
// plugin with crypto.randomUUID) are lower-case. Relay Server document ids
// are case-sensitive, so a caller that needs to talk back to the server
// about an upper-case id received in a webhook must keep the original string.
func ParseCompoundID(s string) (relayID, resourceID string, err error) {
	parts := strings.Count(s, "-") + 1
	if parts < 10 {
		return "", "", fmt.Errorf("%w %s: need at least 2 UUIDs (expected 2 or 3 complete UUIDs joined by '-')", ErrInvalidCompoundID, quoteTrunc(s))
	}
	if (parts != 10 || len(s) != 2*UUIDLen+1) && (parts != 15 || len(s) != 3*UUIDLen+2) {
		return "", "", fmt.Errorf("%w %s: expected 2 or 3 complete UUIDs joined by '-'", ErrInvalidCompoundID, quoteTrunc(s))
	}
	relay := s[:UUIDLen]
	resource := s[len(s)-UUIDLen:]
	names := []string{"relay", "resource"}
	vals := []string{relay, resource}
	seps := []int{UUIDLen, len(s) - UUIDLen - 1}
	if parts == 15 {
		names = append(names, "middle")
		vals = append(vals, s[UUIDLen+1:2*UUIDLen+1])
		seps = append(seps, 2*UUIDLen+1)
	}
	for _, p := range seps {
		if s[p] != '-' {
			return "", "", fmt.Errorf("%w %s: expected 2 or 3 complete UUIDs joined by '-'", ErrInvalidCompoundID, quoteTrunc(s))
		}
	}
	for i, v := range vals {
		if !IsUUID(v) {
			return "", "", fmt.Errorf("%w %s: %s part %q is not a UUID", ErrInvalidCompoundID, quoteTrunc(s), names[i], v)
		}
	}
	return strings.ToLower(relay), strings.ToLower(resource), nil
}

// CompoundID is the Relay Server document id of a resource of a relay:
// "<relay>-<resource>". It is used for folder docs (resource = folder id)
// and for markdown/canvas/file docs (resource = doc id; the folder id is not
// part of it). The arguments are not validated; pass UUIDs.
func CompoundID(relayID, resourceID string) string {
	return relayID + "-" + resourceID
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// quoteTrunc quotes s for an error message, shortening very long inputs so
// that a hostile value cannot flood the logs.
func quoteTrunc(s string) string {
	const max = 200
	if len(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	cut := max
	// Do not split a UTF-8 sequence (continuation bytes are 10xxxxxx).
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return fmt.Sprintf("%q… (%d bytes)", s[:cut], len(s))
}
