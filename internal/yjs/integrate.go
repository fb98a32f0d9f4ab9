package yjs

import (
	"fmt"
	"sort"
)

// clientRefs is one client's structs read from an update, with a cursor.
type clientRefs struct {
	i    int
	refs []*item
}

// getMissing returns the client of a struct this item depends on that
// the store does not have yet; otherwise it resolves origin, right origin
// and parent to integrated structs. A port of yjs's Item.getMissing.
func (d *Doc) getMissing(it *item) (client uint64, missing bool, err error) {
	s := d.store
	if it.hasOrigin && it.origin.Client != it.id.Client && it.origin.Clock >= s.state(it.origin.Client) {
		return it.origin.Client, true, nil
	}
	if it.hasRightOrigin && it.rightOrigin.Client != it.id.Client && it.rightOrigin.Clock >= s.state(it.rightOrigin.Client) {
		return it.rightOrigin.Client, true, nil
	}
	if it.parentByID && it.parentRef().Client != it.id.Client && it.parentRef().Clock >= s.state(it.parentRef().Client) {
		return it.parentRef().Client, true, nil
	}
	// A reference to the item's own client must point before the item.
	if (it.hasOrigin && it.origin.Client == it.id.Client && it.origin.Clock >= it.id.Clock) ||
		(it.hasRightOrigin && it.rightOrigin.Client == it.id.Client && it.rightOrigin.Clock >= it.id.Clock) ||
		(it.parentByID && it.parentRef().Client == it.id.Client && it.parentRef().Clock >= it.id.Clock) {
		return 0, false, fmt.Errorf("yjs: struct %d:%d refers to its own or a later clock", it.id.Client, it.id.Clock)
	}
	if it.hasOrigin {
		if it.left, err = s.cleanEnd(it.origin); err != nil {
			return 0, false, err
		}
		it.origin = it.left.lastID()
	}
	if it.hasRightOrigin {
		// Without concurrent inserts, the right origin is still the struct
		// right of the left one: no need to search the store for it.
		if it.left != nil && it.left.right != nil && it.left.right.id == it.rightOrigin {
			it.right = it.left.right
		} else if it.right, err = s.cleanStart(it.rightOrigin); err != nil {
			return 0, false, err
		}
		it.rightOrigin = it.right.id
	}
	switch {
	case (it.left != nil && it.left.kind == kindGC) || (it.right != nil && it.right.kind == kindGC):
		it.parent = nil
	case !it.parentByID && !it.parentByRoot:
		if it.left != nil && it.left.kind == kindItem {
			it.parent, it.parentSub, it.hasParentSub = it.left.parent, it.left.parentSub, it.left.hasParentSub
		} else if it.right != nil && it.right.kind == kindItem {
			it.parent, it.parentSub, it.hasParentSub = it.right.parent, it.right.parentSub, it.right.hasParentSub
		}
	case it.parentByID:
		// (An item under a root got its parent when it was read.)
		p, err := s.find(it.parentRef())
		if err != nil {
			return 0, false, err
		}
		if p.kind == kindGC {
			it.parent = nil
		} else if ct, ok := p.content.(*contentType); ok {
			it.parent = ct.t
		} else if _, ok := p.content.(*contentDeleted); ok {
			// The parent type was deleted and its content dropped: yjs
			// would find no type there either, so the item is garbage.
			it.parent = nil
		} else {
			return 0, false, fmt.Errorf("yjs: struct %d:%d has parent %d:%d, which is not a type",
				it.id.Client, it.id.Clock, it.parentRef().Client, it.parentRef().Clock)
		}
	}
	return 0, false, nil
}

func sameOptID(a ID, hasA bool, b ID, hasB bool) bool {
	return hasA == hasB && (!hasA || a == b)
}

