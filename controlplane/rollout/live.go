package rollout

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"github.com/poolagent/poolagent/controlplane/store"
)

// heardLog collects the hosts heard from since the last tick. Heartbeats
// write it under its own lock, never the engine's, so a long tick does not
// hold up a heartbeat.
type heardLog struct {
	mu sync.Mutex
	m  map[string]time.Time
}

// Heard records that a host's heartbeat arrived at t. The engine applies it
// on its next tick: a host that comes back counts as connected again.
func (e *Engine) Heard(clientID string, t time.Time) {
	e.heard.mu.Lock()
	if prev, ok := e.heard.m[clientID]; !ok || t.After(prev) {
		e.heard.m[clientID] = t
	}
	e.heard.mu.Unlock()
}

func (h *heardLog) take() map[string]time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.m) == 0 {
		return nil
	}
	m := h.m
	h.m = make(map[string]time.Time, len(m))
	return m
}

// liveEntry is when a connected host goes silent unless heard from again.
type liveEntry struct {
	at time.Time
	c  *clientState
}

// liveHeap orders connected hosts by the time they would go silent: one
// entry per connected host, so a tick pops only the hosts whose deadline
// passed.
type liveHeap []liveEntry

func (h liveHeap) Len() int           { return len(h) }
func (h liveHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h liveHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }

// Push and Pop implement heap.Interface; use push and heap.Pop.
func (h *liveHeap) Push(x any) { *h = append(*h, x.(liveEntry)) }

// Pop implements heap.Interface.
func (h *liveHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (h *liveHeap) push(x liveEntry) { heap.Push(h, x) }

// SeenReader is implemented by stores several replicas share: the hosts
// any replica heard from after t (keep-alive heartbeats are written as
// last-seen times only, not to the change feed).
type SeenReader interface {
	ClientsSeenSince(ctx context.Context, t time.Time) (map[string]time.Time, error)
}

// seenFromReplicas reads, on a shared store, which hosts the other
// replicas heard from, every third of InactiveAfter: often enough that no
// host heard elsewhere is taken for silent.
func (e *Engine) seenFromReplicas(ctx context.Context, now time.Time) error {
	r, ok := e.d.Store.(SeenReader)
	if _, shared := e.d.Store.(store.Leader); !ok || !shared {
		return nil
	}
	if !e.seenPolled.IsZero() && now.Sub(e.seenPolled) < e.d.Config.InactiveAfter/3 {
		return nil
	}
	// Replicas flush last-seen times late (heartbeat.flush_interval):
	// read back a whole InactiveAfter.
	seen, err := r.ClientsSeenSince(ctx, now.Add(-e.d.Config.InactiveAfter))
	if err != nil {
		return err
	}
	e.seenPolled = now
	for id, t := range seen {
		if cs := e.clients[id]; cs != nil {
			e.see(cs, t, now)
		}
	}
	return nil
}

// liveness applies the heartbeats heard since the last tick and the
// deadlines that passed: work in proportion to heartbeats and expiries.
func (e *Engine) liveness(now time.Time) {
	for id, t := range e.heard.take() {
		if cs := e.clients[id]; cs != nil {
			e.see(cs, t, now)
		}
	}
	for len(e.live) > 0 && !e.live[0].at.After(now) {
		x := heap.Pop(&e.live).(liveEntry)
		cs := x.c
		cs.inHeap = false
		if e.clients[cs.c.ID] != cs {
			continue // forgotten
		}
		if e.connectedAt(cs.seen, now) {
			e.live.push(liveEntry{at: cs.seen.Add(e.d.Config.InactiveAfter), c: cs})
			cs.inHeap = true
			continue
		}
		e.see(cs, time.Time{}, now) // goes disconnected
	}
}
