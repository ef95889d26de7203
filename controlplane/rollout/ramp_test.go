package rollout

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
)

func TestRateAt(t *testing.T) {
	ramp := func(start int, factor float64, every int) *Ramp {
		return &Ramp{StartPerMinute: start, Factor: factor, SuccessesToRaise: every}
	}
	cases := []struct {
		name      string
		p         *Policy
		succeeded int
		want      int
	}{
		{"no policy", nil, 0, 0},
		{"no rate", &Policy{Canary: 1}, 5, 0},
		{"max only", &Policy{MaxPerMinute: 10}, 0, 10},
		{"max only, successes change nothing", &Policy{MaxPerMinute: 10}, 100, 10},
		{"ramp starts", &Policy{Ramp: ramp(6, 2, 5)}, 0, 6},
		{"ramp below a step", &Policy{Ramp: ramp(6, 2, 5)}, 4, 6},
		{"ramp first step", &Policy{Ramp: ramp(6, 2, 5)}, 5, 12},
		{"ramp third step", &Policy{Ramp: ramp(6, 2, 5)}, 17, 48},
		{"ramp capped", &Policy{MaxPerMinute: 120, Ramp: ramp(6, 2, 5)}, 25, 120},
		{"ramp just under the cap", &Policy{MaxPerMinute: 120, Ramp: ramp(6, 2, 5)}, 20, 96},
		{"fractional factor rounds down", &Policy{Ramp: ramp(5, 1.5, 1)}, 1, 7},
		{"fractional factor, two steps", &Policy{Ramp: ramp(5, 1.5, 1)}, 2, 11},
		{"uncapped ramp stops at the limit", &Policy{Ramp: ramp(6, 10, 1)}, 5000, maxRate},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.p.RateAt(c.succeeded); got != c.want {
				t.Errorf("RateAt(%d) = %d, want %d", c.succeeded, got, c.want)
			}
		})
	}
}

func TestBurst(t *testing.T) {
	for rate, want := range map[int]int{1: 1, 5: 1, 6: 1, 7: 2, 10: 2, 12: 2, 60: 10, 61: 11, 120: 20} {
		if got := Burst(rate); got != want {
			t.Errorf("Burst(%d) = %d, want %d", rate, got, want)
		}
	}
}

// TestStartLogRoom plays starts on a fake clock: the room at each step
// follows the one-minute window and the 10-second burst.
func TestStartLogRoom(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	type step struct {
		at    float64 // seconds after t0
		start int     // hosts started at that time (after reading room)
		room  int     // room before the starts
	}
	cases := []struct {
		name  string
		rate  int
		steps []step
	}{
		{"unlimited", 0, []step{{0, 1000, 1 << 62}}},
		{"one per ten seconds at 6 a minute", 6, []step{
			{0, 1, 1}, {1, 0, 0}, {9.9, 0, 0}, {10, 1, 1}, {20, 1, 1}, {30, 1, 1}, {40, 1, 1}, {50, 1, 1},
			// Six in the last minute: the seventh waits for the first to
			// leave the window.
			{59.9, 0, 0}, {60, 1, 1},
		}},
		{"burst of two at 10 a minute", 10, []step{
			{0, 2, 2}, {5, 0, 0}, {10, 2, 2}, {20, 2, 2}, {30, 2, 2}, {40, 2, 2},
			// Ten in the minute.
			{50, 0, 0}, {59, 0, 0}, {60, 2, 2},
		}},
		{"a start leaves the burst window after ten seconds", 12, []step{
			{0, 1, 2}, {4, 1, 1}, {9, 0, 0}, {10, 1, 1}, {14, 1, 1}, {15, 0, 0},
		}},
		{"one a minute", 1, []step{{0, 1, 1}, {30, 0, 0}, {59, 0, 0}, {60, 1, 1}, {61, 0, 0}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var l startLog
			for _, s := range c.steps {
				now := at(s.at)
				room := l.room(now, c.rate)
				if c.rate == 0 {
					room = min(room, 1<<62)
				}
				if room != s.room {
					t.Fatalf("at %.1fs: room %d, want %d (starts %v)", s.at, room, s.room, l.at)
				}
				for range min(s.start, 10) {
					l.add(now, now)
				}
			}
		})
	}
}

func TestStartLogAddRemove(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	var l startLog
	// Loaded out of order (a restart reads rows in the pool's order);
	// starts older than a minute are not kept.
	for _, s := range []int{30, 10, 50, 20, -5, 40} {
		l.add(t0.Add(time.Duration(s)*time.Second), t0.Add(55*time.Second))
	}
	if len(l.at) != 5 || !l.at[0].Equal(t0.Add(10*time.Second)) || !l.at[4].Equal(t0.Add(50*time.Second)) {
		t.Fatalf("starts = %v", l.at)
	}
	l.remove(t0.Add(30 * time.Second))
	l.remove(t0.Add(31 * time.Second)) // not there: nothing
	if len(l.at) != 4 {
		t.Fatalf("after remove: %v", l.at)
	}
	now := t0.Add(75 * time.Second)
	if got := l.since(now, rateWindow); got != 3 { // 20, 40 and 50
		t.Errorf("in the last minute at 75s: %d, want 3", got)
	}
	if got := l.since(now, burstWindow); got != 0 {
		t.Errorf("in the last 10 s at 75s: %d, want 0", got)
	}
	l.prune(now)
	if len(l.at) != 3 {
		t.Errorf("after prune: %v", l.at)
	}
}