// integrate places the item into its parent's list using the YATA rules
// of yjs's Item.integrate; offset drops the first clock units, already known.
func (d *Doc) integrate(it *item, offset uint64) error {
	s := d.store
	if it.kind == kindGC {
		it.deleted = true
		it.id.Clock += offset
		it.length -= offset
		return s.add(it)
	}
	if offset > 0 {
		it.id.Clock += offset
		left, err := s.cleanEnd(ID{it.id.Client, it.id.Clock - 1})
		if err != nil {
			return err
		}
		it.left, it.origin, it.hasOrigin = left, left.lastID(), true
		it.content = it.content.splice(offset)
		it.length -= offset
		if left.kind == kindGC {
			// yjs fails here; the only consistent reading is garbage.
			it.parent = nil
		}
	}
	p := it.parent
	if p == nil {
		it.kind, it.content, it.left, it.right, it.deleted = kindGC, nil, nil, nil, true
		return s.add(it)
	}
	if (it.left == nil && (it.right == nil || it.right.left != nil)) || (it.left != nil && it.left.right != it.right) {
		left := it.left
		var o *item
		switch {
		case left != nil:
			o = left.right
		case it.hasParentSub:
			o = p.m[it.parentSub]
			for o != nil && o.left != nil {
				o = o.left
			}
		default:
			o = p.start
		}
		// conflicting ⊆ before: the items between origin and this one that
		// could still be placed either side.
		var conflicting, before map[*item]struct{}
		for o != nil && o != it.right {
			if before == nil {
				conflicting, before = d.conflictSets()
			}
			before[o] = struct{}{}
			conflicting[o] = struct{}{}
			if sameOptID(it.origin, it.hasOrigin, o.origin, o.hasOrigin) {
				if o.id.Client < it.id.Client {
					left = o
					clear(conflicting)
				} else if sameOptID(it.rightOrigin, it.hasRightOrigin, o.rightOrigin, o.hasRightOrigin) {
					break
				}
			} else if oo := d.originItem(o); oo != nil && inSet(before, oo) {
				if !inSet(conflicting, oo) {
					left = o
					clear(conflicting)
				}
			} else {
				break
			}
			o = o.right
		}
		it.left = left
	}
	if it.left != nil {
		it.right = it.left.right
		it.left.right = it
	} else {
		var r *item
		if it.hasParentSub {
			r = p.m[it.parentSub]
			for r != nil && r.left != nil {
				r = r.left
			}
		} else {
			r = p.start
			p.start = it
		}
		it.right = r
	}
	if it.right != nil {
		it.right.left = it
	} else if it.hasParentSub {
		if p.m == nil {
			p.m = map[string]*item{}
		}
		p.m[it.parentSub] = it
		if it.left != nil {
			d.deleteItem(it.left)
		}
	}
	if !it.hasParentSub && it.countable() && !it.deleted {
		p.length += it.length
	}
	if err := s.add(it); err != nil {
		return err
	}
	switch c := it.content.(type) {
	case *contentType:
		c.t.doc, c.t.item = d, it
	case *contentDeleted:
		it.deleted = true
	}
	if (p.item != nil && p.item.deleted) || (it.hasParentSub && it.right != nil) {
		d.deleteItem(it)
	}
	return nil
}

// conflictSets returns the two empty sets integrate needs, made once per
// document: concurrent edits make conflicts at nearly every item.
func (d *Doc) conflictSets() (conflicting, before map[*item]struct{}) {
	// clear costs the map's capacity: after a large conflict, start over
	// rather than pay for its size at every small one.
	if len(d.before) > 256 || d.before == nil {
		d.conflicting, d.before = map[*item]struct{}{}, map[*item]struct{}{}
	}
	clear(d.conflicting)
	clear(d.before)
	return d.conflicting, d.before
}

func inSet(set map[*item]struct{}, it *item) bool {
	_, ok := set[it]
	return ok
}

// originItem returns the struct holding o's origin without splitting it.
func (d *Doc) originItem(o *item) *item {
	if !o.hasOrigin {
		return nil
	}
	it, err := d.store.find(o.origin)
	if err != nil {
		return nil
	}
	return it
}

// deleteItem marks it deleted and, for a type, everything inside it.
// Iterative, so that deep nesting cannot exhaust the stack.
func (d *Doc) deleteItem(it *item) {
	stack := []*item{it}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if it.deleted || it.kind != kindItem {
			continue
		}
		if it.countable() && !it.hasParentSub && it.parent != nil {
			it.parent.length -= it.length
		}
		it.deleted = true
		if d.inLocal {
			d.localDeletes.add(it.id.Client, it.id.Clock, it.length)
		}
		if ct, ok := it.content.(*contentType); ok {
			for c := ct.t.start; c != nil; c = c.right {
				if !c.deleted {
					stack = append(stack, c)
				}
			}
			for _, c := range ct.t.m {
				if !c.deleted {
					stack = append(stack, c)
				}
			}
		}
	}
}

