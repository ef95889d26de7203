package rollout

import (
	"sync"
	"sync/atomic"
	"time"
)

// expectMax bounds how long a pool stays expected without a tick clearing
// it (a create that failed, an engine that does not lead).
const expectMax = 30 * time.Second

// maxExpected bounds the pools expected at once: past it the oldest
// marks are dropped (a host then waits its interval, as without marks).
const maxExpected = 1024

// expectSet holds the pools an operator just changed (an update created,
// edited or acted on) that the engine has not planned and written yet. A
// host of such a pool that checks in without a job is told to come back
// soon (Soon) instead of a whole interval later, and the engine writes
// the rows of the hosts that checked in meanwhile first (write), so their
// jobs are there when they come back.
type expectSet struct {
	n  atomic.Int32 // len(m), read without the lock: usually none
	mu sync.Mutex
	m  map[string]expectMark
}

// expectMark is when a pool was first and last marked (the engine's clock).
type expectMark struct{ first, last time.Time }

func (x *expectSet) mark(poolID string, at time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.m == nil {
		x.m = map[string]expectMark{}
	}
	m, ok := x.m[poolID]
	if !ok && len(x.m) >= maxExpected {
		var oldest string
		for id, om := range x.m {
			if oldest == "" || om.last.Before(x.m[oldest].last) {
				oldest = id
			}
		}
		delete(x.m, oldest)
	}
	switch {
	case !ok:
		m = expectMark{first: at, last: at}
	case at.Before(m.first):
		m.first = at
	case at.After(m.last):
		m.last = at
	}
	x.m[poolID] = m
	x.n.Store(int32(len(x.m)))
}

func (x *expectSet) has(poolID string, now time.Time) bool {
	if x.n.Load() == 0 {
		return false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	m, ok := x.m[poolID]
	return ok && now.Sub(m.last) < expectMax
}

// since returns when poolID was first marked, if it is.
func (x *expectSet) since(poolID string) (time.Time, bool) {
	if x.n.Load() == 0 {
		return time.Time{}, false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	m, ok := x.m[poolID]
	return m.first, ok
}

// clearPool drops poolID's mark if it was last marked at or before seen
// (the start of the tick that planned what the mark announced).
func (x *expectSet) clearPool(poolID string, seen time.Time) {
	if x.n.Load() == 0 {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if m, ok := x.m[poolID]; ok && !m.last.After(seen) {
		delete(x.m, poolID)
		x.n.Store(int32(len(x.m)))
	}
}

// clear drops the marks made at or before seen (the start of a tick that
// has read, planned and written what they announced) and the stale ones.
func (x *expectSet) clear(seen, now time.Time) {
	if x.n.Load() == 0 {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for id, m := range x.m {
		if !m.last.After(seen) || now.Sub(m.last) >= expectMax {
			delete(x.m, id)
		}
	}
	x.n.Store(int32(len(x.m)))
}

// NextHeartbeat is how soon a host without a job is asked to check in
// again while its pool's jobs are being made: a tenth of the interval,
// from 1 to 5 s in whole seconds; none when the interval is not longer.
func NextHeartbeat(interval time.Duration) time.Duration {
	d := min(max(interval/10, time.Second), 5*time.Second).Truncate(time.Second)
	if d >= interval {
		return 0
	}
	return d
}

// Expect says that an operator changed poolID's updates: the API calls it
// before its write and again after it. Until a tick that began after the
// last call has written the jobs of the hosts that checked in meanwhile,
// Soon is true for the pool. It takes no engine lock.
func (e *Engine) Expect(poolID string) { e.expect.mark(poolID, e.d.Now()) }

// Soon reports whether a host of poolID that has no job should check in
// again within seconds rather than a whole interval later: an operator's
// change to its pool is not planned and written yet. It takes no engine
// lock.
func (e *Engine) Soon(poolID string) bool {
	if e.expect.n.Load() == 0 {
		return false // the common case, on every heartbeat: no clock read
	}
	return e.expect.has(poolID, e.d.Now())
}
