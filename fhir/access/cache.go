package access

import (
	"context"
	"sync"
)

// Stamp returns a value that changes whenever an organization's
// Visibility may have changed (e.g. the versions of its lists and the
// day); it must be much cheaper than resolving.
type Stamp func(ctx context.Context, organization string) (string, error)

// Cache memoises each organization's Visibility while its Stamp is
// unchanged, so requests of a provider client do not rebuild a 100k-member
// patient set each time. Concurrent requests of one organization that miss
// share one resolution.
type Cache struct {
	resolve Resolver
	stamp   Stamp
	max     int

	mu      sync.Mutex
	entries map[string]*cacheEntry
}

type cacheEntry struct {
	stamp string
	ready chan struct{} // closed when v/err are set
	v     Visibility
	err   error
}

// NewCache returns a cache over resolve, keeping at most max
// organizations (default 64; beyond it an arbitrary one is dropped).
func NewCache(resolve Resolver, stamp Stamp, max int) *Cache {
	if max <= 0 {
		max = 64
	}
	return &Cache{resolve: resolve, stamp: stamp, max: max, entries: map[string]*cacheEntry{}}
}

// Resolve returns the Visibility of organization, from the cache when its
// stamp has not changed. The stamp is read before resolving: a change that
// lands during the resolution yields a new stamp at the next request.
func (c *Cache) Resolve(ctx context.Context, organization string) (Visibility, error) {
	st, err := c.stamp(ctx, organization)
	if err != nil {
		return Visibility{}, err
	}
	c.mu.Lock()
	e := c.entries[organization]
	if e != nil && e.stamp == st {
		c.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return Visibility{}, ctx.Err()
		}
		if e.err == nil {
			return e.v, nil
		}
		// A failed resolution is not kept: retry it below.
		c.mu.Lock()
		if c.entries[organization] == e {
			delete(c.entries, organization)
		}
		c.mu.Unlock()
		return c.Resolve(ctx, organization)
	}
	if len(c.entries) >= c.max && e == nil {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	e = &cacheEntry{stamp: st, ready: make(chan struct{})}
	c.entries[organization] = e
	c.mu.Unlock()
	e.v, e.err = c.resolve(ctx, organization)
	close(e.ready)
	if e.err != nil {
		c.mu.Lock()
		if c.entries[organization] == e {
			delete(c.entries, organization)
		}
		c.mu.Unlock()
	}
	return e.v, e.err
}
