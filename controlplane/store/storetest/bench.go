package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
)

// BenchRollout measures the rollout engine's batch write and the change
// feed on an update of n agents: CreateUpdate once, then per iteration
// one WriteRollout changing every row and one ChangesSince returning
// them. It reports the time of each (create-ms, write-ms, feed-ms).
func BenchRollout(b *testing.B, s store.Store, n int) {
	ctx := context.Background()
	p := &store.Pool{ID: store.NewID("pol"), Name: "bench", Type: okta.AgentTypeAD, CreatedAt: now}
	if err := s.CreatePool(ctx, p); err != nil {
		b.Fatal(err)
	}
	u := &store.Update{ID: store.NewID("upd"), PoolID: p.ID, AgentType: okta.AgentTypeAD, Status: okta.JobInProgress, CreatedAt: now, ModifiedAt: now,
		Agents: make([]store.UpdateAgent, n)}
	for i := range u.Agents {
		u.Agents[i] = store.UpdateAgent{AgentID: fmt.Sprintf("agt%07d", i), Status: okta.InstanceScheduled, ModifiedAt: now}
	}
	start := time.Now()
	if err := s.CreateUpdate(ctx, u); err != nil {
		b.Fatal(err)
	}
	create := time.Since(start)
	w := &store.RolloutWrite{Agents: make([]store.UpdateAgentRow, n)}
	for i, ua := range u.Agents {
		w.Agents[i] = store.UpdateAgentRow{UpdateID: u.ID, UpdateAgent: ua}
	}
	var write, feed time.Duration
	b.ResetTimer()
	for k := range b.N {
		for i := range w.Agents {
			a := &w.Agents[i]
			a.Status, a.Message, a.JobID, a.JobSeq, a.DispatchedAt = okta.InstanceInProgress, fmt.Sprintf("wave %d", k), fmt.Sprintf("job-%d-%d", k, i), int64(i), now
		}
		before, err := s.Revision(ctx)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		skipped, err := s.WriteRollout(ctx, w)
		write += time.Since(start)
		if err != nil || skipped != 0 {
			b.Fatalf("WriteRollout = %d skipped, %v", skipped, err)
		}
		start = time.Now()
		ch, err := s.ChangesSince(ctx, before)
		feed += time.Since(start)
		if err != nil || len(ch.UpdateAgents) != n {
			b.Fatalf("ChangesSince = %d rows, %v", len(ch.UpdateAgents), err)
		}
	}
	b.ReportMetric(float64(create.Milliseconds()), "create-ms")
	b.ReportMetric(float64(write.Milliseconds())/float64(b.N), "write-ms")
	b.ReportMetric(float64(feed.Milliseconds())/float64(b.N), "feed-ms")
}
