package yjs

import (
	"fmt"
	"sort"
)

// structStore holds every client's structs ordered by clock, without gaps.
type structStore struct {
	clients map[uint64][]*item
}

func newStructStore() *structStore { return &structStore{clients: map[uint64][]*item{}} }

// state is the next expected clock of client.
func (s *structStore) state(client uint64) uint64 {
	structs := s.clients[client]
	if len(structs) == 0 {
		return 0
	}
	last := structs[len(structs)-1]
	return last.id.Clock + last.length
}

func (s *structStore) add(it *item) error {
	structs := s.clients[it.id.Client]
	if n := len(structs); n > 0 {
		last := structs[n-1]
		if last.id.Clock+last.length != it.id.Clock {
			return fmt.Errorf("yjs: struct %d:%d does not follow the client's last clock %d",
				it.id.Client, it.id.Clock, last.id.Clock+last.length)
		}
	} else if it.id.Clock != 0 {
		return fmt.Errorf("yjs: first struct of client %d starts at clock %d", it.id.Client, it.id.Clock)
	}
	s.clients[it.id.Client] = append(structs, it)
	return nil
}

// findIndex returns the index of the struct holding clock, or -1. Like
// yjs it first guesses the index from the clock, since clocks are dense.
func findIndex(structs []*item, clock uint64) int {
	n := len(structs)
	if n == 0 {
		return -1
	}
	last := structs[n-1]
	if clock >= last.id.Clock+last.length {
		return -1
	}
	if last.id.Clock <= clock {
		return n - 1
	}
	lo, hi := 0, n-1
	mid := int(clock * uint64(hi) / (last.id.Clock + last.length))
	for lo <= hi {
		st := structs[mid]
		switch {
		case clock < st.id.Clock:
			hi = mid - 1
		case clock >= st.id.Clock+st.length:
			lo = mid + 1
		default:
			return mid
		}
		mid = int(uint(lo+hi) >> 1)
	}
	return -1
}

func (s *structStore) find(id ID) (*item, error) {
	structs := s.clients[id.Client]
	i := findIndex(structs, id.Clock)
	if i < 0 {
		return nil, fmt.Errorf("yjs: reference to unknown struct %d:%d", id.Client, id.Clock)
	}
	return structs[i], nil
}

// splitItem cuts left at diff and inserts the right part after it in the
// list and in the store at index i+1.
func (s *structStore) splitItem(i int, left *item, diff uint64) *item {
	right := &item{
		id:             ID{left.id.Client, left.id.Clock + diff},
		length:         left.length - diff,
		kind:           kindItem,
		origin:         ID{left.id.Client, left.id.Clock + diff - 1},
		hasOrigin:      true,
		left:           left,
		right:          left.right,
		rightOrigin:    left.rightOrigin,
		hasRightOrigin: left.hasRightOrigin,
		parent:         left.parent,
		parentSub:      left.parentSub,
		hasParentSub:   left.hasParentSub,
		content:        left.content.splice(diff),
		deleted:        left.deleted,
	}
	left.right = right
	if right.right != nil {
		right.right.left = right
	}
	if right.hasParentSub && right.right == nil && right.parent != nil {
		right.parent.m[right.parentSub] = right
	}
	left.length = diff
	structs := s.clients[left.id.Client]
	structs = append(structs, nil)
	copy(structs[i+2:], structs[i+1:])
	structs[i+1] = right
	s.clients[left.id.Client] = structs
	return right
}

// cleanStart returns the struct starting exactly at id, splitting an item
// if needed.
func (s *structStore) cleanStart(id ID) (*item, error) {
	structs := s.clients[id.Client]
	i := findIndex(structs, id.Clock)
	if i < 0 {
		return nil, fmt.Errorf("yjs: reference to unknown struct %d:%d", id.Client, id.Clock)
	}
	it := structs[i]
	if it.id.Clock < id.Clock && it.kind == kindItem {
		return s.splitItem(i, it, id.Clock-it.id.Clock), nil
	}
	return it, nil
}

// cleanEnd returns the struct ending exactly at id, splitting an item if
// needed.
func (s *structStore) cleanEnd(id ID) (*item, error) {
	structs := s.clients[id.Client]
	i := findIndex(structs, id.Clock)
	if i < 0 {
		return nil, fmt.Errorf("yjs: reference to unknown struct %d:%d", id.Client, id.Clock)
	}
	it := structs[i]
	if id.Clock != it.id.Clock+it.length-1 && it.kind == kindItem {
		s.splitItem(i, it, id.Clock-it.id.Clock+1)
	}
	return it, nil
}

// sortedClients returns the client ids, highest first, the order in which
// yjs writes them.
func (s *structStore) sortedClients() []uint64 {
	cs := make([]uint64, 0, len(s.clients))
	for c := range s.clients {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i] > cs[j] })
	return cs
}
