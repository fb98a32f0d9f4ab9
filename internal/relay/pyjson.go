package relay

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
)

// MaxPyJSONDepth bounds container nesting in MarshalPyJSON. Python 3.11's
// json.dumps raises RecursionError a little below 1000 levels, so nothing
// the Python wrote was deeper; the bound also keeps the quadratic
// indentation of a hostile, deeply nested value small.
const MaxPyJSONDepth = 1000

// ErrPyJSON is wrapped by every MarshalPyJSON error.
var ErrPyJSON = errors.New("pyjson")

// MarshalPyJSON returns exactly the text Python 3's
//
//	json.dumps(v, indent=indent, sort_keys=True)
//
// produces (defaults otherwise: ensure_ascii=True, allow_nan=True), for the
// value types a Yjs decoder yields. indent < 0 stands for indent=None
// (one line, separators ", " and ": "); indent >= 0 puts every item on its
// own line indented by indent spaces per level, separators "," and ": "
// (indent=0 still inserts newlines, as in Python). Empty objects and
// arrays are written "{}" and "[]". There is no trailing newline.
//
// Values:
//   - nil -> null; bool -> true/false;
//   - string -> ASCII-only string: \" \\ \n \r \t \b \f, other characters
//     below U+0020 and U+007F..U+FFFF as \uXXXX (lower-case hex), characters
//     above U+FFFF as a \uXXXX\uXXXX surrogate pair; '/', '<', '>', '&' and
//     all other printable ASCII unescaped. Invalid UTF-8 bytes are written
//     as \ufffd (Python strings cannot hold them);
//   - float64, float32 -> Python float repr (see PyFloatRepr); NaN, +Inf and
//     -Inf as NaN, Infinity, -Infinity (Python's allow_nan output, which is
//     not valid JSON);
//   - int, int8..int64, uint..uint64 (int64 is a Yjs bigint) -> decimal
//     integer, as Python prints an int;
//   - map[string]any (any map with string keys) -> object with keys sorted
//     by code point (Go's byte order on UTF-8 is code point order);
//   - []any (any slice or array) -> array;
//   - []byte -> a standard base64 string. Python's json.dumps raises
//     TypeError on bytes (so the Python never wrote such a canvas at all);
//     writing base64, as Go's encoding/json does, keeps the rest of the
//     document instead of failing it;
//   - a struct type without fields (e.g. yjs.Undefined) -> null, as pycrdt
//     maps JavaScript undefined to None; pointers and interfaces are
//     followed (nil -> null).
//
// Other types, and nesting deeper than MaxPyJSONDepth, are errors.
func MarshalPyJSON(v any, indent int) ([]byte, error) {
	e := pyEncoder{indent: indent}
	if err := e.value(v, 0); err != nil {
		return nil, err
	}
	return e.buf, nil
}

type pyEncoder struct {
	buf    []byte
	indent int
	derefs int // pointer dereferences so far (bounded like depth)
}

const spaces64 = "                                                                "

func (e *pyEncoder) newline(level int) {
	e.buf = append(e.buf, '\n')
	for n := level * e.indent; n > 0; n -= len(spaces64) {
		e.buf = append(e.buf, spaces64[:min(n, len(spaces64))]...)
	}
}

// sep writes the separator between two items of a container at level.
func (e *pyEncoder) sep(level int) {
	if e.indent < 0 {
		e.buf = append(e.buf, ", "...)
		return
	}
	e.buf = append(e.buf, ',')
	e.newline(level)
}

func (e *pyEncoder) value(v any, depth int) error {
	if depth > MaxPyJSONDepth {
		return fmt.Errorf("%w: nesting deeper than %d", ErrPyJSON, MaxPyJSONDepth)
	}
	switch x := v.(type) {
	case nil:
		e.buf = append(e.buf, "null"...)
	case bool:
		e.buf = strconv.AppendBool(e.buf, x)
	case string:
		e.buf = appendPyString(e.buf, x)
	case float64:
		e.buf = appendPyJSONFloat(e.buf, x)
	case float32:
		e.buf = appendPyJSONFloat(e.buf, float64(x))
	case int64:
		e.buf = strconv.AppendInt(e.buf, x, 10)
	case int:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case []byte:
		e.buf = appendPyString(e.buf, base64.StdEncoding.EncodeToString(x))
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		return e.object(keys, func(k string) any { return x[k] }, depth)
	case []any:
		return e.array(len(x), func(i int) any { return x[i] }, depth)
	default:
		return e.reflectValue(reflect.ValueOf(v), depth)
	}
	return nil
}

func (e *pyEncoder) object(keys []string, get func(string) any, depth int) error {
	if len(keys) == 0 {
		e.buf = append(e.buf, "{}"...)
		return nil
	}
	slices.Sort(keys)
	e.buf = append(e.buf, '{')
	if e.indent >= 0 {
		e.newline(depth + 1)
	}
	for i, k := range keys {
		if i > 0 {
			e.sep(depth + 1)
		}
		e.buf = appendPyString(e.buf, k)
		e.buf = append(e.buf, ": "...)
		if err := e.value(get(k), depth+1); err != nil {
			return err
		}
	}
	if e.indent >= 0 {
		e.newline(depth)
	}
	e.buf = append(e.buf, '}')
	return nil
}

func (e *pyEncoder) array(n int, get func(int) any, depth int) error {
	if n == 0 {
		e.buf = append(e.buf, "[]"...)
		return nil
	}
	e.buf = append(e.buf, '[')
	if e.indent >= 0 {
		e.newline(depth + 1)
	}
	for i := 0; i < n; i++ {
		if i > 0 {
			e.sep(depth + 1)
		}
		if err := e.value(get(i), depth+1); err != nil {
			return err
		}
	}
	if e.indent >= 0 {
		e.newline(depth)
	}
	e.buf = append(e.buf, ']')
	return nil
}

