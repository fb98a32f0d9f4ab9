package yjs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
	"unsafe"
)

// maxSafeInteger is JavaScript's Number.MAX_SAFE_INTEGER. Yjs stores clocks,
// clients and lengths in doubles, so nothing valid exceeds it; rejecting
// larger values also keeps clock arithmetic from overflowing.
const maxSafeInteger = 1<<53 - 1

// maxAnyDepth bounds the nesting of Any values and JSON so that hostile
// input cannot exhaust the stack.
const maxAnyDepth = 1000

var errUnexpectedEnd = errors.New("unexpected end of update")

// Undefined is the JavaScript value undefined, which Any and JSON content
// can carry. It marshals to JSON null.
type Undefined struct{}

// MarshalJSON renders undefined as null, as JSON.stringify does inside arrays.
func (Undefined) MarshalJSON() ([]byte, error) { return []byte("null"), nil }

// reader decodes lib0 primitives. Every method checks bounds, so a
// truncated update yields an error rather than a panic.
type reader struct {
	buf []byte
	pos int
	// arena holds the bytes of the strings read so far: an update carries
	// thousands of short strings, and one allocation per chunk of them
	// costs far less than one per string.
	arena []byte
}

// arenaChunk is the most string bytes one arena allocation holds, unless a
// single string is longer. Larger chunks save little and keep more memory
// alive while any string in them is.
const arenaChunk = 16 << 10

func (r *reader) remaining() int { return len(r.buf) - r.pos }

func (r *reader) byte() (byte, error) {
	if r.pos >= len(r.buf) {
		return 0, errUnexpectedEnd
	}
	b := r.buf[r.pos]
	r.pos++
	return b, nil
}

func (r *reader) varUint() (uint64, error) {
	// Most numbers of an update (lengths, info-free clocks of small
	// documents, counts) fit in one byte.
	if r.pos < len(r.buf) && r.buf[r.pos] < 0x80 {
		r.pos++
		return uint64(r.buf[r.pos-1]), nil
	}
	var num uint64
	var shift uint
	for r.pos < len(r.buf) {
		b := r.buf[r.pos]
		r.pos++
		if shift >= 56 {
			return 0, fmt.Errorf("varuint at offset %d exceeds 2^53", r.pos)
		}
		num |= uint64(b&0x7f) << shift
		shift += 7
		if b < 0x80 {
			if num > maxSafeInteger {
				return 0, fmt.Errorf("varuint at offset %d exceeds 2^53", r.pos)
			}
			return num, nil
		}
	}
	return 0, errUnexpectedEnd
}

// count reads a varuint that announces how many elements follow, each of
// at least minBytes bytes, and rejects counts the remaining input cannot
// hold. Callers may then allocate that many elements safely.
func (r *reader) count(minBytes int) (int, error) {
	n, err := r.varUint()
	if err != nil {
		return 0, err
	}
	if minBytes > 0 && n > uint64(r.remaining()/minBytes) {
		return 0, fmt.Errorf("count %d at offset %d exceeds the remaining %d bytes", n, r.pos, r.remaining())
	}
	return int(n), nil
}

// varInt reads lib0's signed varint as a float64 (JavaScript number), so
// that negative zero survives as it does in yjs.
func (r *reader) varInt() (float64, error) {
	b, err := r.byte()
	if err != nil {
		return 0, err
	}
	num := uint64(b & 0x3f)
	neg := b&0x40 != 0
	shift := uint(6)
	for more := b&0x80 != 0; more; {
		if b, err = r.byte(); err != nil {
			return 0, err
		}
		if shift >= 55 {
			return 0, fmt.Errorf("varint at offset %d exceeds 2^53", r.pos)
		}
		num |= uint64(b&0x7f) << shift
		shift += 7
		more = b&0x80 != 0
		if num > maxSafeInteger {
			return 0, fmt.Errorf("varint at offset %d exceeds 2^53", r.pos)
		}
	}
	f := float64(num)
	if neg {
		f = -f
	}
	return f, nil
}

