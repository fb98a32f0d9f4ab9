package relay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
)

func TestPyFloatRepr(t *testing.T) {
	// Runtime values: Go folds constant expressions exactly (0.1+0.2 == 0.3).
	point1, point2, tenThousandth := 0.1, 0.2, 1e-4
	// Expected values are Python 3 repr(float) (json.dumps uses float.__repr__).
	tests := []struct {
		f    float64
		want string
	}{
		{0, "0.0"},
		{math.Copysign(0, -1), "-0.0"},
		{1, "1.0"},
		{-1, "-1.0"},
		{100, "100.0"},
		{-120.5, "-120.5"},
		{0.1, "0.1"},
		{point1 + point2, "0.30000000000000004"},
		{1.0 / 3, "0.3333333333333333"},
		{2.0 / 3, "0.6666666666666666"},
		{0.001, "0.001"},
		{0.0001, "0.0001"},         // decimal exponent -4: still positional
		{0.00012345, "0.00012345"}, // idem
		{1e-5, "1e-05"},            // below 1e-4: exponent form, two-digit exponent
		{1.5e-5, "1.5e-05"},
		{9.99e-5, "9.99e-05"},
		{1e-7, "1e-07"},
		{1e-100, "1e-100"},
		{5e-324, "5e-324"}, // smallest subnormal
		{2.2250738585072014e-308, "2.2250738585072014e-308"},
		{123456789.0, "123456789.0"},
		{1e15, "1000000000000000.0"},
		{9999999999999998, "9999999999999998.0"}, // 16 digits: positional
		{1e16, "1e+16"},                          // 17 digits: exponent
		{1.5e16, "1.5e+16"},
		{12345678901234567890, "1.2345678901234567e+19"},
		{123456789012345678.0, "1.2345678901234568e+17"},
		{1234567890123456.7, "1234567890123456.8"},
		{1e22, "1e+22"},
		{1e100, "1e+100"},
		{math.MaxFloat64, "1.7976931348623157e+308"},
		{1700000000000, "1700000000000.0"}, // a synctime
		{-0.5, "-0.5"},
		{2.5, "2.5"},
		{tenThousandth * 3, "0.00030000000000000003"},
		{math.NaN(), "nan"},
		{math.Inf(1), "inf"},
		{math.Inf(-1), "-inf"},
	}
	for _, tt := range tests {
		if got := PyFloatRepr(tt.f); got != tt.want {
			t.Errorf("PyFloatRepr(%v) = %q, want %q", tt.f, got, tt.want)
		}
	}
}

