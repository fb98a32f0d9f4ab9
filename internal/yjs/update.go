package yjs

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
)

// ApplyUpdate integrates a Yjs update (v1 encoding) into the document.
// Structs and deletions whose dependencies are missing are kept and
// integrated when a later update brings what they need, as yjs does.
//
// Malformed input returns an error and never panics; after an error the
// document may hold part of the update and should be discarded.
func (d *Doc) ApplyUpdate(update []byte) error {
	r := &reader{buf: update}
	refs, err := d.readStructs(r)
	if err != nil {
		return fmt.Errorf("yjs: reading structs: %w", err)
	}
	ds, err := readDeleteSet(r)
	if err != nil {
		return fmt.Errorf("yjs: reading delete set: %w", err)
	}
	return d.apply(refs, ds)
}

func (d *Doc) apply(refs map[uint64]*clientRefs, ds deleteSet) error {
	rest, missing, err := d.integrateStructs(refs)
	if err != nil {
		return err
	}
	retry := false
	if len(d.pendingStructs) > 0 {
		for c, clock := range d.pendingMissing {
			if clock < d.store.state(c) {
				retry = true
				break
			}
		}
		for c, clock := range missing {
			if m, ok := d.pendingMissing[c]; !ok || m > clock {
				d.pendingMissing[c] = clock
			}
		}
		for c, items := range rest {
			d.pendingStructs[c] = mergeRefs(d.pendingStructs[c], items)
		}
	} else {
		d.pendingStructs, d.pendingMissing = rest, missing
	}
	restDS := d.applyDeleteSet(ds)
	if len(d.pendingDeletes) > 0 {
		pending := d.pendingDeletes
		d.pendingDeletes = nil
		for c, rs := range d.applyDeleteSet(pending) {
			restDS[c] = append(restDS[c], rs...)
		}
	}
	if len(restDS) > 0 {
		d.pendingDeletes = restDS
	}
	if retry {
		pending := d.pendingStructs
		d.pendingStructs, d.pendingMissing = nil, nil
		refs := make(map[uint64]*clientRefs, len(pending))
		for c, items := range pending {
			refs[c] = &clientRefs{refs: items}
		}
		return d.apply(refs, nil)
	}
	return nil
}

// mergeRefs unites two clock-ordered struct lists of one client. Overlaps
// are harmless: integration skips clock ranges the store already has.
func mergeRefs(a, b []*item) []*item {
	out := append(append(make([]*item, 0, len(a)+len(b)), a...), b...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].id.Clock < out[j].id.Clock })
	return out
}

// readStructs reads the struct section of a v1 update.
func (d *Doc) readStructs(r *reader) (map[uint64]*clientRefs, error) {
	numClients, err := r.count(3)
	if err != nil {
		return nil, err
	}
	refs := make(map[uint64]*clientRefs, numClients)
	var slab contentSlab
	for range numClients {
		numStructs, err := r.count(2)
		if err != nil {
			return nil, err
		}
		client, err := r.varUint()
		if err != nil {
			return nil, err
		}
		clock, err := r.varUint()
		if err != nil {
			return nil, err
		}
		items := make([]*item, numStructs)
		// One allocation for the client's structs: documents hold many.
		backing := make([]item, numStructs)
		for i := range items {
			it := &backing[i]
			it.id = ID{client, clock}
			if err := d.readStruct(r, it, &slab, numStructs-i); err != nil {
				return nil, fmt.Errorf("struct %d:%d: %w", client, clock, err)
			}
			if it.length == 0 {
				return nil, fmt.Errorf("struct %d:%d has length 0", client, clock)
			}
			clock += it.length
			if clock > maxSafeInteger {
				return nil, fmt.Errorf("struct %d:%d: clock exceeds 2^53", client, clock)
			}
			items[i] = it
		}
		if prev := refs[client]; prev != nil {
			items = mergeRefs(prev.refs, items)
		}
		refs[client] = &clientRefs{refs: items}
	}
	return refs, nil
}

// contentSlab hands out the contents most structs hold, strings and
// deletions, from chunks: one allocation per chunk, not per struct.
type contentSlab struct {
	strs []contentString
	dels []contentDeleted
	anys []contentAny
	vals []any
}

// slabChunk is the most contents of a kind one chunk holds.
const slabChunk = 1024

// str returns a new string content; left is how many structs of the
// client are still to read (with this one), which no chunk need exceed.
func (s *contentSlab) str(str string, utf16n uint64, left int) *contentString {
	if len(s.strs) == cap(s.strs) {
		s.strs = make([]contentString, 0, min(left, slabChunk))
	}
	s.strs = append(s.strs, contentString{s: str, utf16n: utf16n})
	return &s.strs[len(s.strs)-1]
}

