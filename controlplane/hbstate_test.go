package controlplane

import (
	"crypto/sha256"
	"strconv"
	"testing"
	"time"
)

func TestSeenCoalescer(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	type step struct {
		mark  float64 // a keep-alive of "h" at this time (< 0: none)
		wrote float64 // a heartbeat of "h" written at this time (< 0: none)
		take  float64 // then take at this time (< 0: no take)
		all   bool
		fail  bool    // the write of what was taken fails
		want  float64 // the time taken for "h" (< 0: nothing)
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"a first keep-alive is written at once", []step{{0, -1, 0.5, false, false, 0}}},
		{"keep-alives faster than the resolution are written once per resolution", []step{
			{0, -1, 0.1, false, false, 0},
			{1, -1, 1.1, false, false, -1},
			{2, -1, 2.1, false, false, -1},
			{4.9, -1, 5.0, false, false, 4.9},
			{5.5, -1, 5.6, false, false, -1},
		}},
		{"a host that falls silent has its last time written after the resolution", []step{
			{0, -1, 0.1, false, false, 0},
			{1, -1, 1.1, false, false, -1},
			{-1, -1, 4, false, false, -1},
			{-1, -1, 5, false, false, 1},
			{-1, -1, 20, false, false, -1},
		}},
		{"keep-alives at the heartbeat interval are each written", []step{
			{0, -1, 0.5, false, false, 0},
			{30, -1, 30.5, false, false, 30},
			{60, -1, 60.5, false, false, 60},
		}},
		{"a written heartbeat counts as written", []step{
			{0, -1, -1, false, false, -1},
			{-1, 1, 1.5, false, false, -1},
			{2, -1, 2.5, false, false, -1},
			{-1, -1, 6.5, false, false, 2},
		}},
		{"close takes everything pending", []step{
			{0, -1, 0.5, false, false, 0},
			{1, -1, 1.5, true, false, 1},
		}},
		{"a failed write is taken again", []step{
			{0, -1, 0.5, false, true, 0},
			{-1, -1, 0.6, false, false, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c seenCoalescer
			c.init(5 * time.Second)
			for i, s := range tt.steps {
				if s.mark >= 0 {
					c.mark("h", at(s.mark))
					c.mark("other", at(s.mark))
					if got, ok := c.get("h"); !ok || !got.Equal(at(s.mark)) {
						t.Fatalf("step %d: get = %v %v, want the keep-alive's time", i, got, ok)
					}
				}
				if s.wrote >= 0 {
					c.mark("h", at(s.wrote))
					c.wrote("h", at(s.wrote))
				}
				if s.take < 0 {
					continue
				}
				m := c.take(at(s.take), s.all)
				got, ok := m["h"]
				switch {
				case s.want < 0 && ok:
					t.Fatalf("step %d: took %v, want nothing", i, got)
				case s.want >= 0 && (!ok || !got.Equal(at(s.want))):
					t.Fatalf("step %d: took %v %v, want %v", i, got, ok, at(s.want))
				}
				if s.fail {
					c.untake(m)
				}
			}
		})
	}
}

// TestPerHostTablesHoldTheTargetFleet: at 300,000 hosts (the size the
// server is measured with) an unchanged heartbeat is still recognised as
// one, and a known client still authenticates from memory: no table
// starts over below the fleet's size.
func TestPerHostTablesHoldTheTargetFleet(t *testing.T) {
	const hosts = 300_000
	var (
		h  hbState
		cc ttlCache[authedClient]
	)
	cc.init(0, maxHosts, nil)
	ids := make([]string, hosts)
	for i := range ids {
		ids[i] = "host-" + strconv.Itoa(i)
		h.changed(ids[i], hbPrint{uint64(i)})
		cc.put(sha256.Sum256([]byte(ids[i])), authedClient{ID: ids[i]})
	}
	for i, id := range ids {
		if c := h.changed(id, hbPrint{uint64(i)}); c != 0 {
			t.Fatalf("host %d of %d: an unchanged heartbeat counted as a change (%b): a table started over", i, hosts, c)
		}
		if _, ok := cc.get(sha256.Sum256([]byte(id))); !ok {
			t.Fatalf("host %d of %d: the client cache lost a known client", i, hosts)
		}
	}
}
