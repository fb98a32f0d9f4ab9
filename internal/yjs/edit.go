package yjs

import (
	"errors"
	"fmt"
)

// Local edits. Each call is one yjs transaction's worth of change made by
// Doc.ClientID; EncodeStateAsUpdate then gives an update real yjs reads.

var errDetached = errors.New("yjs: type is not part of a document")

// local marks the deletions made until the returned function runs as the
// document's own (see EncodeLocalChanges).
func (t *Type) local() func() {
	d := t.doc
	if d == nil || d.inLocal {
		return func() {}
	}
	d.inLocal = true
	return func() { d.inLocal = false }
}

// Insert inserts s into a text at UTF-16 offset index.
func (t *Type) Insert(index int, s string) error {
	defer t.local()()
	if s == "" {
		return nil
	}
	left, right, err := t.position(index, true)
	if err != nil {
		return err
	}
	_, err = t.insertAfter(left, right, newContentString(s))
	return err
}

// InsertValues inserts JSON-like values (see ToJSON) or []byte into an
// array at index.
func (t *Type) InsertValues(index int, vals ...any) error {
	defer t.local()()
	left, right, err := t.position(index, false)
	if err != nil {
		return err
	}
	var run []any
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		it, err := t.insertAfter(left, right, &contentAny{run})
		left, run = it, nil
		return err
	}
	for _, v := range vals {
		if err := checkValue(v); err != nil {
			return err
		}
		if b, ok := v.([]byte); ok {
			if err := flush(); err != nil {
				return err
			}
			if left, err = t.insertAfter(left, right, &contentBinary{append([]byte(nil), b...)}); err != nil {
				return err
			}
			continue
		}
		run = append(run, v)
	}
	return flush()
}

// Push appends values to an array.
func (t *Type) Push(vals ...any) error { return t.InsertValues(t.Len(), vals...) }

// InsertType inserts a new, empty nested type of kind k into an array at
// index and returns it.
func (t *Type) InsertType(index int, k Kind) (*Type, error) {
	defer t.local()()
	left, right, err := t.position(index, false)
	if err != nil {
		return nil, err
	}
	nt, err := newNested(t.doc, k)
	if err != nil {
		return nil, err
	}
	_, err = t.insertAfter(left, right, &contentType{nt})
	return nt, err
}

// Delete removes length elements (UTF-16 code units for text) at index.
func (t *Type) Delete(index, length int) error {
	defer t.local()()
	if length == 0 {
		return nil
	}
	if index < 0 || length < 0 || uint64(index)+uint64(length) > t.length {
		return fmt.Errorf("yjs: delete of %d at %d is outside a sequence of length %d", length, index, t.length)
	}
	_, it, err := t.position(index, false)
	if err != nil {
		return err
	}
	rem := uint64(length)
	for ; it != nil && rem > 0; it = it.right {
		if it.deleted || !it.countable() {
			continue
		}
		if rem < it.length {
			if _, err := t.doc.store.cleanStart(ID{it.id.Client, it.id.Clock + rem}); err != nil {
				return err
			}
		}
		rem -= it.length
		t.doc.deleteItem(it)
		t.doc.collect(it)
	}
	return nil
}

// Set sets a map key to a JSON-like value (see ToJSON) or []byte.
func (t *Type) Set(key string, v any) error {
	defer t.local()()
	if err := checkValue(v); err != nil {
		return err
	}
	var c content = &contentAny{[]any{v}}
	if b, ok := v.([]byte); ok {
		c = &contentBinary{append([]byte(nil), b...)}
	}
	return t.setContent(key, c)
}

// SetType sets a map key to a new, empty nested type of kind k and
// returns it.
func (t *Type) SetType(key string, k Kind) (*Type, error) {
	defer t.local()()
	nt, err := newNested(t.doc, k)
	if err != nil {
		return nil, err
	}
	return nt, t.setContent(key, &contentType{nt})
}

// DeleteKey removes a map key.
func (t *Type) DeleteKey(key string) {
	defer t.local()()
	if it := t.m[key]; it != nil && !it.deleted {
		t.doc.deleteItem(it)
		t.doc.collect(it)
	}
}

func (t *Type) setContent(key string, c content) error {
	if t.doc == nil {
		return errDetached
	}
	left := t.m[key]
	it := t.newItem(left, nil, c)
	it.parentSub, it.hasParentSub = key, true
	if err := t.doc.integrate(it, 0); err != nil {
		return err
	}
	if left != nil {
		t.doc.collect(left)
	}
	return nil
}