func (r *reader) bytes() ([]byte, error) {
	n, err := r.count(1)
	if err != nil {
		return nil, err
	}
	b := r.buf[r.pos : r.pos+n : r.pos+n]
	r.pos += n
	return b, nil
}

func (r *reader) string() (string, error) {
	s, _, err := r.stringUTF16()
	return s, err
}

// stringUTF16 reads a string and returns it with its length in UTF-16
// code units, which ASCII, the common case, gives in the validity check.
func (r *reader) stringUTF16() (string, uint64, error) {
	b, err := r.bytes()
	if err != nil || len(b) == 0 {
		return "", 0, err
	}
	n := uint64(len(b))
	if !isASCII(b) {
		if !utf8.Valid(b) {
			s := decodeUTF8(b)
			return s, utf16Len(s), nil
		}
		n = utf16Len(unsafe.String(&b[0], len(b)))
	}
	if len(b) > cap(r.arena)-len(r.arena) {
		// No string still to come is longer than the rest of the input.
		r.arena = make([]byte, 0, max(len(b), min(arenaChunk, len(b)+r.remaining())))
	}
	start := len(r.arena)
	r.arena = append(r.arena, b...)
	// The arena is only ever appended to, never reused: its bytes are as
	// immutable as a string's.
	return unsafe.String(&r.arena[start], len(b)), n, nil
}

// isASCII reports whether b holds only ASCII, eight bytes at a time.
func isASCII(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b)&0x8080808080808080 != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// decodeUTF8 converts bytes to a string the way TextDecoder does in its
// default (non-fatal) mode: each maximal invalid subsequence becomes U+FFFD.
func decodeUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	out := make([]byte, 0, len(b)+8)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size <= 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
			b = b[maximalInvalidPrefix(b):]
			continue
		}
		out = append(out, b[:size]...)
		b = b[size:]
	}
	return string(out)
}

// maximalInvalidPrefix returns the length of the WHATWG "maximal subpart"
// at the start of b, which must not begin with a valid sequence.
func maximalInvalidPrefix(b []byte) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xbf)
	switch {
	case c >= 0xc2 && c <= 0xdf:
		need = 1
	case c >= 0xe0 && c <= 0xef:
		need = 2
		if c == 0xe0 {
			lo = 0xa0
		} else if c == 0xed {
			hi = 0x9f
		}
	case c >= 0xf0 && c <= 0xf4:
		need = 3
		if c == 0xf0 {
			lo = 0x90
		} else if c == 0xf4 {
			hi = 0x8f
		}
	default:
		return 1
	}
	i := 1
	for ; i <= need && i < len(b); i++ {
		if b[i] < lo || b[i] > hi {
			return i
		}
		lo, hi = 0x80, 0xbf
	}
	return i
}

func (r *reader) float32() (float64, error) {
	if r.remaining() < 4 {
		return 0, errUnexpectedEnd
	}
	v := math.Float32frombits(binary.BigEndian.Uint32(r.buf[r.pos:]))
	r.pos += 4
	return float64(v), nil
}

func (r *reader) float64() (float64, error) {
	if r.remaining() < 8 {
		return 0, errUnexpectedEnd
	}
	v := math.Float64frombits(binary.BigEndian.Uint64(r.buf[r.pos:]))
	r.pos += 8
	return v, nil
}

func (r *reader) bigInt64() (int64, error) {
	if r.remaining() < 8 {
		return 0, errUnexpectedEnd
	}
	v := int64(binary.BigEndian.Uint64(r.buf[r.pos:]))
	r.pos += 8
	return v, nil
}