func TestMarshalPyJSONStrings(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"", `""`},
		{"plain ascii ~!@#$%^&*()_+", `"plain ascii ~!@#$%^&*()_+"`},
		{`quote " backslash \ slash /`, `"quote \" backslash \\ slash /"`},
		{"<script>&amp;</script>", `"<script>&amp;</script>"`},
		{"\n\r\t\b\f", `"\n\r\t\b\f"`},
		{"\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"\x0b", `"\u000b"`}, // vertical tab has no short escape
		{"\x7f", `"\u007f"`}, // DEL is escaped
		{"\u0080", `"\u0080"`},
		{"é", `"\u00e9"`},
		{"日本語", `"\u65e5\u672c\u8a9e"`},
		{"\u2028\u2029", `"\u2028\u2029"`},
		{"\uffff", `"\uffff"`},
		{"\ufeffBOM", `"\ufeffBOM"`},
		{"😀", `"\ud83d\ude00"`},
		{"\U00010000", `"\ud800\udc00"`},
		{"\U0010ffff", `"\udbff\udfff"`},
		{"a😀b\U0001F9D1\u200D\U0001F4BB", `"a\ud83d\ude00b\ud83e\uddd1\u200d\ud83d\udcbb"`},
		{"bad \xff utf8", `"bad \ufffd utf8"`},
	}
	for _, tt := range tests {
		got, err := MarshalPyJSON(tt.in, 2)
		if err != nil || string(got) != tt.want {
			t.Errorf("MarshalPyJSON(%q) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

func TestMarshalPyJSONStructure(t *testing.T) {
	type undefined struct{}
	type named string
	v := map[string]any{
		"z":      1.0,
		"a":      []any{},
		"b":      map[string]any{},
		"é":      "x",
		"Z":      true,
		"_":      nil,
		"n":      []any{[]any{}, map[string]any{}, []any{map[string]any{"k": []any{0.5}}}},
		"big":    int64(9007199254740993),
		"neg":    int64(-3),
		"bin":    []byte("hi"),
		"undef":  undefined{},
		"f":      false,
		"named":  named("s"),
		"m":      map[string]string{"y": "2", "x": "1"},
		"sl":     []string{"p", "q"},
		"😀":      "astral key",
		"\uff01": "BMP key above astral in UTF-16, below in code points",
	}
	want := `{
  "Z": true,
  "_": null,
  "a": [],
  "b": {},
  "big": 9007199254740993,
  "bin": "aGk=",
  "f": false,
  "m": {
    "x": "1",
    "y": "2"
  },
  "n": [
    [],
    {},
    [
      {
        "k": [
          0.5
        ]
      }
    ]
  ],
  "named": "s",
  "neg": -3,
  "sl": [
    "p",
    "q"
  ],
  "undef": null,
  "z": 1.0,
  "\u00e9": "x",
  "\uff01": "BMP key above astral in UTF-16, below in code points",
  "\ud83d\ude00": "astral key"
}`
	got, err := MarshalPyJSON(v, 2)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("MarshalPyJSON =\n%s\nwant\n%s", got, want)
	}

	// indent=None: one line, ", " and ": ".
	got, err = MarshalPyJSON(map[string]any{"b": []any{1.0, "x", map[string]any{}}, "a": map[string]any{"c": nil}}, -1)
	if err != nil || string(got) != `{"a": {"c": null}, "b": [1.0, "x", {}]}` {
		t.Fatalf("indent=None: %s, %v", got, err)
	}
	// indent=0: newlines, no indentation.
	got, err = MarshalPyJSON(map[string]any{"a": []any{1.0, 2.0}}, 0)
	if err != nil || string(got) != "{\n\"a\": [\n1.0,\n2.0\n]\n}" {
		t.Fatalf("indent=0: %q, %v", got, err)
	}
	// Non-finite floats as Python's allow_nan writes them.
	got, err = MarshalPyJSON([]any{math.NaN(), math.Inf(1), math.Inf(-1), float32(0.1), 0.0, math.Copysign(0, -1)}, -1)
	if err != nil || string(got) != `[NaN, Infinity, -Infinity, 0.10000000149011612, 0.0, -0.0]` {
		t.Fatalf("floats: %s, %v", got, err)
	}
	// Scalars at top level.
	for in, want := range map[any]string{nil: "null", true: "true", 3.0: "3.0", "s": `"s"`, 7: "7", uint8(9): "9"} {
		got, err := MarshalPyJSON(in, 2)
		if err != nil || string(got) != want {
			t.Errorf("MarshalPyJSON(%#v) = %s, %v; want %s", in, got, err, want)
		}
	}
	// Pointers are followed.
	s := "p"
	var nilp *string
	got, err = MarshalPyJSON([]any{&s, nilp}, -1)
	if err != nil || string(got) != `["p", null]` {
		t.Fatalf("pointers: %s, %v", got, err)
	}
}

func TestMarshalPyJSONErrors(t *testing.T) {
	bad := []any{
		struct{ A int }{1},
		map[int]any{1: 2},
		make(chan int),
		func() {},
		[]any{complex(1, 2)},
	}
	for _, v := range bad {
		if got, err := MarshalPyJSON(v, 2); err == nil || !errors.Is(err, ErrPyJSON) {
			t.Errorf("MarshalPyJSON(%T) = %s, %v; want ErrPyJSON", v, got, err)
		}
	}
	deep := any("leaf")
	for range MaxPyJSONDepth + 5 {
		deep = []any{deep}
	}
	if _, err := MarshalPyJSON(deep, 2); !errors.Is(err, ErrPyJSON) {
		t.Errorf("deep nesting: %v", err)
	}
	var p any
	p = &p
	if _, err := MarshalPyJSON(p, 2); !errors.Is(err, ErrPyJSON) {
		t.Errorf("pointer cycle: %v", err)
	}
	ok := any("leaf")
	for range 100 {
		ok = map[string]any{"k": ok}
	}
	if _, err := MarshalPyJSON(ok, 2); err != nil {
		t.Errorf("depth 100: %v", err)
	}
}

// TestMarshalPyJSONAgainstPython compares with the real json.dumps on
// random values (python3 is a prerequisite, see testreq).
func TestMarshalPyJSONAgainstPython(t *testing.T) {
	if testing.Short() {
		t.Skip("runs python3; run without -short")
	}
	py := testreq.Python3(t)
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 300
	values := make([]any, n)
	for i := range values {
		values[i] = randomAny(rng, 0)
	}
	// Transport: Go's encoding/json (lossless for these types: float64
	// shortest round-trip, NaN/Inf carried as tagged objects, int64 as a
	// tagged string so that Python gets an int).
	var in bytes.Buffer
	for _, v := range values {
		b, err := json.Marshal(transport(v))
		if err != nil {
			t.Fatal(err)
		}
		in.Write(b)
		in.WriteByte('\n')
	}
	script := `
import json, sys
def dec(o):
    if isinstance(o, dict):
        if "$f" in o and len(o) == 1: return float(o["$f"])
        if "$i" in o and len(o) == 1: return int(o["$i"])
        return {k: dec(v) for k, v in o.items()}
    if isinstance(o, list): return [dec(x) for x in o]
    return o
for line in sys.stdin:
    v = dec(json.loads(line))
    for indent in (2, None):
        sys.stdout.write(json.dumps(json.dumps(v, indent=indent, sort_keys=True)) + "\n")
`
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = &in
	cmd.Stderr = os.Stderr
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3 failed: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != 2*n {
		t.Fatalf("python3 returned %d lines, want %d", len(lines), 2*n)
	}
	for i, v := range values {
		for j, indent := range []int{2, -1} {
			var want string
			if err := json.Unmarshal([]byte(lines[2*i+j]), &want); err != nil {
				t.Fatal(err)
			}
			got, err := MarshalPyJSON(v, indent)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != want {
				t.Fatalf("value %d indent %d:\ngot  %s\nwant %s", i, indent, got, want)
			}
		}
	}
}

func transport(v any) any {
	switch x := v.(type) {
	case float64:
		return map[string]any{"$f": PyFloatRepr(x)}
	case int64:
		return map[string]any{"$i": strconv.FormatInt(x, 10)}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = transport(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = transport(e)
		}
		return out
	}
	return v
}

var interestingFloats = []float64{0, math.Copysign(0, -1), 0.1, 1e16, 1e-5, 1e-4, 123456789012345678.0,
	5e-324, math.MaxFloat64, 1e15, 9999999999999998, -120.5, 100, math.NaN(), math.Inf(1), math.Inf(-1), 1700000000000}

var interestingRunes = []rune{'a', 'Z', ' ', '"', '\\', '/', '<', '&', '\n', '\t', 0, 0x1f, 0x7f, 0x80, 0xe9,
	0x2028, 0xfeff, 0xffff, 0xff01, 0x1f600, 0x10000, 0x10ffff, 0xd7ff, 0xe000}

func randomString(rng *rand.Rand) string {
	var b strings.Builder
	for range rng.IntN(8) {
		if rng.IntN(3) == 0 {
			b.WriteRune(interestingRunes[rng.IntN(len(interestingRunes))])
		} else {
			r := rune(rng.IntN(0x110000))
			if r >= 0xd800 && r <= 0xdfff {
				r = 'x'
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

func randomAny(rng *rand.Rand, depth int) any {
	k := rng.IntN(9)
	if depth > 3 && k >= 7 {
		k = rng.IntN(7)
	}
	switch k {
	case 0:
		return nil
	case 1:
		return rng.IntN(2) == 0
	case 2:
		return randomString(rng)
	case 3:
		return interestingFloats[rng.IntN(len(interestingFloats))]
	case 4:
		return math.Float64frombits(rng.Uint64())
	case 5:
		return float64(rng.IntN(2000)-1000) / float64(1+rng.IntN(64))
	case 6:
		return int64(rng.Uint64())
	case 7:
		n := rng.IntN(4)
		a := make([]any, n)
		for i := range a {
			a[i] = randomAny(rng, depth+1)
		}
		return a
	default:
		n := rng.IntN(4)
		m := make(map[string]any, n)
		for range n {
			m[randomString(rng)] = randomAny(rng, depth+1)
		}
		return m
	}
}

func ExampleMarshalPyJSON() {
	b, _ := MarshalPyJSON(map[string]any{"x": 100.0, "text": "café 😀", "e": []any{}}, 2)
	fmt.Println(string(b))
	// Output:
	// {
	//   "e": [],
	//   "text": "caf\u00e9 \ud83d\ude00",
	//   "x": 100.0
	// }
}

func FuzzPyFloatRepr(f *testing.F) {
	for _, x := range interestingFloats {
		f.Add(x)
	}
	f.Fuzz(func(t *testing.T, x float64) {
		s := PyFloatRepr(x)
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return
		}
		back, err := strconv.ParseFloat(s, 64)
		if err != nil || math.Float64bits(back) != math.Float64bits(x) {
			t.Fatalf("PyFloatRepr(%v) = %q does not read back (%v, %v)", x, s, back, err)
		}
		if !strings.ContainsAny(s, ".e") {
			t.Fatalf("PyFloatRepr(%v) = %q looks like an int", x, s)
		}
	})
}

func FuzzMarshalPyJSONString(f *testing.F) {
	for _, r := range interestingRunes {
		f.Add(string(r) + "x")
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := MarshalPyJSON(map[string]any{s: []any{s}}, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range b {
			if c >= 0x80 || (c < 0x20 && c != '\n') || c == 0x7f {
				t.Fatalf("non-ASCII or control byte %#x in %q", c, b)
			}
		}
		var back map[string][]string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("output %q is not JSON: %v", b, err)
		}
		want := string([]rune(s)) // one U+FFFD per invalid byte, as ranging does
		if len(back) != 1 || len(back[want]) != 1 || back[want][0] != want {
			t.Fatalf("round trip of %q = %q", s, back)
		}
	})
}
