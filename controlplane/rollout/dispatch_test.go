package rollout

import (
	"os"
	"strconv"
	"testing"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
)

// BenchmarkDispatchTick times the tick that takes a new "all agents"
// update of the whole fleet and hands out every job (rows written, jobs
// published). POOLAGENT_BENCH_HOSTS sets the fleet (default 20,000):
//
//	go test -run XXX -bench DispatchTick -benchtime 1x ./controlplane/rollout/
func BenchmarkDispatchTick(b *testing.B) {
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("POOLAGENT_BENCH_HOSTS")); err == nil && v > 0 {
		n = v
	}
	t := &testing.T{}
	f := newFleet(t, n, store.Settings{})
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		e := f.engine()
		e.d.Config.WriteBatch = 4096
		for _, h := range f.hosts {
			e.Heard(h, f.clock())
		}
		f.tick(e, true)
		u := f.createUpdate(false)
		b.StartTimer()
		f.tick(e, true)
		b.StopTimer()
		b.Logf("read %s plan %s write %s publish %s", e.stats.read, e.stats.plan, e.stats.write, e.stats.publish)
		if s, _ := e.Summary(u.ID); s.Counts[okta.InstanceScheduled] != n || e.updates[u.ID].live != n {
			b.Fatalf("dispatched %d of %d", e.updates[u.ID].live, n)
		}
		// The next round starts from a pool without an active update.
		if _, err := f.st.ModifyUpdate(f.ctx, f.pool.ID, u.ID, func(u *store.Update) error { u.Status = okta.JobCancelled; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/host")
}
