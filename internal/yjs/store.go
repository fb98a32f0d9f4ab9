package yjs

import (
	"fmt"
	"slices"
	"sort"
)

// structStore holds every client's structs ordered by clock, without gaps.
// Updates come in runs of one client's structs, so the last client looked
// up is kept to spare a map lookup on nearly every access.
type structStore struct {
	clients map[uint64]*clientStructs
	cache   *clientStructs
	// hints holds the capacity for the first structs of clients the store
	// does not have yet (reserve).
	hints map[uint64]int
}

type clientStructs struct {
	client  uint64
	structs []*item
	// clocks[i] is structs[i].id.Clock: findIndex searches these 8 bytes
	// a struct, adjacent in memory, rather than chasing a pointer to an
	// item at every step (most of the search's cost, in cache misses).
	clocks []uint64
}

func newStructStore() *structStore { return &structStore{clients: map[uint64]*clientStructs{}} }

// get returns client's structs, or nil if the store has none of them.
func (s *structStore) get(client uint64) *clientStructs {
	if c := s.cache; c != nil && c.client == client {
		return c
	}
	c := s.clients[client]
	if c != nil {
		s.cache = c
	}
	return c
}

// structs returns client's structs ordered by clock.
func (s *structStore) structs(client uint64) []*item {
	if c := s.get(client); c != nil {
		return c.structs
	}
	return nil
}

// has reports whether the store holds structs of client.
func (s *structStore) has(client uint64) bool { return s.get(client) != nil }

// reserve makes room for n more structs of client, as integrating an
// update's structs of one client appends them one by one.
func (s *structStore) reserve(client uint64, n int) {
	if c := s.get(client); c != nil {
		c.structs = slices.Grow(c.structs, n)
		c.clocks = slices.Grow(c.clocks, n)
	} else {
		if s.hints == nil {
			s.hints = map[uint64]int{}
		}
		s.hints[client] = n
	}
}

// state is the next expected clock of client.
func (s *structStore) state(client uint64) uint64 {
	c := s.get(client)
	if c == nil || len(c.structs) == 0 {
		return 0
	}
	last := c.structs[len(c.structs)-1]
	return last.id.Clock + last.length
}

func (s *structStore) add(it *item) error {
	c := s.get(it.id.Client)
	if c == nil {
		n := s.hints[it.id.Client]
		delete(s.hints, it.id.Client)
		c = &clientStructs{client: it.id.Client, structs: make([]*item, 0, n), clocks: make([]uint64, 0, n)}
		s.clients[it.id.Client] = c
		s.cache = c
	}
	if n := len(c.structs); n > 0 {
		last := c.structs[n-1]
		if last.id.Clock+last.length != it.id.Clock {
			return fmt.Errorf("yjs: struct %d:%d does not follow the client's last clock %d",
				it.id.Client, it.id.Clock, last.id.Clock+last.length)
		}
	} else if it.id.Clock != 0 {
		return fmt.Errorf("yjs: first struct of client %d starts at clock %d", it.id.Client, it.id.Clock)
	}
	c.structs = append(c.structs, it)
	c.clocks = append(c.clocks, it.id.Clock)
	return nil
}

// truncate drops client's last struct (merged into the one before it).
func (s *structStore) truncate(client uint64) {
	c := s.get(client)
	c.structs = c.structs[:len(c.structs)-1]
	c.clocks = c.clocks[:len(c.clocks)-1]
}

// findIndex returns the index of client's struct holding clock, or -1.
func (s *structStore) findIndex(client, clock uint64) int {
	c := s.get(client)
	if c == nil || len(c.structs) == 0 {
		return -1
	}
	n := len(c.structs)
	last := c.structs[n-1]
	if clock >= last.id.Clock+last.length {
		return -1
	}
	if clock >= c.clocks[n-1] {
		return n - 1
	}
	// Structs have no gaps and the first starts at 0: the struct holding
	// clock is the last one starting at or before it.
	i, found := slices.BinarySearch(c.clocks, clock)
	if !found {
		i--
	}
	return i
}

func (s *structStore) find(id ID) (*item, error) {
	i := s.findIndex(id.Client, id.Clock)
	if i < 0 {
		return nil, fmt.Errorf("yjs: reference to unknown struct %d:%d", id.Client, id.Clock)
	}
	return s.get(id.Client).structs[i], nil
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
	c := s.get(left.id.Client)
	c.structs = slices.Insert(c.structs, i+1, right)
	c.clocks = slices.Insert(c.clocks, i+1, right.id.Clock)
	return right
}

// cleanStart returns the struct starting exactly at id, splitting an item
// if needed.
func (s *structStore) cleanStart(id ID) (*item, error) {
	i := s.findIndex(id.Client, id.Clock)
	if i < 0 {
		return nil, fmt.Errorf("yjs: reference to unknown struct %d:%d", id.Client, id.Clock)
	}
	it := s.get(id.Client).structs[i]
	if it.id.Clock < id.Clock && it.kind == kindItem {
		return s.splitItem(i, it, id.Clock-it.id.Clock), nil
	}
	return it, nil
}

// cleanEnd returns the struct ending exactly at id, splitting an item if
// needed.
func (s *structStore) cleanEnd(id ID) (*item, error) {
	i := s.findIndex(id.Client, id.Clock)
	if i < 0 {
		return nil, fmt.Errorf("yjs: reference to unknown struct %d:%d", id.Client, id.Clock)
	}
	it := s.get(id.Client).structs[i]
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