func newNested(d *Doc, k Kind) (*Type, error) {
	if k.typeRef() < 0 || k == KindXMLElement || k == KindXMLHook {
		return nil, fmt.Errorf("yjs: cannot create a nested %s", k)
	}
	return newType(d, k, ""), nil
}

// checkValue rejects values that have no Any encoding.
func checkValue(v any) error {
	return (&writer{}).any(v)
}

func (t *Type) newItem(left, right *item, c content) *item {
	d := t.doc
	it := &item{
		id:      ID{d.ClientID, d.store.state(d.ClientID)},
		kind:    kindItem,
		left:    left,
		right:   right,
		parent:  t,
		content: c,
		length:  contentLen(c),
	}
	if left != nil {
		it.origin, it.hasOrigin = left.lastID(), true
	}
	if right != nil {
		it.rightOrigin, it.hasRightOrigin = right.id, true
	}
	return it
}

func contentLen(c content) uint64 {
	switch c := c.(type) {
	case *contentString:
		return c.utf16n
	case *contentAny:
		return uint64(len(c.vals))
	case *contentJSON:
		return uint64(len(c.vals))
	case *contentDeleted:
		return c.n
	}
	return 1
}

// position finds the neighbours for an insertion at index: left is the
// item before it (split if index falls inside one), right the item after.
// skipDeleted moves past deleted items, as yjs text insertion does.
func (t *Type) position(index int, skipDeleted bool) (left, right *item, err error) {
	if t.doc == nil {
		return nil, nil, errDetached
	}
	if index < 0 || uint64(index) > t.length {
		return nil, nil, fmt.Errorf("yjs: index %d is outside a sequence of length %d", index, t.length)
	}
	rem := uint64(index)
	right = t.start
	for right != nil && rem > 0 {
		if !right.deleted && right.countable() {
			if rem < right.length {
				r, err := t.doc.store.cleanStart(ID{right.id.Client, right.id.Clock + rem})
				if err != nil {
					return nil, nil, err
				}
				return right, r, nil
			}
			rem -= right.length
		}
		left, right = right, right.right
	}
	if skipDeleted {
		for right != nil && right.deleted {
			left, right = right, right.right
		}
	}
	return left, right, nil
}

func (t *Type) insertAfter(left, right *item, c content) (*item, error) {
	it := t.newItem(left, right, c)
	if err := t.doc.integrate(it, 0); err != nil {
		return nil, err
	}
	if left != nil && t.doc.tryMerge(left, it) {
		return left, nil
	}
	return it, nil
}

// tryMerge joins right into left when yjs would: consecutive clocks of
// one client, typed one after the other, same kind of content. It keeps
// documents built keystroke by keystroke compact.
func (d *Doc) tryMerge(left, right *item) bool {
	if left.kind != kindItem || left.id.Client != right.id.Client ||
		left.id.Clock+left.length != right.id.Clock || left.right != right ||
		!right.hasOrigin || right.origin != left.lastID() ||
		!sameOptID(left.rightOrigin, left.hasRightOrigin, right.rightOrigin, right.hasRightOrigin) ||
		left.deleted != right.deleted || left.hasParentSub || right.hasParentSub {
		return false
	}
	switch l := left.content.(type) {
	case *contentString:
		r, ok := right.content.(*contentString)
		if !ok {
			return false
		}
		l.s += r.s
		l.utf16n += r.utf16n
	case *contentAny:
		r, ok := right.content.(*contentAny)
		if !ok {
			return false
		}
		l.vals = append(l.vals, r.vals...)
	default:
		return false
	}
	left.length += right.length
	left.right = right.right
	if left.right != nil {
		left.right.left = left
	}
	d.store.truncate(right.id.Client)
	return true
}

// collect drops the content of a deleted item when the document
// garbage-collects, as yjs does at the end of a transaction.
func (d *Doc) collect(it *item) {
	if !d.GC || !it.deleted || it.kind != kindItem {
		return
	}
	d.gcItem(it, false)
}

func (d *Doc) gcItem(it *item, parentGCd bool) {
	if ct, ok := it.content.(*contentType); ok {
		for c := ct.t.start; c != nil; c = c.right {
			d.gcItem(c, true)
		}
		ct.t.start = nil
		for _, c := range ct.t.m {
			for ; c != nil; c = c.left {
				d.gcItem(c, true)
			}
		}
		ct.t.m = map[string]*item{}
	}
	if parentGCd {
		it.kind, it.content, it.deleted = kindGC, nil, true
		return
	}
	it.content = &contentDeleted{it.length}
}