func TestRateMessages(t *testing.T) {
	ramp := &Ramp{StartPerMinute: 6, Factor: 2, SuccessesToRaise: 5}
	cases := []struct {
		p    *Policy
		rate int
		want string
	}{
		{&Policy{MaxPerMinute: 10}, 10, "waiting: rollout.maxPerMinute 10 reached"},
		{&Policy{Ramp: ramp}, 12, RampWaiting},
		{&Policy{MaxPerMinute: 120, Ramp: ramp}, 48, RampWaiting},
		{&Policy{MaxPerMinute: 120, Ramp: ramp}, 120, "waiting: rollout.maxPerMinute 120 reached"},
	}
	for _, c := range cases {
		if got := c.p.rateMessage(c.rate); got != c.want {
			t.Errorf("rateMessage(%d) = %q, want %q", c.rate, got, c.want)
		}
	}
}

func TestParsePolicyRate(t *testing.T) {
	cases := []struct {
		body  string
		cause string // "" when valid
	}{
		{`{"maxPerMinute":10}`, ""},
		{`{"ramp":{"startPerMinute":6,"factor":2,"successesToRaise":5},"maxPerMinute":120}`, ""},
		{`{"ramp":{"startPerMinute":6,"factor":1.5,"successesToRaise":1}}`, ""},
		{`{"maxPerMinute":-1}`, "rollout.maxPerMinute: must be from 0"},
		{`{"maxPerMinute":2000000}`, "rollout.maxPerMinute: must be from 0"},
		{`{"maxPerMinute":"ten"}`, "rollout.maxPerMinute: expected int"},
		{`{"ramp":{"factor":2,"successesToRaise":5}}`, "rollout.ramp.startPerMinute: must be from 1"},
		{`{"ramp":{"startPerMinute":6,"successesToRaise":5}}`, "rollout.ramp.factor: must be above 1"},
		{`{"ramp":{"startPerMinute":6,"factor":1,"successesToRaise":5}}`, "rollout.ramp.factor: must be above 1"},
		{`{"ramp":{"startPerMinute":6,"factor":11,"successesToRaise":5}}`, "rollout.ramp.factor: must be above 1 and at most 10"},
		{`{"ramp":{"startPerMinute":6,"factor":2}}`, "rollout.ramp.successesToRaise: must be at least 1"},
		{`{"ramp":{"startPerMinute":60,"factor":2,"successesToRaise":5},"maxPerMinute":10}`, "rollout.ramp.startPerMinute: 60 is above rollout.maxPerMinute 10"},
		{`{"ramp":"fast"}`, "rollout.ramp: expected rollout.Ramp"},
	}
	for _, c := range cases {
		p, causes := ParsePolicy(json.RawMessage(c.body))
		got := strings.Join(causes, "; ")
		switch {
		case c.cause == "" && (got != "" || p == nil):
			t.Errorf("%s: %q", c.body, got)
		case c.cause != "" && !strings.Contains(got, c.cause):
			t.Errorf("%s: causes %q, want %q", c.body, got, c.cause)
		}
	}
}

// TestRateWorkFollowsStarts: under a start rate, a tick that only finds
// room for one more host writes that host's row, not the fleet's, and the
// engine keeps the last minute's starts only.
func TestRateWorkFollowsStarts(t *testing.T) {
	const n = 500
	f := newFleet(t, n, store.Settings{})
	e := f.engine()
	u := &store.Update{ID: store.NewID("upd"), PoolID: f.pool.ID, AgentType: okta.AgentTypeAD, Enabled: true, Status: okta.JobInProgress,
		TargetVersion: "1.1.0", AllAgents: true, CreatedAt: f.clock(), ModifiedAt: f.clock()}
	WriteDoc(u, Doc{Policy: &Policy{MaxPerMinute: 6}})
	if err := f.st.CreateUpdate(f.ctx, u); err != nil {
		t.Fatal(err)
	}
	heardAll := func() {
		for _, h := range f.hosts {
			e.Heard(h, f.clock())
		}
	}
	heardAll()
	f.tick(e, true)
	// The first pass writes every row: one job, and why the others wait.
	if got := f.cs.rowsWritten.Load(); got != n {
		t.Fatalf("first tick wrote %d rows, want %d", got, n)
	}
	us := e.updates[u.ID]
	for k := 1; k <= 12; k++ {
		before := f.cs.rowsWritten.Load()
		f.advance(5 * time.Second)
		heardAll()
		f.tick(e, true)
		want := int64(1 - k%2) // one start per 10 s at 6 a minute
		if got := f.cs.rowsWritten.Load() - before; got != want {
			t.Fatalf("tick at %ds wrote %d rows, want %d", 5*k, got, want)
		}
		if len(us.rate.starts.at) > 6 {
			t.Fatalf("the engine keeps %d start times, more than the minute's 6", len(us.rate.starts.at))
		}
	}
	waiting := 0
	for _, ua := range us.u.Agents {
		if ua.JobID == "" {
			waiting++
			if ua.Message != "waiting: rollout.maxPerMinute 6 reached" {
				t.Fatalf("a waiting agent says %q", ua.Message)
			}
		}
	}
	if waiting != n-7 { // started at 0, 10, ..., 60 s
		t.Errorf("%d agents wait, want %d", waiting, n-7)
	}
}
