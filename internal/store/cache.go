package store

import (
	"container/list"
	"sync"
)

// blobCache is an LRU of decoded blobs bounded by their total size. Cached
// slices are shared and must never be modified; Blob hands out copies.
type blobCache struct {
	mu    sync.Mutex
	max   int
	size  int
	ll    *list.List // front = most recently used; values are *cacheEntry
	items map[BlobID]*list.Element
}

type cacheEntry struct {
	id   BlobID
	data []byte
}

func newBlobCache(max int) *blobCache {
	return &blobCache{max: max, ll: list.New(), items: map[BlobID]*list.Element{}}
}

// cacheCost charges a little per entry so that many empty or tiny blobs
// cannot grow the map without bound.
func cacheCost(data []byte) int { return len(data) + 64 }

func (c *blobCache) get(id BlobID) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[id]
	if !ok {
		return nil, false
	}
	c.ll.MoveToFront(el)
	return el.Value.(*cacheEntry).data, true
}

// fits reports whether add would keep data.
func (c *blobCache) fits(data []byte) bool { return cacheCost(data) <= c.max/8 }

// add caches data (not copied: the caller gives it up). Blobs bigger than
// an eighth of the cache are not cached, so one large attachment cannot
// flush the working set of documents.
func (c *blobCache) add(id BlobID, data []byte) {
	if !c.fits(data) {
		return
	}
	cost := cacheCost(data)
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[id]; ok {
		c.ll.MoveToFront(el)
		return
	}
	c.items[id] = c.ll.PushFront(&cacheEntry{id: id, data: data})
	c.size += cost
	for c.size > c.max {
		el := c.ll.Back()
		e := el.Value.(*cacheEntry)
		c.ll.Remove(el)
		delete(c.items, e.id)
		c.size -= cacheCost(e.data)
	}
}
