package yjs

import (
	"sort"
)

// Kind is the kind of a shared type.
type Kind uint8

// The shared type kinds. KindUnknown is a root type whose items have not
// told what it is (for example, one with no items at all).
const (
	KindUnknown Kind = iota
	KindArray
	KindMap
	KindText
	KindXMLElement
	KindXMLFragment
	KindXMLHook
	KindXMLText
)

var kindNames = [...]string{"unknown", "array", "map", "text", "xml-element", "xml-fragment", "xml-hook", "xml-text"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "invalid"
}

// typeRef is the number the update format uses for k.
func (k Kind) typeRef() int {
	switch k {
	case KindArray:
		return 0
	case KindMap:
		return 1
	case KindText:
		return 2
	case KindXMLElement:
		return 3
	case KindXMLFragment:
		return 4
	case KindXMLHook:
		return 5
	case KindXMLText:
		return 6
	}
	return -1
}

func kindFromTypeRef(ref uint64) (Kind, bool) {
	if ref > 6 {
		return KindUnknown, false
	}
	return [...]Kind{KindArray, KindMap, KindText, KindXMLElement, KindXMLFragment, KindXMLHook, KindXMLText}[ref], true
}

// Type is a shared type: a root of the document or a type nested in
// another. It holds a sequence (start) and a key-value part (m); which of
// them a kind uses is up to the kind.
type Type struct {
	doc   *Doc
	kind  Kind
	name  string // root name, or node name of an XML element or hook
	item  *item  // the item holding a nested type; nil for roots
	start *item
	m     map[string]*item
	// length counts the countable, live clock units of the sequence.
	length uint64
}

// newType returns a type with no entries; its map is made by the first
// keyed item (most types are sequences, and maps are read nil-safe).
func newType(d *Doc, k Kind, name string) *Type {
	return &Type{doc: d, kind: k, name: name}
}

// Doc is a Yjs document: the integrated structs of every client, the
// shared root types, and what could not be integrated yet.
type Doc struct {
	// ClientID identifies local edits. NewDoc picks 1; set it before the
	// first edit when several documents edit concurrently.
	ClientID uint64
	// GC replaces the content of deleted items by a tombstone, as yjs
	// does with gc: true. It only affects local edits.
	GC bool

	store *structStore
	share map[string]*Type

	pendingStructs map[uint64][]*item
	pendingMissing map[uint64]uint64
	pendingDeletes deleteSet

	// localDeletes holds the clock ranges deleted by local edits (while
	// inLocal is set), for EncodeLocalChanges.
	localDeletes deleteSet
	inLocal      bool

	// conflicting and before are integrate's scratch sets (conflictSets).
	conflicting, before map[*item]struct{}
}

// NewDoc returns an empty document with client id 1 and GC on.
func NewDoc() *Doc {
	return &Doc{ClientID: 1, GC: true, store: newStructStore(), share: map[string]*Type{}, localDeletes: deleteSet{}}
}

// root returns the root type name, creating it with an unknown kind.
func (d *Doc) root(name string) *Type {
	t := d.share[name]
	if t == nil {
		t = newType(d, KindUnknown, name)
		d.share[name] = t
	}
	return t
}

// getRoot returns the root type name, giving it kind k if its kind is not
// yet known. A root that already has another kind is returned unchanged.
func (d *Doc) getRoot(name string, k Kind) *Type {
	t := d.root(name)
	if t.kind == KindUnknown {
		t.kind = k
	}
	return t
}

// GetText returns the root text type called name, creating it if needed.
func (d *Doc) GetText(name string) *Type { return d.getRoot(name, KindText) }

// GetMap returns the root map type called name, creating it if needed.
func (d *Doc) GetMap(name string) *Type { return d.getRoot(name, KindMap) }

// GetArray returns the root array type called name, creating it if needed.
func (d *Doc) GetArray(name string) *Type { return d.getRoot(name, KindArray) }

// GetXMLFragment returns the root XML fragment called name.
func (d *Doc) GetXMLFragment(name string) *Type { return d.getRoot(name, KindXMLFragment) }

// Root returns the root type called name, or nil if the document has none.
func (d *Doc) Root(name string) *Type { return d.share[name] }

// RootNames returns the names of the root types, sorted.
func (d *Doc) RootNames() []string {
	names := make([]string, 0, len(d.share))
	for n := range d.share {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Pending reports whether the document holds structs or deletions it
// could not integrate because the updates they depend on are missing.
func (d *Doc) Pending() bool { return len(d.pendingStructs) > 0 || len(d.pendingDeletes) > 0 }

// StateVector returns, per client, the next clock the document expects.
func (d *Doc) StateVector() map[uint64]uint64 {
	sv := make(map[uint64]uint64, len(d.store.clients))
	for c := range d.store.clients {
		sv[c] = d.store.state(c)
	}
	return sv
}
