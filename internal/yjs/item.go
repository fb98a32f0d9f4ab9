package yjs

import (
	"encoding/json"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// ID identifies one clock unit of one client's insertions.
type ID struct {
	Client uint64
	Clock  uint64
}

type structKind uint8

const (
	kindItem structKind = iota
	kindGC
	kindSkip
)

// Content reference numbers of the update format.
const (
	refGC      = 0
	refDeleted = 1
	refJSON    = 2
	refBinary  = 3
	refString  = 4
	refEmbed   = 5
	refFormat  = 6
	refType    = 7
	refAny     = 8
	refDoc     = 9
	refSkip    = 10
)

// item is a struct of the document: an Item, or a GC or Skip range (kind).
// One type for all three keeps the struct store a plain slice of pointers.
type item struct {
	id     ID
	length uint64

	// rightOrigin also holds, until integration, the ID of the type item
	// an item read from an update names as its parent (parentByID): the
	// format writes a parent only for items with neither origin, so the
	// field is free then, and items are many (see parentRef).
	origin, rightOrigin ID

	left, right *item

	// parent is set once integrated, or when read for an item under a
	// root. Before that, an item read from an update may name its parent
	// by the ID of a type item (parentByID, parentRef).
	parent *Type

	parentSub string
	content   content

	kind                      structKind
	hasOrigin, hasRightOrigin bool
	parentByID, parentByRoot  bool
	hasParentSub              bool
	deleted                   bool
}

// parentRef is the ID of the parent type's item of an item read with
// parentByID, until it is integrated.
func (it *item) parentRef() ID { return it.rightOrigin }

func (it *item) lastID() ID { return ID{it.id.Client, it.id.Clock + it.length - 1} }

func (it *item) countable() bool { return it.kind == kindItem && it.content.countable() }

// content is an item's payload. Lengths are in clock units: UTF-16 code
// units for strings, elements for arrays, 1 for the rest.
type content interface {
	ref() byte
	countable() bool
	// splice cuts the content at offset and returns the right part.
	splice(offset uint64) content
	write(w *writer, offset uint64) error
}

type contentDeleted struct{ n uint64 }

func (c *contentDeleted) ref() byte       { return refDeleted }
func (c *contentDeleted) countable() bool { return false }
func (c *contentDeleted) splice(off uint64) content {
	r := &contentDeleted{c.n - off}
	c.n = off
	return r
}
func (c *contentDeleted) write(w *writer, off uint64) error { w.varUint(c.n - off); return nil }

// contentJSON holds values of the legacy JSON content kind.
type contentJSON struct{ vals []any }

func (c *contentJSON) ref() byte       { return refJSON }
func (c *contentJSON) countable() bool { return true }
func (c *contentJSON) splice(off uint64) content {
	r := &contentJSON{append([]any(nil), c.vals[off:]...)}
	c.vals = c.vals[:off:off]
	return r
}
func (c *contentJSON) write(w *writer, off uint64) error {
	w.varUint(uint64(len(c.vals)) - off)
	for _, v := range c.vals[off:] {
		if _, ok := v.(Undefined); ok {
			w.string("undefined")
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("yjs: encoding JSON content: %w", err)
		}
		w.string(string(b))
	}
	return nil
}

type contentBinary struct{ b []byte }

func (c *contentBinary) ref() byte                       { return refBinary }
func (c *contentBinary) countable() bool                 { return true }
func (c *contentBinary) splice(uint64) content           { panic("yjs: binary content cannot be split") }
func (c *contentBinary) write(w *writer, _ uint64) error { w.bytes(c.b); return nil }

// contentString holds text as UTF-8 with its length in UTF-16 code units,
// the unit of Yjs clocks.
type contentString struct {
	s      string
	utf16n uint64
}

func newContentString(s string) *contentString {
	return &contentString{s: s, utf16n: utf16Len(s)}
}

func (c *contentString) ref() byte       { return refString }
func (c *contentString) countable() bool { return true }

// splice splits at a UTF-16 offset. Splitting inside a surrogate pair
// replaces both halves with U+FFFD, exactly as yjs does (yjs issue 248).
func (c *contentString) splice(off uint64) content {
	left, right, broken := splitUTF16(c.s, off)
	if broken {
		left += "\uFFFD"
		right = "\uFFFD" + right
	}
	r := &contentString{s: right, utf16n: c.utf16n - off}
	c.s, c.utf16n = left, off
	return r
}

func (c *contentString) write(w *writer, off uint64) error {
	if off == 0 {
		w.string(c.s)
		return nil
	}
	// Only reached when writing from an offset inside an item; mirror
	// JavaScript's slice, whose lone surrogate TextEncoder turns into U+FFFD.
	_, right, broken := splitUTF16(c.s, off)
	if broken {
		right = "\uFFFD" + right
	}
	w.string(right)
	return nil
}

// utf16Len returns the length of s in UTF-16 code units.
func utf16Len(s string) uint64 {
	n := uint64(0)
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			n++
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		n += uint64(utf16.RuneLen(r))
	}
	return n
}