var byteSliceType = reflect.TypeFor[[]byte]()

// reflectValue handles the named and less common types.
func (e *pyEncoder) reflectValue(rv reflect.Value, depth int) error {
	if !rv.IsValid() {
		e.buf = append(e.buf, "null"...)
		return nil
	}
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		e.derefs++
		if e.derefs > MaxPyJSONDepth {
			return fmt.Errorf("%w: too many pointer indirections", ErrPyJSON)
		}
		return e.value(rv.Elem().Interface(), depth)
	case reflect.Bool:
		e.buf = strconv.AppendBool(e.buf, rv.Bool())
	case reflect.String:
		e.buf = appendPyString(e.buf, rv.String())
	case reflect.Float32, reflect.Float64:
		e.buf = appendPyJSONFloat(e.buf, rv.Float())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.buf = strconv.AppendInt(e.buf, rv.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.buf = strconv.AppendUint(e.buf, rv.Uint(), 10)
	case reflect.Struct:
		if rv.NumField() != 0 {
			return fmt.Errorf("%w: unsupported type %s", ErrPyJSON, rv.Type())
		}
		e.buf = append(e.buf, "null"...)
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("%w: unsupported map key type in %s", ErrPyJSON, rv.Type())
		}
		keys := make([]string, 0, rv.Len())
		vals := make(map[string]any, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			k := it.Key().String()
			keys = append(keys, k)
			vals[k] = it.Value().Interface()
		}
		return e.object(keys, func(k string) any { return vals[k] }, depth)
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Uint8 {
			e.buf = appendPyString(e.buf, base64.StdEncoding.EncodeToString(rv.Convert(byteSliceType).Bytes()))
			return nil
		}
		return e.array(rv.Len(), func(i int) any { return rv.Index(i).Interface() }, depth)
	default:
		return fmt.Errorf("%w: unsupported type %s", ErrPyJSON, rv.Type())
	}
	return nil
}

// appendPyJSONFloat writes f the way json.dumps does: float.__repr__ for
// finite values, NaN/Infinity/-Infinity otherwise.
func appendPyJSONFloat(buf []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(buf, "NaN"...)
	case math.IsInf(f, 1):
		return append(buf, "Infinity"...)
	case math.IsInf(f, -1):
		return append(buf, "-Infinity"...)
	}
	return append(buf, PyFloatRepr(f)...)
}

// PyFloatRepr returns Python 3's repr(f): the shortest decimal that reads
// back as f (Go's and Python's shortest round-trip digits agree), in
// positional notation with at least one fractional digit ("100.0", "0.1",
// "-0.0", "0.0001") when the decimal exponent is in [-4, 16), else in
// exponent notation with a signed, at least two-digit exponent and no
// trailing ".0" ("1e+16", "1e-05", "1.2345678901234568e+17", "5e-324").
// Non-finite values give "nan", "inf", "-inf".
func PyFloatRepr(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	// Go's 'e' format with shortest precision: [-]d[.ddd]e±XX, at least two
	// exponent digits, exactly Python's exponent form.
	s := strconv.FormatFloat(f, 'e', -1, 64)
	sign := ""
	if s[0] == '-' {
		sign, s = "-", s[1:]
	}
	ePos := strings.IndexByte(s, 'e')
	mant, expStr := s[:ePos], s[ePos+1:]
	exp, _ := strconv.Atoi(expStr) // "+16", "-05": Atoi accepts the sign
	decpt := exp + 1               // digits d1d2... represent 0.d1d2... × 10^decpt
	if decpt <= -4 || decpt > 16 {
		return sign + s
	}
	digits := strings.Replace(mant, ".", "", 1)
	var b strings.Builder
	b.WriteString(sign)
	switch {
	case decpt <= 0:
		b.WriteString("0.")
		b.WriteString(strings.Repeat("0", -decpt))
		b.WriteString(digits)
	case decpt >= len(digits):
		b.WriteString(digits)
		b.WriteString(strings.Repeat("0", decpt-len(digits)))
		b.WriteString(".0")
	default:
		b.WriteString(digits[:decpt])
		b.WriteByte('.')
		b.WriteString(digits[decpt:])
	}
	return b.String()
}

const lowerHex = "0123456789abcdef"

// appendPyString writes s as Python's ensure_ascii string encoder does
// (c_encode_basestring_ascii).
func appendPyString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	for _, r := range s { // invalid UTF-8 yields U+FFFD
		switch {
		case r == '"':
			buf = append(buf, '\\', '"')
		case r == '\\':
			buf = append(buf, '\\', '\\')
		case r >= 0x20 && r <= 0x7e:
			buf = append(buf, byte(r))
		case r == '\n':
			buf = append(buf, '\\', 'n')
		case r == '\r':
			buf = append(buf, '\\', 'r')
		case r == '\t':
			buf = append(buf, '\\', 't')
		case r == '\b':
			buf = append(buf, '\\', 'b')
		case r == '\f':
			buf = append(buf, '\\', 'f')
		case r >= 0x10000:
			hi, lo := utf16.EncodeRune(r)
			buf = appendU4(buf, hi)
			buf = appendU4(buf, lo)
		default:
			buf = appendU4(buf, r)
		}
	}
	return append(buf, '"')
}

func appendU4(buf []byte, r rune) []byte {
	return append(buf, '\\', 'u',
		lowerHex[(r>>12)&0xf], lowerHex[(r>>8)&0xf], lowerHex[(r>>4)&0xf], lowerHex[r&0xf])
}
