package keystoneclient

import (
	"container/list"
	"sync"
	"time"

	"github.com/vflink/vflink/internal/auth"
)

// tokenKey is the SHA-256 of a token: the cache never holds a token itself.
type tokenKey [32]byte

// cacheEntry is one validation result: the caller (valid) or the refusal (invalid), until a time.
type cacheEntry struct {
	key   tokenKey
	until time.Time
	who   *auth.Context // nil when refused
	err   error         // the refusal, wrapping auth.ErrUnauthenticated
}

// resultCache holds at most max entries in insertion order. Entries are dropped when looked up
// after their time, when they are the oldest and expired at an insertion, or when they are the
// oldest and the cache is full.
type resultCache struct {
	max int

	mu    sync.Mutex
	byKey map[tokenKey]*list.Element
	order *list.List // of *cacheEntry, oldest first
}

func newResultCache(max int) *resultCache {
	return &resultCache{max: max, byKey: make(map[tokenKey]*list.Element), order: list.New()}
}

// get returns the entry of key when it is still valid at now.
func (c *resultCache) get(key tokenKey, now time.Time) (*cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.until) {
		c.remove(el)
		return nil, false
	}
	return e, true
}

// put adds e (replacing an entry of the same key), evicting expired entries from the oldest end
// and then the oldest ones while the cache is full.
func (c *resultCache) put(e *cacheEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[e.key]; ok {
		c.remove(el)
	}
	for el := c.order.Front(); el != nil && !now.Before(el.Value.(*cacheEntry).until); el = c.order.Front() {
		c.remove(el)
	}
	for c.order.Len() >= c.max {
		c.remove(c.order.Front())
	}
	c.byKey[e.key] = c.order.PushBack(e)
}

// drop removes the entry of key, if any.
func (c *resultCache) drop(key tokenKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[key]; ok {
		c.remove(el)
	}
}

func (c *resultCache) remove(el *list.Element) {
	delete(c.byKey, el.Value.(*cacheEntry).key)
	c.order.Remove(el)
}

func (c *resultCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
