package rollout

import (
	"context"
	"fmt"
	"math"
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
// wrote each batch of the rollout's rows.
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

// TestSoonAfterAnOperatorsChange: from an operator's change until the
// rows of the hosts that checked in meanwhile are committed, the pool's
// hosts are told to come back soon; those hosts' rows are written first
// (they come back within seconds, not an interval later), and the pool is
// no longer "soon" for the rest of the write.
func TestSoonAfterAnOperatorsChange(t *testing.T) {
	const n, gap = 250, 10
	f := newFleet(t, n, store.Settings{})
	ss := &soonStore{countingStore: f.cs, pool: f.pool.ID}
	e := New(Deps{Store: ss, Now: f.clock, Config: Config{Tick: time.Second, InactiveAfter: 90 * time.Second, WriteBatch: 100,
		HeartbeatInterval: 30 * time.Second}, // hosts told to come back are expected 3 s later
		Catalog: func(context.Context) (Catalog, error) { return f.cat, nil }})
	ss.e = e
	base := f.clock()
	for i, h := range f.hosts {
		e.Heard(h, base.Add(time.Duration(i)*100*time.Millisecond)) // host 0 heard first, host 249 24.9 s later
	}
	f.advance(25 * time.Second)
	f.tick(e, true)
	if e.Soon(f.pool.ID) {
		t.Fatal("Soon with no operator's change")
	}
	e.Expect(f.pool.ID) // an action that changes nothing the engine writes
	if !e.Soon(f.pool.ID) {
		t.Fatal("not Soon after the operator's action")
	}
	f.advance(100 * time.Millisecond)
	f.tick(e, true)
	if e.Soon(f.pool.ID) {
		t.Fatal("still Soon after a tick that began after the action")
	}

	e.Expect(f.pool.ID) // the API, before its write
	f.advance(100 * time.Millisecond)
	// The hosts heard last check in again now, told to come back in 3 s:
	// expected before every other host (due 30 s after they were heard,
	// from 5 s on), where without the operator's change their rows would
	// be written last.
	for _, h := range f.hosts[n-gap:] {
		e.Heard(h, f.clock())
	}
	u := f.createUpdate(false)
	e.Expect(f.pool.ID) // and after it
	f.advance(100 * time.Millisecond)
	f.tick(e, true)
	if want := []bool{true, false, false}; fmt.Sprint(ss.seen) != fmt.Sprint(want) {
		t.Errorf("Soon while the three batches were written: %v, want %v", ss.seen, want)
	}
	if e.Soon(f.pool.ID) {
		t.Error("still Soon after every job was written")
	}
	got, err := f.st.GetUpdate(f.ctx, f.pool.ID, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	rev := map[string]int64{}
	first := int64(math.MaxInt64)
	for _, ua := range got.Agents {
		rev[ua.AgentID] = ua.Rev
		first = min(first, ua.Rev)
	}
	for _, h := range f.hosts[n-gap:] {
		if rev[f.agent[h]] != first {
			t.Errorf("host %s checked in after the create: its row has revision %d, want the first batch's %d", h, rev[f.agent[h]], first)
		}
	}
	if rev[f.agent[f.hosts[0]]] != first || rev[f.agent[f.hosts[n-gap-1]]] == first {
		t.Errorf("the rest in check-in order: host 0 revision %d, host %d revision %d (first batch %d)",
			rev[f.agent[f.hosts[0]]], n-gap-1, rev[f.agent[f.hosts[n-gap-1]]], first)
	}
	if e.Soon("another-pool") {
		t.Error("Soon for a pool nobody touched")
	}
}

func TestNextHeartbeat(t *testing.T) {
	tests := []struct {
		interval, want time.Duration
	}{
		{time.Second, 0}, // no sooner than the interval itself
		{5 * time.Second, time.Second},
		{30 * time.Second, 3 * time.Second},
		{45 * time.Second, 4 * time.Second},
		{5 * time.Minute, 5 * time.Second},
	}
	for _, tt := range tests {
		if got := NextHeartbeat(tt.interval); got != tt.want {
			t.Errorf("NextHeartbeat(%s) = %s, want %s", tt.interval, got, tt.want)
		}
	}
}
