package controlplane_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/controlplane/store/sqlite"
)

// bigUpdate is a poolserver over SQLite with one pool of n agents and one
// update naming all of them, some Failed and some InProgress.
type bigUpdate struct {
	srv                *httptest.Server
	pool, update, read string
}

// seedBigUpdate builds a bigUpdate of n agents in dir.
func seedBigUpdate(tb testing.TB, dir string, n int) (*bigUpdate, func()) {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now().UTC()
	p := &store.Pool{ID: store.NewID("pol"), Name: "big", Type: okta.AgentTypeAD, CreatedAt: now}
	if err := st.CreatePool(ctx, p); err != nil {
		tb.Fatal(err)
	}
	u := &store.Update{ID: store.NewID("upd"), PoolID: p.ID, Name: "big", AgentType: okta.AgentTypeAD, Enabled: true,
		Status: okta.JobInProgress, TargetVersion: "1.1.0", CreatedAt: now, ModifiedAt: now}
	for i := 0; i < n; i++ {
		a := &store.Agent{ID: store.NewID("agt"), PoolID: p.ID, Name: fmt.Sprintf("dc%06d.example.com", i), Type: okta.AgentTypeAD,
			Version: "1.0.0", LastConnection: now, OperationalStatus: okta.OperationalStatusOperational, CreatedAt: now}
		if err := st.CreateAgent(ctx, a); err != nil {
			tb.Fatal(err)
		}
		ua := store.UpdateAgent{AgentID: a.ID, Position: i, Status: okta.InstanceScheduled, ModifiedAt: now}
		switch i % 10 {
		case 0:
			ua.Status, ua.Message = okta.InstanceFailed, "install failed: exit status 3"
		case 1:
			ua.Status, ua.JobID, ua.Progress, ua.Phase = okta.InstanceInProgress, store.NewID("job"), 40, "download"
		case 2, 3, 4:
			ua.Status, ua.JobID, ua.Progress = okta.InstanceSuccess, store.NewID("job"), 100
		}
		u.Agents = append(u.Agents, ua)
	}
	if err := st.CreateUpdate(ctx, u); err != nil {
		tb.Fatal(err)
	}
	read, _, err := controlplane.CreateToken(ctx, st, "read", []store.Scope{store.ScopeRead}, 0, now)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := controlplane.DefaultConfig()
	cfg.RateLimit.RequestsPerWindow = 1 << 30
	s := controlplane.New(cfg, st, nil)
	srv := httptest.NewServer(s.Handler())
	return &bigUpdate{srv: srv, pool: p.ID, update: u.ID, read: read}, func() {
		srv.Close()
		s.Close()
		_ = st.Close()
	}
}

// get sends one GET and discards the body, returning the status and the
// body's length.
func (bu *bigUpdate) get(tb testing.TB, path string) (int, int64) {
	tb.Helper()
	req, _ := http.NewRequest("GET", bu.srv.URL+path, nil)
	req.Header.Set("Authorization", "SSWS "+bu.read)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, n
}

// heapPeak samples the live heap every 200 µs until stop is called and
// returns the highest sample.
func heapPeak() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var (
		peak uint64
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(200 * time.Microsecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak {
				peak = v
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return peak }
}

// BenchmarkGetBigUpdate measures GET .../updates/{id} of one update of
// 100,000 agents through real HTTP on loopback: time per request, bytes
// allocated per request, and the peak growth of the live heap during the
// request above the heap after a GC (peak-heap-MB). bench/README.md has
// the figures.
func BenchmarkGetBigUpdate(b *testing.B) {
	// A benchmark with sub-benchmarks runs once: the seed is built once.
	bu, done := seedBigUpdate(b, b.TempDir(), 100_000)
	defer done()
	base := "/api/v1/agentPools/" + bu.pool + "/updates/" + bu.update
	for _, q := range []string{"", "?agents=none", "?agentStatus=Failed&limit=100"} {
		b.Run("query="+q, func(b *testing.B) {
			var peak, body uint64
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				runtime.GC()
				s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
				metrics.Read(s)
				before := s[0].Value.Uint64()
				stop := heapPeak()
				b.StartTimer()
				status, n := bu.get(b, base+q)
				b.StopTimer()
				if p := stop(); p > before && p-before > peak {
					peak = p - before
				}
				if status != http.StatusOK {
					b.Fatalf("GET %s: %d", q, status)
				}
				body = uint64(n)
				b.StartTimer()
			}
			b.ReportMetric(float64(peak)/1e6, "peak-heap-MB")
			b.ReportMetric(float64(body)/1e6, "body-MB")
		})
	}
}
