package fusefs

import (
	"container/list"
	"sync"
)

// lru is a size-bounded LRU cache whose loads are shared: concurrent gets of
// a missing key run load once. Failed loads are not cached. The newest
// entry is never evicted, so one value larger than the bound still stays
// until the next one arrives (a big file read in small pieces is loaded
// once, not once per read).
type lru[K comparable, V any] struct {
	max     int64
	sizeOf  func(V) int64
	onEvict func(V) // called for each value dropped (nil = nothing to do)

	mu    sync.Mutex
	size  int64
	ll    *list.List // front = most recently used; values are *lruItem[K, V]
	items map[K]*list.Element
	calls map[K]*lruCall[V]
}

type lruItem[K comparable, V any] struct {
	key  K
	val  V
	size int64
}

type lruCall[V any] struct {
	done chan struct{}
	val  V
	err  error
}

func newLRU[K comparable, V any](max int64, sizeOf func(V) int64) *lru[K, V] {
	return &lru[K, V]{max: max, sizeOf: sizeOf, ll: list.New(), items: map[K]*list.Element{}, calls: map[K]*lruCall[V]{}}
}

func (c *lru[K, V]) get(key K, load func() (V, error)) (V, error) {
	c.mu.Lock()
	if el, ok := c.items[key]; ok {
		c.ll.MoveToFront(el)
		v := el.Value.(*lruItem[K, V]).val
		c.mu.Unlock()
		return v, nil
	}
	if call, ok := c.calls[key]; ok {
		c.mu.Unlock()
		<-call.done
		return call.val, call.err
	}
	call := &lruCall[V]{done: make(chan struct{})}
	c.calls[key] = call
	c.mu.Unlock()

	call.val, call.err = load()

	c.mu.Lock()
	delete(c.calls, key)
	if call.err == nil {
		it := &lruItem[K, V]{key: key, val: call.val, size: c.sizeOf(call.val)}
		c.items[key] = c.ll.PushFront(it)
		c.size += it.size
		for c.size > c.max && c.ll.Len() > 1 {
			old := c.ll.Remove(c.ll.Back()).(*lruItem[K, V])
			delete(c.items, old.key)
			c.size -= old.size
			if c.onEvict != nil {
				c.onEvict(old.val)
			}
		}
	}
	c.mu.Unlock()
	close(call.done)
	return call.val, call.err
}

// purge drops every value.
func (c *lru[K, V]) purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.ll.Front(); el != nil; el = el.Next() {
		if c.onEvict != nil {
			c.onEvict(el.Value.(*lruItem[K, V]).val)
		}
	}
	c.ll.Init()
	c.items = map[K]*list.Element{}
	c.size = 0
}
