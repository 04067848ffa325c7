package cached

import (
	"container/list"
	"sync"
	"time"

	"github.com/statenode/statenode/backends"
)

// lru is a size-bounded map with per-entry expiry, safe for concurrent use.
type lru struct {
	mu    sync.Mutex
	size  int
	ll    *list.List // front: most recently used
	items map[string]*list.Element
}

type lruEntry struct {
	key     string
	v       backends.VersionedValue
	expires time.Time
}

func newLRU(size int) *lru {
	return &lru{size: size, ll: list.New(), items: make(map[string]*list.Element, size)}
}

func (c *lru) get(key string, now time.Time) (backends.VersionedValue, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return backends.VersionedValue{}, false
	}
	e := el.Value.(*lruEntry)
	if !now.Before(e.expires) {
		c.ll.Remove(el)
		delete(c.items, key)
		return backends.VersionedValue{}, false
	}
	c.ll.MoveToFront(el)
	return e.v, true
}

// set stores v unless a newer version of key is cached (a slow read must
// not replace a newer write).
func (c *lru) set(key string, v backends.VersionedValue, expires time.Time, force bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		e := el.Value.(*lruEntry)
		if !force && e.v.Version > v.Version {
			return
		}
		e.v, e.expires = v, expires
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(&lruEntry{key: key, v: v, expires: expires})
	for c.ll.Len() > c.size {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*lruEntry).key)
	}
}

func (c *lru) remove(keys ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		if el, ok := c.items[k]; ok {
			c.ll.Remove(el)
			delete(c.items, k)
		}
	}
}

func (c *lru) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ll.Init()
	clear(c.items)
}

func (c *lru) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
