package yjs

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func fixtureUpdates(t testing.TB) [][]byte {
	t.Helper()
	files, _ := filepath.Glob("testdata/sessions/*.bin")
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		t.Fatal("no fixtures in testdata/sessions")
	}
	return out
}

// Every truncation of a real update must fail cleanly (or, where a prefix
// happens to be a complete update, succeed) — never panic.
func TestTruncatedUpdates(t *testing.T) {
	for _, u := range fixtureUpdates(t)[:4] {
		for n := range len(u) {
			d := NewDoc()
			if err := d.ApplyUpdate(u[:n]); err == nil && n < 2 {
				t.Errorf("prefix of %d bytes accepted", n)
			}
		}
	}
}

// Flipping single bytes of real updates must never panic.
func TestCorruptedUpdates(t *testing.T) {
	for _, u := range fixtureUpdates(t)[:2] {
		for i := range len(u) {
			for _, x := range []byte{0x01, 0x80, 0xff} {
				c := bytes.Clone(u)
				c[i] ^= x
				d := NewDoc()
				if d.ApplyUpdate(c) == nil {
					d.ToJSON()
					if _, err := d.EncodeStateAsUpdate(); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
}

func TestHostileLengths(t *testing.T) {
	for name, u := range map[string][]byte{
		"huge client count":  {0xff, 0xff, 0xff, 0xff, 0x0f},
		"huge struct count":  {1, 0xff, 0xff, 0xff, 0x7f, 1, 0},
		"huge string length": {1, 1, 1, 0, 4, 1, 1, 't', 0xff, 0xff, 0xff, 0x7f},
		"varuint over 2^53":  {1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0},
		"unknown content":    {1, 1, 1, 0, 0x1f, 1, 1, 't', 0, 0},
		"zero-length string": {1, 1, 1, 0, 4, 1, 1, 't', 0, 0},
		"unknown any tag":    {1, 1, 1, 0, 8, 1, 1, 'm', 1, 3, 0},
		"self-origin":        {1, 2, 1, 0, 4, 1, 1, 't', 1, 'a', 0x84, 1, 5, 1, 'b', 0},
		"parent not a type":  {1, 2, 1, 0, 4, 1, 1, 't', 1, 'a', 4, 0, 1, 0, 1, 'b', 0},
	} {
		t.Run(name, func(t *testing.T) {
			if err := NewDoc().ApplyUpdate(u); err == nil {
				t.Errorf("accepted")
			} else {
				t.Log(err)
			}
		})
	}
}

func TestDeeplyNestedAny(t *testing.T) {
	// An item whose Any content nests arrays far deeper than the limit.
	u := []byte{1, 1, 1, 0, 8, 1, 1, 'm', 1}
	u = append(u, bytes.Repeat([]byte{117, 1}, maxAnyDepth+10)...)
	u = append(u, 126, 0)
	if err := NewDoc().ApplyUpdate(u); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Fatalf("got %v", err)
	}
}

func TestVarInts(t *testing.T) {
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1, 63, 64, -64, 1 << 30, -(1 << 31), 1<<53 - 1, -(1<<53 - 1)} {
		w := &writer{}
		w.varInt(f)
		got, err := (&reader{buf: w.buf}).varInt()
		if err != nil || got != f || math.Signbit(got) != math.Signbit(f) {
			t.Errorf("varInt(%v) round trip = %v, %v", f, got, err)
		}
	}
	for _, n := range []uint64{0, 127, 128, 1<<32 + 5, maxSafeInteger} {
		w := &writer{}
		w.varUint(n)
		got, err := (&reader{buf: w.buf}).varUint()
		if err != nil || got != n {
			t.Errorf("varUint(%d) round trip = %d, %v", n, got, err)
		}
	}
}

func TestAnyRoundTrip(t *testing.T) {
	v := map[string]any{
		"int": 7.0, "neg": -300.0, "big": 1e15, "f32": 1.5, "f64": 0.1, "s": "ü😀",
		"t": true, "f": false, "n": nil, "arr": []any{1.0, "x", []any{}}, "bin": []byte{0, 1},
		"obj": map[string]any{"k": map[string]any{}}, "bigint": int64(-5),
	}
	w := &writer{}
	if err := w.any(v); err != nil {
		t.Fatal(err)
	}
	got, err := (&reader{buf: w.buf}).any(0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Errorf("got %#v\nwant %#v", got, v)
	}
}

func TestSplitUTF16(t *testing.T) {
	for _, c := range []struct {
		s           string
		off         uint64
		left, right string
	}{
		{"abc", 1, "a", "bc"},
		{"a😀b", 1, "a", "😀b"},
		{"a😀b", 3, "a😀", "b"},
		{"a😀b", 2, "a\uFFFD", "\uFFFDb"},
		{"é漢", 1, "é", "漢"},
	} {
		cs := newContentString(c.s)
		r := cs.splice(c.off).(*contentString)
		if cs.s != c.left || r.s != c.right || cs.utf16n != c.off || r.utf16n != utf16Len(c.s)-c.off {
			t.Errorf("split %q at %d = %q|%q (%d,%d)", c.s, c.off, cs.s, r.s, cs.utf16n, r.utf16n)
		}
	}
}

func TestDecodeUTF8LikeTextDecoder(t *testing.T) {
	for in, want := range map[string]string{
		"ok":           "ok",
		"a\xffb":       "a\uFFFDb",
		"\xe2\x82":     "\uFFFD",             // truncated 3-byte sequence: one maximal subpart
		"\xed\xa0\x80": "\uFFFD\uFFFD\uFFFD", // encoded surrogate: each byte invalid
		"\xf0\x9f\x98": "\uFFFD",
	} {
		if got := decodeUTF8([]byte(in)); got != want {
			t.Errorf("decodeUTF8(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFormatJSNumber(t *testing.T) {
	for f, want := range map[float64]string{1: "1", 1.5: "1.5", -0.25: "-0.25", 1e21: "1e+21", 1.5e-7: "1.5e-7", 123456789012: "123456789012", 0.1: "0.1"} {
		if got := formatJSNumber(f); got != want {
			t.Errorf("formatJSNumber(%v) = %q, want %q", f, got, want)
		}
	}
}

// FuzzApplyUpdate feeds arbitrary bytes to the decoder. It must never
// panic or hang, and whatever it accepts must survive re-encoding.
func FuzzApplyUpdate(f *testing.F) {
	for _, u := range fixtureUpdates(f) {
		f.Add(u)
	}
	f.Fuzz(func(t *testing.T, u []byte) {
		d := NewDoc()
		if err := d.ApplyUpdate(u); err != nil {
			return
		}
		want := d.ToJSON()
		re, err := d.EncodeStateAsUpdate()
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		d2 := NewDoc()
		if err := d2.ApplyUpdate(re); err != nil {
			t.Fatalf("re-encoded update rejected: %v", err)
		}
		if d.Pending() {
			return
		}
		if got := d2.ToJSON(); !reflect.DeepEqual(canonicalJSON(t, got), canonicalJSON(t, want)) {
			t.Fatalf("re-encoding changed content\n got: %s\nwant: %s", show(got), show(want))
		}
	})
}
