package yjs

import (
	"math"
	"sort"
	"strconv"
	"strings"
)

// maxJSONDepth bounds nested types in ToJSON, against hostile nesting.
const maxJSONDepth = 10000

// Kind returns the type's kind. A root's kind is fixed by GetText,
// GetMap, … or, for roots only read from updates, inferred from its
// items: keyed items make a map, strings and formats make text, other
// sequence content makes an array.
func (t *Type) Kind() Kind {
	if t.kind != KindUnknown {
		return t.kind
	}
	for it := t.start; it != nil; it = it.right {
		switch it.content.(type) {
		case *contentString, *contentFormat, *contentEmbed:
			return KindText
		case *contentDeleted:
			continue
		default:
			return KindArray
		}
	}
	if len(t.m) > 0 {
		return KindMap
	}
	if t.start != nil {
		// Only deleted items: a sequence whose content is gone.
		return KindText
	}
	return KindUnknown
}

// Name returns a root's name, or an XML element's node name.
func (t *Type) Name() string { return t.name }

// Len returns the number of live elements of a sequence (UTF-16 code
// units for text).
func (t *Type) Len() int { return int(t.length) }

// String returns the text of the type's sequence, as Y.Text's toString:
// the live strings in document order, formats and embeds left out.
func (t *Type) String() string {
	var b strings.Builder
	// The live length in UTF-16 units is the length in bytes for ASCII
	// text, so one walk of the list usually fills the builder exactly.
	b.Grow(int(t.length))
	for it := t.start; it != nil; it = it.right {
		if it.deleted {
			continue
		}
		if c, ok := it.content.(*contentString); ok {
			b.WriteString(c.s)
		}
	}
	return b.String()
}

// Keys returns the keys of a map's live entries, sorted.
func (t *Type) Keys() []string {
	keys := make([]string, 0, len(t.m))
	for k, it := range t.m {
		if !it.deleted {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// Get returns the live value of a map key: a JSON-like value (see
// ToJSON), []byte, or *Type for a nested type.
func (t *Type) Get(key string) (any, bool) {
	it := t.m[key]
	if it == nil || it.deleted {
		return nil, false
	}
	return lastValue(it), true
}

// lastValue is the value an item holds for its map key: its last element.
func lastValue(it *item) any {
	vals := itemValues(it)
	if len(vals) == 0 {
		return Undefined{}
	}
	return vals[len(vals)-1]
}

// itemValues returns an item's elements as Y.Array would list them.
func itemValues(it *item) []any {
	switch c := it.content.(type) {
	case *contentAny:
		return c.vals
	case *contentJSON:
		return c.vals
	case *contentBinary:
		return []any{c.b}
	case *contentType:
		return []any{c.t}
	case *contentEmbed:
		return []any{c.v}
	case *contentDoc:
		return []any{map[string]any{"guid": c.guid}}
	case *contentString:
		// JavaScript splits into UTF-16 code units; runes are the closest
		// Go strings can hold.
		vals := make([]any, 0, len(c.s))
		for _, r := range c.s {
			vals = append(vals, string(r))
		}
		return vals
	}
	return nil
}

// Values returns the live elements of an array, nested types as *Type.
func (t *Type) Values() []any {
	var vals []any
	for it := t.start; it != nil; it = it.right {
		if !it.deleted && it.countable() {
			vals = append(vals, itemValues(it)...)
		}
	}
	return vals
}

// ToJSON returns the type as yjs's toJSON does: a string for text and
// XML, map[string]any for a map, []any for an array, nested types
// converted likewise. Numbers are float64 (int64 for bigints), binaries
// []byte, subdocuments {"guid": …}. XML text is given as plain text.
func (t *Type) ToJSON() any { return t.toJSON(0) }

func (t *Type) toJSON(depth int) any {
	if depth > maxJSONDepth {
		return nil
	}
	switch t.Kind() {
	case KindText, KindXMLText:
		return t.String()
	case KindMap, KindXMLHook:
		return t.mapJSON(depth)
	case KindArray:
		vals := t.Values()
		for i, v := range vals {
			vals[i] = valueJSON(v, depth+1)
		}
		if vals == nil {
			vals = []any{}
		}
		return vals
	case KindXMLElement, KindXMLFragment:
		return t.xmlString(depth)
	}
	return nil
}

func (t *Type) mapJSON(depth int) map[string]any {
	obj := make(map[string]any, len(t.m))
	for k, it := range t.m {
		if !it.deleted {
			obj[k] = valueJSON(lastValue(it), depth+1)
		}
	}
	return obj
}

func valueJSON(v any, depth int) any {
	if nt, ok := v.(*Type); ok {
		return nt.toJSON(depth)
	}
	return v
}

// xmlString renders an XML element or fragment as yjs's toString does:
// children concatenated, elements as <name attr="v">…</name> with
// attributes sorted.
func (t *Type) xmlString(depth int) string {
	var b strings.Builder
	if t.kind == KindXMLElement {
		name := strings.ToLower(t.name)
		b.WriteString("<" + name)
		for _, k := range t.Keys() {
			v, _ := t.Get(k)
			b.WriteString(" " + k + `="` + jsString(v) + `"`)
		}
		b.WriteString(">")
		defer b.WriteString("</" + name + ">")
	}
	for it := t.start; it != nil; it = it.right {
		if it.deleted || !it.countable() {
			continue
		}
		for _, v := range itemValues(it) {
			if nt, ok := v.(*Type); ok {
				s, _ := nt.toJSON(depth + 1).(string)
				b.WriteString(s)
			}
		}
	}
	return b.String()
}

// jsString formats an attribute value as JavaScript string conversion
// would for the common cases.
func jsString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return "null"
	case bool:
		if x {
			return "true"
		}
		return "false"
	case float64:
		return formatJSNumber(x)
	}
	return "[object Object]"
}

// UTF16Len returns the length of s in UTF-16 code units, the unit of Y.Text
// indexes.
func UTF16Len(s string) int { return int(utf16Len(s)) }

// formatJSNumber formats f as JavaScript's Number#toString does.
func formatJSNumber(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		return "0"
	}
	if a := math.Abs(f); a >= 1e-6 && a < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	s := strconv.FormatFloat(f, 'e', -1, 64)
	mant, exp, _ := strings.Cut(s, "e")
	sign := exp[:1]
	exp = strings.TrimLeft(exp[1:], "0")
	return mant + "e" + sign + exp
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ToJSON returns every root type whose kind is known or can be inferred,
// by name, converted as Type.ToJSON does.
func (d *Doc) ToJSON() map[string]any {
	out := make(map[string]any, len(d.share))
	for name, t := range d.share {
		if t.Kind() != KindUnknown {
			out[name] = t.ToJSON()
		}
	}
	return out
}