// integrateStructs integrates the structs of an update in causal order,
// returning those that depend on structs the document does not have.
// A port of yjs's integrateStructs.
func (d *Doc) integrateStructs(refsByClient map[uint64]*clientRefs) (rest map[uint64][]*item, missingSV map[uint64]uint64, err error) {
	ids := make([]uint64, 0, len(refsByClient))
	for c := range refsByClient {
		ids = append(ids, c)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	next := func() *clientRefs {
		for len(ids) > 0 {
			t := refsByClient[ids[len(ids)-1]]
			if t != nil && t.i < len(t.refs) {
				return t
			}
			ids = ids[:len(ids)-1]
		}
		return nil
	}
	for c, t := range refsByClient {
		d.store.reserve(c, len(t.refs)-t.i)
	}
	cur := next()
	if cur == nil {
		return nil, nil, nil
	}
	rest = map[uint64][]*item{}
	missingSV = map[uint64]uint64{}
	updateMissing := func(client, clock uint64) {
		if m, ok := missingSV[client]; !ok || m > clock {
			missingSV[client] = clock
		}
	}
	var stack []*item
	addStackToRest := func() {
		for _, it := range stack {
			c := it.id.Client
			if t := refsByClient[c]; t != nil {
				t.i--
				rest[c] = append([]*item(nil), t.refs[t.i:]...)
				delete(refsByClient, c)
				t.i, t.refs = 0, nil
			} else {
				rest[c] = []*item{it}
			}
			for k := 0; k < len(ids); k++ {
				if ids[k] == c {
					ids = append(ids[:k], ids[k+1:]...)
					k--
				}
			}
		}
		stack = stack[:0]
	}
	head := cur.refs[cur.i]
	cur.i++
	for {
		if head.kind != kindSkip {
			local := d.store.state(head.id.Client)
			if local < head.id.Clock {
				stack = append(stack, head)
				updateMissing(head.id.Client, head.id.Clock-1)
				addStackToRest()
			} else {
				offset := local - head.id.Clock
				mc, missing, err := d.getMissing(head)
				if err != nil {
					return nil, nil, err
				}
				if missing {
					stack = append(stack, head)
					t := refsByClient[mc]
					if t == nil || t.i == len(t.refs) {
						updateMissing(mc, d.store.state(mc))
						addStackToRest()
					} else {
						head = t.refs[t.i]
						t.i++
						continue
					}
				} else if offset < head.length {
					if err := d.integrate(head, offset); err != nil {
						return nil, nil, err
					}
				}
			}
		}
		switch {
		case len(stack) > 0:
			head = stack[len(stack)-1]
			stack = stack[:len(stack)-1]
		case cur != nil && cur.i < len(cur.refs):
			head = cur.refs[cur.i]
			cur.i++
		default:
			if cur = next(); cur == nil {
				if len(rest) == 0 {
					return nil, nil, nil
				}
				return rest, missingSV, nil
			}
			head = cur.refs[cur.i]
			cur.i++
		}
	}
}

// deleteSet maps a client to sorted, possibly overlapping clock ranges.
type deleteSet map[uint64][]deleteRange

type deleteRange struct{ clock, len uint64 }

func (ds deleteSet) add(client, clock, n uint64) {
	ds[client] = append(ds[client], deleteRange{clock, n})
}

// applyDeleteSet deletes the ranges the store has and returns the rest,
// as yjs's readAndApplyDeleteSet does.
func (d *Doc) applyDeleteSet(ds deleteSet) deleteSet {
	s := d.store
	rest := deleteSet{}
	clients := make([]uint64, 0, len(ds))
	for c := range ds {
		clients = append(clients, c)
	}
	sort.Slice(clients, func(i, j int) bool { return clients[i] > clients[j] })
	for _, client := range clients {
		for _, r := range ds[client] {
			state := s.state(client)
			clock, end := r.clock, r.clock+r.len
			if clock >= state {
				rest.add(client, clock, r.len)
				continue
			}
			if state < end {
				rest.add(client, state, end-state)
			}
			structs := s.structs(client)
			i := s.findIndex(client, clock)
			st := structs[i]
			if !st.deleted && st.kind == kindItem && st.id.Clock < clock {
				s.splitItem(i, st, clock-st.id.Clock)
				i++
			}
			for {
				structs = s.structs(client)
				if i >= len(structs) {
					break
				}
				st = structs[i]
				i++
				if st.id.Clock >= end {
					break
				}
				if !st.deleted && st.kind == kindItem {
					if end < st.id.Clock+st.length {
						s.splitItem(i-1, st, end-st.id.Clock)
					}
					d.deleteItem(st)
				}
			}
		}
	}
	return rest
}
