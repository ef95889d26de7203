package rollout

import (
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
)

// BenchmarkEngineMemory reports what one host costs in the engine's
// memory: registered (idle), in an active update with a job in flight, and
// in that update once its report came back through the change feed.
// POOLAGENT_BENCH_HOSTS sets the fleet (default 20,000):
//
//	go test -run XXX -bench EngineMemory -benchtime 1x ./controlplane/rollout/
func BenchmarkEngineMemory(b *testing.B) {
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("POOLAGENT_BENCH_HOSTS")); err == nil && v > 0 {
		n = v
	}
	t := &testing.T{}
	f := newFleet(t, n, store.Settings{})
	f.t = t
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	for range b.N {
		base := heap()
		e := f.engine()
		for _, h := range f.hosts {
			e.Heard(h, f.clock())
		}
		f.tick(e, true)
		idle := heap()
		f.createUpdate()
		f.tick(e, true)
		active := heap()
		if len(e.updates) != 1 || e.updates[func() string {
			for id := range e.updates {
				return id
			}
			return ""
		}()].live != n {
			b.Fatalf("the update did not hand out %d jobs", n)
		}
		// Every host but one reports its job done at a new version: the
		// feed brings back an agent row and an update row a host.
		var hbs []store.Heartbeat
		for _, h := range f.hosts[1:] {
			for _, j := range e.JobsFor(h, f.clock()) {
				hbs = append(hbs, f.beat(h, "1.1.0", store.JobReport{JobID: j.UUID, Status: okta.InstanceSuccess, Progress: 100}))
			}
		}
		if err := f.st.ApplyHeartbeats(f.ctx, hbs); err != nil {
			b.Fatal(err)
		}
		hbs = nil
		f.tick(e, true)
		reported := heap()
		b.ReportMetric(float64(idle-base)/float64(n), "B/host-idle")
		b.ReportMetric(float64(active-idle)/float64(n), "B/host-in-update")
		b.ReportMetric(float64(reported-idle)/float64(n), "B/host-reported")
		runtime.KeepAlive(e)
	}
}
