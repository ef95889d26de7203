package controlplane

import (
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/controlplane/store"
)

// BenchmarkHostTablesMemory reports what one host costs in each of the
// heartbeat path's per-host tables, filled as handleHeartbeat fills them:
// a first heartbeat (a change) then a keep-alive, from every host.
// POOLAGENT_BENCH_HOSTS sets the fleet (default 100,000):
//
//	go test -run XXX -bench HostTablesMemory -benchtime 1x ./controlplane/
func BenchmarkHostTablesMemory(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("POOLAGENT_BENCH_HOSTS")); err == nil && v > 0 {
		n = v
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	pool := store.NewID("pol")
	ids := make([]string, n)
	for i := range ids {
		ids[i] = store.NewID("cli")
	}
	// fresh is a string decoded from a heartbeat's body: a copy each time.
	fresh := func(s string) string { return string([]byte(s)) }
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	for range b.N {
		s := &Server{notes: newHostNotes()}
		s.clients.init(0, maxHosts, nil)
		s.seen.init(30 * time.Second)
		s.hbLimiter = newRateLimiter(1<<30, time.Minute, func() time.Time { return now })
		steps := []struct {
			name string
			fill func(i int, id string)
		}{
			{"client-cache", func(i int, id string) {
				key := [32]byte(HashSecret(id))
				s.clients.put(key, authedClient{ID: id, PoolID: pool, secretHash: key})
			}},
			{"ratelimit", func(i int, id string) { s.hbLimiter.take(id) }},
			{"hbstate", func(i int, id string) { s.hbState.changed(id, hbPrint{uint64(i), 1, 2}) }},
			{"seen", func(i int, id string) {
				s.seen.wrote(id, now) // the first heartbeat: written
				s.seen.mark(id, now.Add(30*time.Second))
			}},
			{"notes", func(i int, id string) {
				s.notes.record(id, hostNote{poolID: pool, host: fresh(id + ".example.com"), status: sailpoint.ClientStatus(fresh("NORMAL")),
					seen: now, skew: time.Millisecond, hasSkew: true})
			}},
		}
		total := 0.0
		for _, st := range steps {
			before := heap()
			for i, id := range ids {
				st.fill(i, id)
			}
			per := float64(heap()-before) / float64(n)
			total += per
			b.ReportMetric(per, "B/host-"+st.name)
		}
		b.ReportMetric(total, "B/host-total")
		runtime.KeepAlive(s)
	}
}
