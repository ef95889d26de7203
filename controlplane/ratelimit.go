package controlplane

import (
	"sync"
	"time"
)

// rateLimiter counts requests per key (a token id, or a client address for
// unauthenticated requests) in fixed windows, as Okta does: the reply
// headers give the limit, what remains and when the window resets.
//
// The counts live in this replica's memory: with N replicas behind a load
// balancer a token may make up to N times the limit.
type rateLimiter struct {
	limit  int
	window time.Duration
	now    func() time.Time
	// The heartbeat limiter holds a key per host and is taken by every
	// heartbeat: shards, each with its own lock and sweep, so heartbeats
	// of different hosts rarely wait on one another.
	shards [hbShards]limiterShard
}

type limiterShard struct {
	mu      sync.Mutex
	buckets map[string]bucket
	swept   time.Time
}

// bucket is one key's window: kept in the map by value, 16 bytes a key
// (the heartbeat limiter holds one per host) and no allocation per key.
type bucket struct {
	start int64 // the window's start, in Unix nanoseconds
	count int
}

// quota is the outcome of one take.
type quota struct {
	Limit     int
	Remaining int
	Reset     time.Time // end of the current window
	Allowed   bool
}

func newRateLimiter(limit int, window time.Duration, now func() time.Time) *rateLimiter {
	l := &rateLimiter{limit: limit, window: window, now: now}
	for i := range l.shards {
		l.shards[i].buckets = map[string]bucket{}
	}
	return l
}

// take counts one request for key.
func (l *rateLimiter) take(key string) quota {
	now := l.now()
	sh := &l.shards[shardOf(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if now.Sub(sh.swept) > 10*l.window {
		for k, b := range sh.buckets {
			if now.UnixNano()-b.start >= int64(l.window) {
				delete(sh.buckets, k)
			}
		}
		sh.swept = now
	}
	b, ok := sh.buckets[key]
	if !ok || now.UnixNano()-b.start >= int64(l.window) {
		start := now.Truncate(l.window)
		if now.Sub(start) >= l.window { // a window that does not divide time evenly
			start = now
		}
		b = bucket{start: start.UnixNano()}
	}
	q := quota{Limit: l.limit, Reset: time.Unix(0, b.start).Add(l.window)}
	if b.count < l.limit {
		b.count++
		q.Remaining = l.limit - b.count
		q.Allowed = true
	}
	sh.buckets[key] = b
	return q
}