// splitUTF16 cuts s at UTF-16 offset off. If off falls between the halves
// of a surrogate pair, the rune is dropped from both sides and broken is true.
func splitUTF16(s string, off uint64) (left, right string, broken bool) {
	n := uint64(0)
	for i := 0; i < len(s); {
		if n == off {
			return s[:i], s[i:], false
		}
		c := s[i]
		if c < utf8.RuneSelf {
			n++
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		w := uint64(utf16.RuneLen(r))
		if n+w > off {
			return s[:i], s[i+size:], true
		}
		n += w
		i += size
	}
	return s, "", false
}

type contentEmbed struct{ v any }

func (c *contentEmbed) ref() byte             { return refEmbed }
func (c *contentEmbed) countable() bool       { return true }
func (c *contentEmbed) splice(uint64) content { panic("yjs: embed content cannot be split") }
func (c *contentEmbed) write(w *writer, _ uint64) error {
	b, err := json.Marshal(c.v)
	if err != nil {
		return fmt.Errorf("yjs: encoding embed: %w", err)
	}
	w.string(string(b))
	return nil
}

type contentFormat struct {
	key string
	v   any
}

func (c *contentFormat) ref() byte             { return refFormat }
func (c *contentFormat) countable() bool       { return false }
func (c *contentFormat) splice(uint64) content { panic("yjs: format content cannot be split") }
func (c *contentFormat) write(w *writer, _ uint64) error {
	w.string(c.key)
	b, err := json.Marshal(c.v)
	if err != nil {
		return fmt.Errorf("yjs: encoding format value: %w", err)
	}
	w.string(string(b))
	return nil
}

type contentType struct{ t *Type }

func (c *contentType) ref() byte             { return refType }
func (c *contentType) countable() bool       { return true }
func (c *contentType) splice(uint64) content { panic("yjs: type content cannot be split") }
func (c *contentType) write(w *writer, _ uint64) error {
	w.varUint(uint64(c.t.kind.typeRef()))
	if c.t.kind == KindXMLElement || c.t.kind == KindXMLHook {
		w.string(c.t.name)
	}
	return nil
}

type contentAny struct{ vals []any }

func (c *contentAny) ref() byte       { return refAny }
func (c *contentAny) countable() bool { return true }
func (c *contentAny) splice(off uint64) content {
	r := &contentAny{append([]any(nil), c.vals[off:]...)}
	c.vals = c.vals[:off:off]
	return r
}
func (c *contentAny) write(w *writer, off uint64) error {
	w.varUint(uint64(len(c.vals)) - off)
	for _, v := range c.vals[off:] {
		if err := w.any(v); err != nil {
			return err
		}
	}
	return nil
}

// contentDoc is a subdocument reference: its guid and options.
type contentDoc struct {
	guid string
	opts any
}

func (c *contentDoc) ref() byte             { return refDoc }
func (c *contentDoc) countable() bool       { return true }
func (c *contentDoc) splice(uint64) content { panic("yjs: doc content cannot be split") }
func (c *contentDoc) write(w *writer, _ uint64) error {
	w.string(c.guid)
	return w.any(c.opts)
}
