package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
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

// BenchReports measures what a rollout's job reports cost the store: n
// hosts, each with facts of about 1 KiB, an agent and a job handed out;
// per iteration every host reports its job FINISHED with its agent's new
// version (new facts, the agent row, the job row), batch hosts to an
// ApplyHeartbeats (one group commit), in the order the hosts registered.
// It reports the store's time per report (µs/report); withFacts false
// leaves the facts out (the agent and job rows alone).
func BenchReports(b *testing.B, s store.Store, n, batch int, withFacts bool) {
	ctx := context.Background()
	p := &store.Pool{ID: store.NewID("pol"), Name: "bench", Type: okta.AgentTypeAD, CreatedAt: now}
	if err := s.CreatePool(ctx, p); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	facts := func(i int, version string) string {
		return fmt.Sprintf(`{"hostname":"host-%07d.example.com","internal_ip":"10.0.%d.%d","os_type":"ubuntu","os_version":"24.04","hypervisor":"kvm",`+
			`"agents":[{"name":"ad-agent","type":"AD","version":%q,"updateStatus":"Success","updateMessage":"","sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},`+
			`{"name":"poolagent","type":"poolagent","version":"0.3.0","updateStatus":"","updateMessage":""}],"padding":%q}`,
			i, i/256%256, i%256, version, strings.Repeat("x", 600))
	}
	hbs := make([]store.Heartbeat, n)
	for i := range n {
		ids[i] = fmt.Sprintf("cli%07d", i)
		if err := s.CreateClient(ctx, &store.Client{ID: ids[i], PoolID: p.ID, SecretHash: []byte("secret-" + ids[i]), CreatedAt: now}); err != nil {
			b.Fatal(err)
		}
		hbs[i] = store.Heartbeat{ClientID: ids[i], PoolID: p.ID, Seen: now, Hostname: ids[i], Status: "NORMAL", OS: "linux", Arch: "amd64",
			Facts: facts(i, "1.0.0"), Agents: []store.AgentSeen{{AgentName: "ad-agent", Name: ids[i], Type: okta.AgentTypeAD, Version: "1.0.0",
				Status: okta.OperationalStatusOperational}}}
	}
	for i := 0; i < n; i += 512 {
		if err := s.ApplyHeartbeats(ctx, hbs[i:min(i+512, n)]); err != nil {
			b.Fatal(err)
		}
	}
	agents, err := s.ListAgents(ctx, p.ID)
	if err != nil || len(agents) != n {
		b.Fatalf("ListAgents = %d, %v", len(agents), err)
	}
	u := &store.Update{ID: store.NewID("upd"), PoolID: p.ID, AgentType: okta.AgentTypeAD, Status: okta.JobInProgress, CreatedAt: now, ModifiedAt: now,
		Agents: make([]store.UpdateAgent, n)}
	for i, a := range agents {
		u.Agents[i] = store.UpdateAgent{AgentID: a.ID, Status: okta.InstanceInProgress, ModifiedAt: now}
	}
	if err := s.CreateUpdate(ctx, u); err != nil {
		b.Fatal(err)
	}
	var took time.Duration
	reports := 0
	b.ResetTimer()
	for k := range b.N {
		b.StopTimer()
		// Hand every host a new job (the engine's dispatch).
		w := &store.RolloutWrite{Agents: make([]store.UpdateAgentRow, n)}
		cur, err := s.GetUpdate(ctx, p.ID, u.ID)
		if err != nil {
			b.Fatal(err)
		}
		jobOf := map[string]string{}
		for i, ua := range cur.Agents {
			ua.JobID, ua.JobSeq, ua.DispatchedAt, ua.Status = uuid.Must(uuid.NewV7()).String(), int64(k*n+i+1), now, okta.InstanceInProgress
			w.Agents[i] = store.UpdateAgentRow{UpdateID: u.ID, UpdateAgent: ua}
			jobOf[ua.AgentID] = ua.JobID
		}
		if _, err := s.WriteRollout(ctx, w); err != nil {
			b.Fatal(err)
		}
		version := fmt.Sprintf("1.%d.0", k+1)
		for i, a := range agents {
			hb := &hbs[i]
			hb.Seen = now.Add(time.Duration(k+1) * time.Minute)
			hb.Facts = ""
			if withFacts {
				hb.Facts = facts(i, version)
			}
			hb.Agents[0].Version = version
			hb.Jobs = []store.JobReport{{JobID: jobOf[a.ID], Status: okta.InstanceSuccess, Progress: 100}}
		}
		b.StartTimer()
		start := time.Now()
		for i := 0; i < n; i += batch {
			if err := s.ApplyHeartbeats(ctx, hbs[i:min(i+batch, n)]); err != nil {
				b.Fatal(err)
			}
		}
		took += time.Since(start)
		reports += n
	}
	b.ReportMetric(float64(took.Microseconds())/float64(reports), "µs/report")
}