func (s *contentSlab) del(n uint64, left int) *contentDeleted {
	if len(s.dels) == cap(s.dels) {
		s.dels = make([]contentDeleted, 0, min(left, slabChunk))
	}
	s.dels = append(s.dels, contentDeleted{n})
	return &s.dels[len(s.dels)-1]
}

// any returns a new Any content of n values, to be filled.
func (s *contentSlab) any(n, left int) *contentAny {
	if len(s.anys) == cap(s.anys) {
		s.anys = make([]contentAny, 0, min(left, slabChunk))
	}
	if n > cap(s.vals)-len(s.vals) {
		s.vals = make([]any, 0, max(n, min(left, slabChunk)))
	}
	start := len(s.vals)
	s.vals = s.vals[:start+n]
	// Capped, so that appending to one content's values (tryMerge) moves
	// them rather than overwriting the next content's.
	s.anys = append(s.anys, contentAny{s.vals[start : start+n : start+n]})
	return &s.anys[len(s.anys)-1]
}

func (d *Doc) readStruct(r *reader, it *item, slab *contentSlab, left int) error {
	info, err := r.byte()
	if err != nil {
		return err
	}
	switch info & 0x1f {
	case refGC:
		it.kind, it.deleted = kindGC, true
		it.length, err = r.varUint()
		return err
	case refSkip:
		it.kind = kindSkip
		it.length, err = r.varUint()
		return err
	}
	if info&0x80 != 0 {
		if it.origin, err = readID(r); err != nil {
			return err
		}
		it.hasOrigin = true
	}
	if info&0x40 != 0 {
		if it.rightOrigin, err = readID(r); err != nil {
			return err
		}
		it.hasRightOrigin = true
	}
	if info&0xc0 == 0 {
		isRoot, err := r.varUint()
		if err != nil {
			return err
		}
		if isRoot == 1 {
			name, err := r.string()
			if err != nil {
				return err
			}
			it.parentByRoot = true
			// yjs creates the root type as soon as it reads its name.
			it.parent = d.root(name)
		} else {
			if it.rightOrigin, err = readID(r); err != nil {
				return err
			}
			it.parentByID = true
		}
		if info&0x20 != 0 {
			if it.parentSub, err = r.string(); err != nil {
				return err
			}
			it.hasParentSub = true
		}
	}
	switch info & 0x1f {
	case refString:
		s, n, err := r.stringUTF16()
		if err != nil {
			return err
		}
		c := slab.str(s, n, left)
		it.content, it.length = c, c.utf16n
		return nil
	case refDeleted:
		n, err := r.varUint()
		it.content, it.length = slab.del(n, left), n
		return err
	case refAny:
		n, err := r.count(1)
		if err != nil {
			return err
		}
		c := slab.any(n, left)
		for i := range c.vals {
			if c.vals[i], err = r.any(0); err != nil {
				return err
			}
		}
		it.content, it.length = c, uint64(n)
		return nil
	}
	it.content, it.length, err = d.readContent(r, info&0x1f)
	return err
}

func readID(r *reader) (ID, error) {
	client, err := r.varUint()
	if err != nil {
		return ID{}, err
	}
	clock, err := r.varUint()
	return ID{client, clock}, err
}

// readContent reads the contents readStruct leaves to it: the rarer kinds.
func (d *Doc) readContent(r *reader, ref byte) (content, uint64, error) {
	switch ref {
	case refJSON:
		n, err := r.count(1)
		if err != nil {
			return nil, 0, err
		}
		vals := make([]any, n)
		for i := range vals {
			s, err := r.string()
			if err != nil {
				return nil, 0, err
			}
			if s == "undefined" {
				vals[i] = Undefined{}
				continue
			}
			if vals[i], err = parseJSON(s); err != nil {
				return nil, 0, err
			}
		}
		return &contentJSON{vals}, uint64(n), nil
	case refBinary:
		b, err := r.bytes()
		return &contentBinary{append([]byte(nil), b...)}, 1, err
	case refEmbed:
		s, err := r.string()
		if err != nil {
			return nil, 0, err
		}
		v, err := parseJSON(s)
		return &contentEmbed{v}, 1, err
	case refFormat:
		key, err := r.string()
		if err != nil {
			return nil, 0, err
		}
		s, err := r.string()
		if err != nil {
			return nil, 0, err
		}
		v, err := parseJSON(s)
		return &contentFormat{key, v}, 1, err
	case refType:
		ref, err := r.varUint()
		if err != nil {
			return nil, 0, err
		}
		k, ok := kindFromTypeRef(ref)
		if !ok {
			return nil, 0, fmt.Errorf("unknown type ref %d", ref)
		}
		t := newType(d, k, "")
		if k == KindXMLElement || k == KindXMLHook {
			if t.name, err = r.string(); err != nil {
				return nil, 0, err
			}
		}
		return &contentType{t}, 1, nil
	case refDoc:
		guid, err := r.string()
		if err != nil {
			return nil, 0, err
		}
		opts, err := r.any(0)
		return &contentDoc{guid, opts}, 1, err
	}
	return nil, 0, fmt.Errorf("unknown content ref %d", ref)
}

