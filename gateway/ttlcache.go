package gateway

import (
	"context"
	"sync"
	"time"
)

// ttlCache holds what the gateway read from metad about a few named
// things (access keys, buckets' CORS rules) for a short while, so that a
// request does not cost a metad read each, and so that concurrent
// requests needing the same name share one read. A failed read is given
// to the requests that waited for it and not kept.
type ttlCache[V any] struct {
	now func() time.Time
	max int // entries; the cache is emptied when full

	mu sync.Mutex
	m  map[string]*cacheEntry[V]
}

// cacheEntry is one read: in flight until ready is closed.
type cacheEntry[V any] struct {
	ready chan struct{}
	v     V
	err   error
	read  time.Time
}

func newTTLCache[V any](now func() time.Time, max int) *ttlCache[V] {
	return &ttlCache[V]{now: now, max: max, m: make(map[string]*cacheEntry[V])}
}

// get returns what read answered for name, reading again unless what the
// cache holds is fresh: fresh(v, age) decides, so a caller may trust some
// answers longer than others.
func (c *ttlCache[V]) get(ctx context.Context, name string, fresh func(v V, age time.Duration) bool, read func(context.Context) (V, error)) (V, error) {
	for {
		c.mu.Lock()
		e, ok := c.m[name]
		if ok {
			select {
			case <-e.ready:
				if e.err == nil && fresh(e.v, c.now().Sub(e.read)) {
					c.mu.Unlock()
					return e.v, nil
				}
				ok = false // stale, or the read failed: read again
			default:
			}
		}
		if !ok {
			if len(c.m) >= c.max {
				clear(c.m)
			}
			e = &cacheEntry[V]{ready: make(chan struct{})}
			c.m[name] = e
			c.mu.Unlock()
			e.v, e.err = read(ctx)
			e.read = c.now()
			close(e.ready)
			return e.v, e.err
		}
		c.mu.Unlock()
		select {
		case <-e.ready:
			if e.err == nil || ctx.Err() != nil {
				return e.v, e.err
			}
			// The reader's own context may have ended its read; try
			// with ours.
		case <-ctx.Done():
			var zero V
			return zero, ctx.Err()
		}
	}
}

// forget drops what was read of name: it changed through this gateway.
func (c *ttlCache[V]) forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, name)
}