// any reads a lib0 Any value. Numbers become float64 (as in JavaScript),
// bigints int64, objects map[string]any, arrays []any, binaries []byte.
func (r *reader) any(depth int) (any, error) {
	if depth > maxAnyDepth {
		return nil, fmt.Errorf("any value nested deeper than %d at offset %d", maxAnyDepth, r.pos)
	}
	tag, err := r.byte()
	if err != nil {
		return nil, err
	}
	switch tag {
	case 127:
		return Undefined{}, nil
	case 126:
		return nil, nil
	case 125:
		return r.varInt()
	case 124:
		return r.float32()
	case 123:
		return r.float64()
	case 122:
		return r.bigInt64()
	case 121:
		return false, nil
	case 120:
		return true, nil
	case 119:
		return r.string()
	case 118:
		n, err := r.count(2)
		if err != nil {
			return nil, err
		}
		obj := make(map[string]any, n)
		for i := 0; i < n; i++ {
			k, err := r.string()
			if err != nil {
				return nil, err
			}
			if obj[k], err = r.any(depth + 1); err != nil {
				return nil, err
			}
		}
		return obj, nil
	case 117:
		n, err := r.count(1)
		if err != nil {
			return nil, err
		}
		arr := make([]any, n)
		for i := range arr {
			if arr[i], err = r.any(depth + 1); err != nil {
				return nil, err
			}
		}
		return arr, nil
	case 116:
		b, err := r.bytes()
		if err != nil {
			return nil, err
		}
		return append([]byte(nil), b...), nil
	}
	return nil, fmt.Errorf("unknown any tag %d at offset %d", tag, r.pos-1)
}

// writer encodes lib0 primitives.
type writer struct{ buf []byte }

func (w *writer) byte(b byte) { w.buf = append(w.buf, b) }

func (w *writer) varUint(n uint64) {
	for n >= 0x80 {
		w.buf = append(w.buf, byte(n)|0x80)
		n >>= 7
	}
	w.buf = append(w.buf, byte(n))
}

// varInt writes an integral float64 (|n| < 2^53) as lib0's signed varint.
func (w *writer) varInt(f float64) {
	neg := math.Signbit(f)
	n := uint64(math.Abs(f))
	b := byte(n & 0x3f)
	if neg {
		b |= 0x40
	}
	if n > 0x3f {
		b |= 0x80
	}
	w.buf = append(w.buf, b)
	n >>= 6
	for n > 0 {
		b := byte(n & 0x7f)
		if n > 0x7f {
			b |= 0x80
		}
		w.buf = append(w.buf, b)
		n >>= 7
	}
}

func (w *writer) bytes(b []byte) {
	w.varUint(uint64(len(b)))
	w.buf = append(w.buf, b...)
}

func (w *writer) string(s string) {
	w.varUint(uint64(len(s)))
	w.buf = append(w.buf, s...)
}

// any writes v with lib0's writeAny rules. Numbers may be any Go integer
// or float type; integers up to 2^31 use varint, floats that survive a
// float32 round trip use float32, as yjs does.
func (w *writer) any(v any) error {
	switch x := v.(type) {
	case nil:
		w.byte(126)
	case Undefined:
		w.byte(127)
	case bool:
		if x {
			w.byte(120)
		} else {
			w.byte(121)
		}
	case string:
		w.byte(119)
		w.string(x)
	case int:
		w.number(float64(x))
	case int32:
		w.number(float64(x))
	case int64:
		w.byte(122)
		w.buf = binary.BigEndian.AppendUint64(w.buf, uint64(x))
	case uint32:
		w.number(float64(x))
	case float32:
		w.number(float64(x))
	case float64:
		w.number(x)
	case []byte:
		w.byte(116)
		w.bytes(x)
	case []any:
		w.byte(117)
		w.varUint(uint64(len(x)))
		for _, e := range x {
			if err := w.any(e); err != nil {
				return err
			}
		}
	case map[string]any:
		w.byte(118)
		w.varUint(uint64(len(x)))
		for _, k := range sortedKeys(x) {
			w.string(k)
			if err := w.any(x[k]); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("yjs: cannot encode %T as an Any value", v)
	}
	return nil
}

func (w *writer) number(f float64) {
	switch {
	case f == math.Trunc(f) && math.Abs(f) <= math.MaxInt32:
		w.byte(125)
		w.varInt(f)
	case !math.IsNaN(f) && float64(float32(f)) == f:
		w.byte(124)
		w.buf = binary.BigEndian.AppendUint32(w.buf, math.Float32bits(float32(f)))
	default:
		w.byte(123)
		w.buf = binary.BigEndian.AppendUint64(w.buf, math.Float64bits(f))
	}
}