func parseJSON(s string) (any, error) {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("invalid JSON content: %w", err)
	}
	return v, nil
}

func readDeleteSet(r *reader) (deleteSet, error) {
	numClients, err := r.count(2)
	if err != nil {
		return nil, err
	}
	ds := deleteSet{}
	for range numClients {
		client, err := r.varUint()
		if err != nil {
			return nil, err
		}
		n, err := r.count(2)
		if err != nil {
			return nil, err
		}
		ranges := slices.Grow(ds[client], n)
		for range n {
			clock, err := r.varUint()
			if err != nil {
				return nil, err
			}
			length, err := r.varUint()
			if err != nil {
				return nil, err
			}
			if clock+length > maxSafeInteger {
				return nil, fmt.Errorf("delete range %d:%d+%d exceeds 2^53", client, clock, length)
			}
			ranges = append(ranges, deleteRange{clock, length})
		}
		if len(ranges) > 0 {
			ds[client] = ranges
		}
	}
	return ds, nil
}

// EncodeStateAsUpdate encodes the document's integrated state as a v1
// update, as yjs's encodeStateAsUpdate does: clients from the highest id
// down, then the delete set. Pending structs are not included.
func (d *Doc) EncodeStateAsUpdate() ([]byte, error) {
	w := &writer{}
	clients := d.store.sortedClients()
	w.varUint(uint64(len(clients)))
	for _, c := range clients {
		structs := d.store.structs(c)
		w.varUint(uint64(len(structs)))
		w.varUint(c)
		w.varUint(structs[0].id.Clock)
		for _, it := range structs {
			if err := writeStruct(w, it, 0); err != nil {
				return nil, err
			}
		}
	}
	writeStoreDeleteSet(w, d.store, clients)
	return w.buf, nil
}

// writeStruct writes it without its first offset clock units, as yjs's
// Item.write and GC.write do: the rest of an item then has the unit before
// it as its origin.
func writeStruct(w *writer, it *item, offset uint64) error {
	if it.kind == kindGC {
		w.byte(refGC)
		w.varUint(it.length - offset)
		return nil
	}
	origin, hasOrigin := it.origin, it.hasOrigin
	if offset > 0 {
		origin, hasOrigin = ID{it.id.Client, it.id.Clock + offset - 1}, true
	}
	info := it.content.ref()
	if hasOrigin {
		info |= 0x80
	}
	if it.hasRightOrigin {
		info |= 0x40
	}
	if it.hasParentSub {
		info |= 0x20
	}
	w.byte(info)
	if hasOrigin {
		w.varUint(origin.Client)
		w.varUint(origin.Clock)
	}
	if it.hasRightOrigin {
		w.varUint(it.rightOrigin.Client)
		w.varUint(it.rightOrigin.Clock)
	}
	if !hasOrigin && !it.hasRightOrigin {
		if p := it.parent; p.item == nil {
			w.varUint(1)
			w.string(p.name)
		} else {
			w.varUint(0)
			w.varUint(p.item.id.Client)
			w.varUint(p.item.id.Clock)
		}
		if it.hasParentSub {
			w.string(it.parentSub)
		}
	}
	return it.content.write(w, offset)
}

// writeStoreDeleteSet writes every deleted clock range of the store,
// merging runs of deleted structs.
func writeStoreDeleteSet(w *writer, s *structStore, clients []uint64) {
	ow := &writer{}
	n := 0
	for _, c := range clients {
		var ranges []deleteRange
		for _, it := range s.structs(c) {
			if !it.deleted {
				continue
			}
			if k := len(ranges); k > 0 && ranges[k-1].clock+ranges[k-1].len == it.id.Clock {
				ranges[k-1].len += it.length
				continue
			}
			ranges = append(ranges, deleteRange{it.id.Clock, it.length})
		}
		if len(ranges) == 0 {
			continue
		}
		n++
		ow.varUint(c)
		ow.varUint(uint64(len(ranges)))
		for _, r := range ranges {
			ow.varUint(r.clock)
			ow.varUint(r.len)
		}
	}
	w.varUint(uint64(n))
	w.buf = append(w.buf, ow.buf...)
}
