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

// expectSet holds the pools whose hosts may be handed a job within
// seconds: an operator's change the engine has not planned yet, or rows
// the engine is writing. A host of such a pool that checks in without a
// job is told to come back soon (Soon) instead of a whole interval later.
type expectSet struct {
	n  atomic.Int32 // len(m), read without the lock: usually none
	mu sync.Mutex
	m  map[string]time.Time // pool id -> when marked (time.Now, monotonic)
}

func (x *expectSet) mark(poolID string, at time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.m == nil {
		x.m = map[string]time.Time{}
	}
	if _, ok := x.m[poolID]; !ok && len(x.m) >= maxExpected {
		var oldest string
		for id, t := range x.m {
			if oldest == "" || t.Before(x.m[oldest]) {
				oldest = id
			}
		}
		delete(x.m, oldest)
	}
	if t, ok := x.m[poolID]; !ok || at.After(t) {
		x.m[poolID] = at
	}
	x.n.Store(int32(len(x.m)))
}

func (x *expectSet) has(poolID string, now time.Time) bool {
	if x.n.Load() == 0 {
		return false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	t, ok := x.m[poolID]
	return ok && now.Sub(t) < expectMax
}

// clear drops the marks made at or before seen (the start of a tick that
// has read, planned and written what they announced) and the stale ones.
func (x *expectSet) clear(seen, now time.Time) {
	if x.n.Load() == 0 {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for id, t := range x.m {
		if !t.After(seen) || now.Sub(t) >= expectMax {
			delete(x.m, id)
		}
	}
	x.n.Store(int32(len(x.m)))
}

// Expect says that poolID's hosts may be handed jobs within seconds: the
// API calls it when an operator creates, changes or acts on an update,
// before its write and again after it, until a tick that started after
// the last call has planned and written its jobs. It takes no engine lock.
func (e *Engine) Expect(poolID string) { e.expect.mark(poolID, time.Now()) }

// Soon reports whether a host of poolID that has no job should check in
// again soon rather than a whole interval later: its pool has a change the
// engine has not planned yet, or rows it is writing now. It takes no
// engine lock.
func (e *Engine) Soon(poolID string) bool { return e.expect.has(poolID, time.Now()) }
