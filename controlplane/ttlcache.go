package controlplane

import (
	"sync"
	"time"
)

// cacheShards is the number of shards of a ttlCache.
const cacheShards = 32

// ttlCache keeps values by secret hash (a SHA-256) in shards, each with its
// own mutex, so concurrent requests with different secrets rarely wait on
// one another. It serves the API tokens (entries expire, so a revoked or
// changed token is read again) and the heartbeat's clients (entries never
// expire: a client's identity never changes).
//
// Memory is bounded per shard: a shard that is full starts over, refilled
// by the next misses. Unknown secrets are never cached (callers put only
// what the store returned), so a secret created a moment ago works at once.
//
// Configure it with init before use; a hit allocates nothing.
type ttlCache[V any] struct {
	ttl      time.Duration    // 0: entries never expire
	perShard int              // entries a shard holds before it starts over
	now      func() time.Time // read only when ttl > 0
	epoch    time.Time        // now() at init: entry times count from it
	shards   [cacheShards]ttlShard[V]
}

type ttlShard[V any] struct {
	mu sync.Mutex
	m  map[[32]byte]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v V
	// fetched is the time of the put since the cache's epoch (0 without
	// expiry): 8 bytes, and on the monotonic clock like time.Since.
	fetched time.Duration
}

// init sets the cache's expiry (0: none; now is then unused and may be
// nil) and its bound of about maxEntries in all.
func (c *ttlCache[V]) init(ttl time.Duration, maxEntries int, now func() time.Time) {
	c.ttl, c.now = ttl, now
	if ttl > 0 {
		c.epoch = now()
	}
	c.perShard = max(maxEntries/cacheShards, 1)
}

func (c *ttlCache[V]) shard(key [32]byte) *ttlShard[V] {
	return &c.shards[(uint32(key[0])|uint32(key[1])<<8)%cacheShards]
}

// get returns the value cached for key, if there is one not older than
// the cache's ttl.
func (c *ttlCache[V]) get(key [32]byte) (V, bool) {
	sh := c.shard(key)
	sh.mu.Lock()
	e, ok := sh.m[key]
	sh.mu.Unlock()
	if ok && c.ttl > 0 && c.now().Sub(c.epoch)-e.fetched > c.ttl {
		ok = false
	}
	if !ok {
		var zero V
		return zero, false
	}
	return e.v, true
}

// put caches v for key.
func (c *ttlCache[V]) put(key [32]byte, v V) {
	e := ttlEntry[V]{v: v}
	if c.ttl > 0 {
		e.fetched = c.now().Sub(c.epoch)
	}
	sh := c.shard(key)
	sh.mu.Lock()
	if sh.m == nil || len(sh.m) >= c.perShard {
		sh.m = map[[32]byte]ttlEntry[V]{}
	}
	sh.m[key] = e
	sh.mu.Unlock()
}
