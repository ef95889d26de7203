package rollout

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/poolagent/poolagent/controlplane/store"
)

func TestExpectSet(t *testing.T) {
	t0 := time.Now()
	tests := []struct {
		name string
		mark time.Duration // when the pool is marked, after t0
		seen time.Duration // the clearing tick's start, after t0
		now  time.Duration // when asked, after t0
		want bool
	}{
		{"marked, no tick yet", 0, -time.Second, time.Second, true},
		{"a tick that began after the mark clears it", 0, time.Second, 2 * time.Second, false},
		{"a tick that began at the mark clears it", 0, 0, time.Second, false},
		{"a mark made while the tick ran outlives it", 2 * time.Second, time.Second, 3 * time.Second, true},
		{"stale marks go without a tick", 0, -time.Second, expectMax, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var x expectSet
			x.mark("pool", t0.Add(tt.mark))
			x.clear(t0.Add(tt.seen), t0.Add(tt.now))
			if got := x.has("pool", t0.Add(tt.now)); got != tt.want {
				t.Errorf("has = %v, want %v", got, tt.want)
			}
			if x.has("other", t0.Add(tt.now)) {
				t.Error("a pool never marked is expected")
			}
		})
	}
}

func TestExpectSetBounded(t *testing.T) {
	var x expectSet
	t0 := time.Now()
	for i := range maxExpected + 10 {
		x.mark(fmt.Sprint("pool", i), t0.Add(time.Duration(i)*time.Millisecond))
	}
	if n := int(x.n.Load()); n != maxExpected {
		t.Fatalf("%d marks kept, want %d", n, maxExpected)
	}
	now := t0.Add(time.Second)
	if x.has("pool0", now) || !x.has(fmt.Sprint("pool", maxExpected+9), now) {
		t.Error("the oldest marks should go first")
	}
}

// soonStore records whether the engine said Soon for the pool while it
// wrote the rollout's rows.
type soonStore struct {
	*countingStore
	e    *Engine
	pool string
	seen []bool
}

func (s *soonStore) WriteRollout(ctx context.Context, w *store.RolloutWrite) (int, error) {
	if len(w.Agents) > 0 {
		s.seen = append(s.seen, s.e.Soon(s.pool))
	}
	return s.countingStore.WriteRollout(ctx, w)
}

// TestSoonWhileJobsAreMade: a pool's hosts are told to come back soon
// from the operator's create until the tick that planned it has written
// every job, and not after.
func TestSoonWhileJobsAreMade(t *testing.T) {
	const n = 250
	f := newFleet(t, n, store.Settings{})
	ss := &soonStore{countingStore: f.cs, pool: f.pool.ID}
	e := New(Deps{Store: ss, Now: f.clock, Config: Config{Tick: time.Second, InactiveAfter: 90 * time.Second, WriteBatch: 100},
		Catalog: func(context.Context) (Catalog, error) { return f.cat, nil }})
	ss.e = e
	for _, h := range f.hosts {
		e.Heard(h, f.clock())
	}
	f.tick(e, true)
	if e.Soon(f.pool.ID) {
		t.Fatal("Soon with no update")
	}
	e.Expect(f.pool.ID) // the API, as an operator acts
	if !e.Soon(f.pool.ID) {
		t.Fatal("not Soon after the operator's action")
	}
	f.tick(e, true) // nothing to plan: the mark ends with the tick
	if e.Soon(f.pool.ID) {
		t.Fatal("still Soon after a tick that had nothing to write")
	}
	// Without the API's mark (a schedule's window opening): the rows'
	// write marks the pool while it runs.
	f.createUpdate(false)
	f.tick(e, true)
	if len(ss.seen) != 3 {
		t.Fatalf("%d batches written, want 3", len(ss.seen))
	}
	for i, soon := range ss.seen {
		if !soon {
			t.Errorf("batch %d: not Soon while the rows were written", i)
		}
	}
	if e.Soon(f.pool.ID) {
		t.Error("still Soon after every job was written")
	}
	if len(e.JobsFor(f.hosts[n-1], f.clock())) != 1 {
		t.Error("the last host has no job")
	}
	if e.Soon("another-pool") {
		t.Error("Soon for a pool nobody touched")
	}
}
