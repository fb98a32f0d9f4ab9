package relay

import (
	"errors"
	"strings"
	"testing"
)

const (
	uRelay  = "12345678-1234-1234-1234-123456789abc"
	uMiddle = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
	uDoc    = "87654321-4321-4321-4321-cba987654321"
)

func TestIsUUID(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{uRelay, true},
		{"F47AC10B-58CC-4372-A567-0E02B2C3D479", true},
		{"f47ac10b-58cc-4372-a567-0e02b2c3d479", true},
		{"", false},
		{"f47ac10b58cc4372a5670e02b2c3d479", false},                       // no dashes
		{"{f47ac10b-58cc-4372-a567-0e02b2c3d479}", false},                 // braces
		{"urn:uuid:f47ac10b-58cc-4372-a567-0e02b2c3d479", false},          // urn
		{"f47ac10b-58cc-4372-a567-0e02b2c3d47", false},                    // short
		{"f47ac10b-58cc-4372-a567-0e02b2c3d4799", false},                  // long
		{"g47ac10b-58cc-4372-a567-0e02b2c3d479", false},                   // non-hex
		{"f47ac10b-58cc-4372-a567_0e02b2c3d479", false},                   // wrong separator
		{"f47ac10b-58cc-43720a567-0e02b2c3d479-", false},                  // misplaced dash
		{"another-relay-uuid-here-12345678", false},                       // passes the Python 5-part check
		{" f47ac10b-58cc-4372-a567-0e02b2c3d47", false},                   // whitespace
		{"f47ac10b-58cc-4372-a567-0e02b2c3d4\u00e9", false},               // non-ASCII
		{"../../../../../../../../../../../../../../../../../etc", false}, // 36 bytes of junk
		{"f47ac10b-58cc-4372-a567-0e02b2c3d479\n", false},                 // trailing newline
		{"00000000-0000-0000-0000-000000000000", true},                    // nil UUID is well-formed
		{"ffffffff-ffff-ffff-ffff-ffffffffffff", true},                    // max UUID
		{"ABCDEFAB-CDEF-ABCD-EFAB-CDEFABCDEFAB", true},                    // all upper
		{strings.Repeat("a", 8) + "-aaaa-aaaa-aaaa-" + strings.Repeat("a", 12), true},
	}
	for _, tt := range tests {
		if got := IsUUID(tt.in); got != tt.want {
			t.Errorf("IsUUID(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestNormalizeUUID(t *testing.T) {
	got, err := NormalizeUUID("F47AC10B-58CC-4372-A567-0E02B2C3D479")
	if err != nil || got != "f47ac10b-58cc-4372-a567-0e02b2c3d479" {
		t.Fatalf("NormalizeUUID upper = %q, %v", got, err)
	}
	_, err = NormalizeUUID("nope")
	if !errors.Is(err, ErrInvalidUUID) || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("NormalizeUUID(nope) err = %v", err)
	}
	_, err = NormalizeUUID(strings.Repeat("x", 10000))
	if err == nil || len(err.Error()) > 300 {
		t.Fatalf("long input error not truncated: %d bytes", len(err.Error()))
	}
}

func TestParseCompoundID(t *testing.T) {
	tests := []struct {
		name         string
		in           string
		relay, res   string
		errSubstring string
	}{
		// §3.4 table (tests/test_relay_client.py).
		{"two uuids", uRelay + "-" + uDoc, uRelay, uDoc, ""},
		{"three uuids, middle ignored", uRelay + "-" + uMiddle + "-" + uDoc, uRelay, uDoc, ""},
		{"too short (4 parts)", "12345678-1234-1234-1234", "", "", "at least 2 UUIDs"},
		{"7 parts", uRelay + "-87654321-4321", "", "", "2 or 3 complete UUIDs"},
		{"11 parts (-extra)", uRelay + "-" + uDoc + "-extra", "", "", "2 or 3 complete UUIDs"},
		// Strict validation (the Python accepts all of these).
		{"upper case normalised", strings.ToUpper(uRelay + "-" + uDoc), uRelay, uDoc, ""},
		{"empty", "", "", "", "at least 2 UUIDs"},
		{"12 parts", uRelay + "-" + uDoc + "-a-b", "", "", "2 or 3 complete UUIDs"},
		{"20 parts", uRelay + "-" + uMiddle + "-" + uDoc + "-" + uDoc, "", "", "2 or 3 complete UUIDs"},
		{"10 non-uuid parts", "a-b-c-d-e-f-g-h-i-j", "", "", "2 or 3 complete UUIDs"},
		{"10 parts, right length, bad hex", "zzzzzzzz-1234-1234-1234-123456789abc-" + uDoc, "", "", "relay part"},
		{"bad resource", uRelay + "-87654321-4321-4321-4321-cba98765432g", "", "", "resource part"},
		{"bad middle", uRelay + "-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeeg-" + uDoc, "", "", "middle part"},
		{"path games", "..-..-..-..-..-..-..-..-..-..", "", "", "2 or 3 complete UUIDs"},
		{"dashes shifted", "123456781-234-1234-1234-123456789abc-" + uDoc, "", "", "relay part"},
		{"separator is not a dash", uRelay + "_" + uDoc, "", "", "at least 2 UUIDs"},
		{"slash in resource", uRelay + "-87654321-4321-4321-4321-cba98765/321", "", "", "resource part"},
		{"leading space", " " + uRelay + "-" + uDoc, "", "", "2 or 3 complete UUIDs"},
		{"trailing newline", uRelay + "-" + uDoc + "\n", "", "", "2 or 3 complete UUIDs"},
		{"huge", strings.Repeat("-", 1<<16), "", "", "2 or 3 complete UUIDs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			relay, res, err := ParseCompoundID(tt.in)
			if tt.errSubstring == "" {
				if err != nil {
					t.Fatalf("ParseCompoundID(%q) error %v", tt.in, err)
				}
				if relay != tt.relay || res != tt.res {
					t.Fatalf("ParseCompoundID(%q) = %q, %q; want %q, %q", tt.in, relay, res, tt.relay, tt.res)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseCompoundID(%q) = %q, %q; want error containing %q", tt.in, relay, res, tt.errSubstring)
			}
			if !errors.Is(err, ErrInvalidCompoundID) {
				t.Errorf("error %v does not wrap ErrInvalidCompoundID", err)
			}
			if !strings.Contains(err.Error(), tt.errSubstring) {
				t.Errorf("error %q does not contain %q", err, tt.errSubstring)
			}
			if len(err.Error()) > 400 {
				t.Errorf("error too long (%d bytes)", len(err.Error()))
			}
			if relay != "" || res != "" {
				t.Errorf("non-empty ids with error: %q %q", relay, res)
			}
		})
	}
}

func TestCompoundIDRoundTrip(t *testing.T) {
	id := CompoundID(uRelay, uDoc)
	if id != uRelay+"-"+uDoc {
		t.Fatalf("CompoundID = %q", id)
	}
	r, d, err := ParseCompoundID(id)
	if err != nil || r != uRelay || d != uDoc {
		t.Fatalf("round trip = %q %q %v", r, d, err)
	}
}

func FuzzParseCompoundID(f *testing.F) {
	f.Add(uRelay + "-" + uDoc)
	f.Add(uRelay + "-" + uMiddle + "-" + uDoc)
	f.Add("a-b-c-d-e-f-g-h-i-j")
	f.Fuzz(func(t *testing.T, s string) {
		r, d, err := ParseCompoundID(s)
		if err != nil {
			return
		}
		if !IsUUID(r) || !IsUUID(d) || r != strings.ToLower(r) || d != strings.ToLower(d) {
			t.Fatalf("ParseCompoundID(%q) accepted bad ids %q %q", s, r, d)
		}
		if !strings.EqualFold(s[:UUIDLen], r) || !strings.EqualFold(s[len(s)-UUIDLen:], d) {
			t.Fatalf("ParseCompoundID(%q) = %q %q: not the first and last UUID", s, r, d)
		}
	})
}
