package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
)

// sameRow reports whether two agents' shares of an update are equal, field
// by field (times by instant).
func sameRow(a, b store.UpdateAgent) bool {
	if !a.ModifiedAt.Equal(b.ModifiedAt) || !a.DispatchedAt.Equal(b.DispatchedAt) {
		return false
	}
	a.ModifiedAt, a.DispatchedAt, b.ModifiedAt, b.DispatchedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return a == b
}

func mustRev(t *testing.T, s store.Store) int64 {
	t.Helper()
	rev, err := s.Revision(context.Background())
	if err != nil {
		t.Fatalf("Revision: %v", err)
	}
	return rev
}

func mustChanges(t *testing.T, s store.Store, since int64) *store.Changes {
	t.Helper()
	ch, err := s.ChangesSince(context.Background(), since)
	if err != nil {
		t.Fatalf("ChangesSince(%d): %v", since, err)
	}
	return ch
}

func rowsByKey(rows []store.UpdateAgentRow) map[[2]string]store.UpdateAgentRow {
	m := make(map[[2]string]store.UpdateAgentRow, len(rows))
	for _, r := range rows {
		m[[2]string{r.UpdateID, r.AgentID}] = r
	}
	return m
}

func updateIDs(us []*store.Update) []string {
	var ids []string
	for _, u := range us {
		ids = append(ids, u.ID)
	}
	return ids
}

func testChanges(t *testing.T, s store.Store) {
	ctx := context.Background()
	r0 := mustRev(t, s)
	p := mustPool(t, s, okta.AgentTypeAD, "a")
	c := &store.Client{ID: "host-1", PoolID: p.ID, SecretHash: []byte("h1"), CreatedAt: now}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if c.Rev <= r0 {
		t.Errorf("created client Rev = %d, want > %d", c.Rev, r0)
	}
	a := &store.Agent{ID: store.NewID("agt"), PoolID: p.ID, Name: "x", Type: okta.AgentTypeAD, CreatedAt: now}
	if err := s.CreateAgent(ctx, a); err != nil {
		t.Fatal(err)
	}
	if a.Rev <= c.Rev {
		t.Errorf("created agent Rev = %d, want > %d (the client's)", a.Rev, c.Rev)
	}

	// A created update and its rows come back from before, not from after.
	before := mustRev(t, s)
	u := &store.Update{ID: store.NewID("upd"), PoolID: p.ID, AgentType: okta.AgentTypeAD, Status: okta.JobInProgress, Name: "u", CreatedAt: now, ModifiedAt: now,
		Schedule: &store.Schedule{Cron: "0 2 * * *", Timezone: "UTC"},
		Agents: []store.UpdateAgent{
			{AgentID: "agtA", Status: okta.InstanceScheduled, ModifiedAt: now, JobID: "job-a", JobSeq: 1, DispatchedAt: now, FromVersion: "1.0.0"},
			{AgentID: "agtB", Status: okta.InstanceScheduled, ModifiedAt: now, JobID: "job-b", JobSeq: 2, DispatchedAt: now},
		}}
	u2 := &store.Update{ID: store.NewID("upd"), PoolID: p.ID, AgentType: okta.AgentTypeAD, Status: okta.JobInProgress, Name: "u2", CreatedAt: now, ModifiedAt: now}
	for _, x := range []*store.Update{u, u2} {
		if err := s.CreateUpdate(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	after := mustRev(t, s)
	if u.Rev <= before || u2.Rev <= u.Rev || after != u2.Rev {
		t.Errorf("revisions: before %d, update %d, update 2 %d, after %d", before, u.Rev, u2.Rev, after)
	}
	for _, ua := range u.Agents {
		if ua.Rev != u.Rev {
			t.Errorf("created row %s Rev = %d, want the update's %d", ua.AgentID, ua.Rev, u.Rev)
		}
	}
	ch := mustChanges(t, s, before)
	if ch.Rev != after {
		t.Errorf("ChangesSince(before).Rev = %d, want %d", ch.Rev, after)
	}
	if len(ch.Updates) != 2 || ch.Updates[0].ID != u.ID || ch.Updates[0].Agents != nil || ch.Updates[0].Rev != u.Rev || ch.Updates[0].Name != "u" ||
		ch.Updates[0].Schedule == nil || ch.Updates[1].ID != u2.ID {
		t.Errorf("ChangesSince(before).Updates = %+v", ch.Updates)
	}
	got := rowsByKey(ch.UpdateAgents)
	if len(got) != 2 {
		t.Errorf("ChangesSince(before).UpdateAgents = %+v", ch.UpdateAgents)
	}
	for _, ua := range u.Agents {
		if r, ok := got[[2]string{u.ID, ua.AgentID}]; !ok || !sameRow(r.UpdateAgent, ua) {
			t.Errorf("row %s in the feed = %+v, want %+v", ua.AgentID, r, ua)
		}
	}
	if len(ch.Agents)+len(ch.Clients)+len(ch.Deleted)+len(ch.RemovedUpdateAgents) != 0 {
		t.Errorf("ChangesSince(before) lists older or unrelated rows: %+v", ch)
	}
	if ch := mustChanges(t, s, after); ch.Rev != after || len(ch.Updates)+len(ch.UpdateAgents)+len(ch.Agents)+len(ch.Clients) != 0 {
		t.Errorf("ChangesSince(after) = %+v", ch)
	}
	ch = mustChanges(t, s, r0)
	if len(ch.Clients) != 1 || ch.Clients[0].ID != c.ID || ch.Clients[0].Rev != c.Rev || ch.Clients[0].Facts != "" ||
		len(ch.Agents) != 1 || ch.Agents[0].ID != a.ID || ch.Agents[0].Rev != a.Rev || len(ch.Updates) != 2 {
		t.Errorf("ChangesSince(start) = clients %+v agents %+v updates %v", ch.Clients, ch.Agents, updateIDs(ch.Updates))
	}

	// Reads carry the revisions.
	gu, err := s.GetUpdate(ctx, p.ID, u.ID)
	if err != nil || gu.Rev != u.Rev || gu.Agents[0].Rev != u.Rev {
		t.Errorf("GetUpdate Rev = %+v, %v", gu, err)
	}
	if l, _ := s.ListUpdates(ctx, p.ID, nil); len(l) != 2 || l[0].Rev != u.Rev || l[0].Agents[1].Rev != u.Rev {
		t.Errorf("ListUpdates Rev = %+v", l)
	}
	if l, _ := s.ListActiveUpdates(ctx, okta.JobInProgress); len(l) != 2 || l[0].Rev != u.Rev || l[0].Agents[0].Rev != u.Rev {
		t.Errorf("ListActiveUpdates Rev = %+v", l)
	}
	if l, _ := s.ListAgents(ctx, p.ID); len(l) != 1 || l[0].Rev != a.Rev {
		t.Errorf("ListAgents Rev = %+v", l)
	}
	if got, _ := s.GetClient(ctx, c.ID); got == nil || got.Rev != c.Rev {
		t.Errorf("GetClient Rev = %+v", got)
	}
	if l, _ := s.ListClients(ctx); len(l) != 1 || l[0].Rev != c.Rev {
		t.Errorf("ListClients Rev = %+v", l)
	}

	// A heartbeat's job report, upserted agent and facts come back.
	before = mustRev(t, s)
	hb := store.Heartbeat{ClientID: c.ID, PoolID: p.ID, Seen: now.Add(time.Minute), Hostname: "dc1", OS: "linux", Facts: `{"a":1}`,
		Agents: []store.AgentSeen{{AgentName: "ad", Name: "dc1", Type: okta.AgentTypeAD, Version: "1.0.0", Status: okta.OperationalStatusOperational}},
		Jobs:   []store.JobReport{{JobID: "job-a", Status: okta.InstanceInProgress, Progress: 30, Phase: "download", Diagnostics: `{"x":1}`}}}
	if err := s.ApplyHeartbeats(ctx, []store.Heartbeat{hb}); err != nil {
		t.Fatal(err)
	}
	ch = mustChanges(t, s, before)
	if ch.Rev <= before || len(ch.UpdateAgents) != 1 || ch.UpdateAgents[0].AgentID != "agtA" || ch.UpdateAgents[0].Status != okta.InstanceInProgress ||
		ch.UpdateAgents[0].Progress != 30 || ch.UpdateAgents[0].Phase != "download" || ch.UpdateAgents[0].JobSeq != 1 || ch.UpdateAgents[0].Rev != ch.Rev {
		t.Errorf("heartbeat's job report in the feed: rev %d, %+v", ch.Rev, ch.UpdateAgents)
	}
	if len(ch.Agents) != 1 || ch.Agents[0].AgentName != "ad" || ch.Agents[0].ClientID != c.ID || ch.Agents[0].Rev != ch.Rev {
		t.Errorf("heartbeat's agent in the feed: %+v", ch.Agents)
	}
	if len(ch.Clients) != 1 || ch.Clients[0].Hostname != "dc1" || ch.Clients[0].Facts != "" || len(ch.Updates) != 0 {
		t.Errorf("heartbeat's client in the feed: %+v, updates %v", ch.Clients, updateIDs(ch.Updates))
	}
	// The same report again and last-seen times change nothing the feed
	// lists.
	before = mustRev(t, s)
	hb.Seen = hb.Seen.Add(time.Minute)
	hb.Jobs = []store.JobReport{{JobID: "job-a", Progress: 30, Phase: "download"}}
	if err := s.ApplyHeartbeats(ctx, []store.Heartbeat{hb}); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchClients(ctx, map[string]time.Time{c.ID: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if ch := mustChanges(t, s, before); len(ch.Updates)+len(ch.UpdateAgents)+len(ch.Agents)+len(ch.Clients) != 0 {
		t.Errorf("an unchanged heartbeat or TouchClients produced changes: %+v", ch)
	}
	// New facts alone (an agent's updateStatus) are stored but keep the
	// client out of the feed: nothing the feed carries changed.
	before = mustRev(t, s)
	hb.Facts, hb.Jobs, hb.Agents = `{"a":2}`, nil, nil
	if err := s.ApplyHeartbeats(ctx, []store.Heartbeat{hb}); err != nil {
		t.Fatal(err)
	}
	if ch := mustChanges(t, s, before); len(ch.Clients) != 0 {
		t.Errorf("a change of the facts alone put the client in the feed: %+v", ch.Clients)
	}
	if got, err := s.GetClient(ctx, c.ID); err != nil || got.Facts != `{"a":2}` {
		t.Errorf("facts after a facts-only heartbeat: %+v %v", got, err)
	}
	before = mustRev(t, s)
	if err := s.TouchClients(ctx, map[string]time.Time{c.ID: now.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if r := mustRev(t, s); r != before {
		t.Errorf("TouchClients moved the revision from %d to %d", before, r)
	}

	// WriteRollout: compare-and-set on what was read.
	cur, err := s.GetUpdate(ctx, p.ID, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	cur2, err := s.GetUpdate(ctx, p.ID, u2.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Meanwhile a host reports on agtA and an operator changes u2.
	if err := s.ApplyHeartbeats(ctx, []store.Heartbeat{{ClientID: c.ID, PoolID: p.ID, Seen: now.Add(3 * time.Hour),
		Jobs: []store.JobReport{{JobID: "job-a", Status: okta.InstanceFailed, Message: "disk full"}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ModifyUpdate(ctx, p.ID, u2.ID, func(u *store.Update) error { u.SortOrder = 5; return nil }); err != nil {
		t.Fatal(err)
	}
	before = mustRev(t, s)
	hdr := *cur
	hdr.Agents = nil
	hdr.Status, hdr.ResumeStatus, hdr.Rollout, hdr.ModifiedAt = okta.JobPaused, okta.JobInProgress, `{"wave":2}`, now.Add(4*time.Hour)
	hdr.Schedule = &store.Schedule{LastUpdated: now.Add(4 * time.Hour)}
	hdr.Name = "not the engine's"
	hdr2 := *cur2
	hdr2.Status = okta.JobSuccess
	rowA, rowB := cur.Agents[0], cur.Agents[1]
	rowA.Message, rowB.Message = "engine", "engine"
	rowB.Status, rowB.Progress, rowB.Phase, rowB.JobID, rowB.JobSeq, rowB.FromVersion = okta.InstanceInProgress, 5, "p", "job-b2", 9, "0.9.0"
	rowB.ModifiedAt, rowB.DispatchedAt = now.Add(4*time.Hour), now.Add(4*time.Hour)
	w := &store.RolloutWrite{
		Updates: []*store.Update{&hdr, &hdr2},
		Agents: []store.UpdateAgentRow{
			{UpdateID: u.ID, UpdateAgent: rowA}, // changed by the heartbeat: skipped
			{UpdateID: u.ID, UpdateAgent: rowB}, // written
			{UpdateID: u.ID, UpdateAgent: store.UpdateAgent{AgentID: "agtC", Position: 2, Status: okta.InstanceScheduled, ModifiedAt: now}}, // inserted
			{UpdateID: u.ID, UpdateAgent: store.UpdateAgent{AgentID: "agtB", Status: okta.InstanceScheduled}},                               // exists: skipped
			{UpdateID: "updGone", UpdateAgent: store.UpdateAgent{AgentID: "agtC", Status: okta.InstanceScheduled}},                          // no update: skipped
		},
	}
	skipped, err := s.WriteRollout(ctx, w)
	if err != nil {
		t.Fatalf("WriteRollout: %v", err)
	}
	wrev := mustRev(t, s)
	if skipped != 4 || wrev != before+1 {
		t.Errorf("WriteRollout skipped %d (want 4), revision %d -> %d", skipped, before, wrev)
	}
	if hdr.Rev != wrev || hdr2.Rev != cur2.Rev || w.Agents[0].Rev != rowA.Rev || w.Agents[1].Rev != wrev || w.Agents[2].Rev != wrev || w.Agents[3].Rev != 0 || w.Agents[4].Rev != 0 {
		t.Errorf("Revs after WriteRollout: headers %d %d, rows %d %d %d %d %d (written: %d)", hdr.Rev, hdr2.Rev, w.Agents[0].Rev, w.Agents[1].Rev, w.Agents[2].Rev,
			w.Agents[3].Rev, w.Agents[4].Rev, wrev)
	}
	gu, _ = s.GetUpdate(ctx, p.ID, u.ID)
	if gu.Status != okta.JobPaused || gu.ResumeStatus != okta.JobInProgress || gu.Rollout != `{"wave":2}` || !gu.ModifiedAt.Equal(now.Add(4*time.Hour)) ||
		gu.Schedule == nil || !gu.Schedule.LastUpdated.Equal(now.Add(4*time.Hour)) || gu.Schedule.Cron != "0 2 * * *" || gu.Name != "u" || gu.Rev != wrev {
		t.Errorf("header after WriteRollout = %+v %+v", gu, gu.Schedule)
	}
	if len(gu.Agents) != 3 || gu.Agents[0].Status != okta.InstanceFailed || gu.Agents[0].Message != "disk full" || !sameRow(gu.Agents[1], w.Agents[1].UpdateAgent) ||
		!sameRow(gu.Agents[2], w.Agents[2].UpdateAgent) {
		t.Errorf("rows after WriteRollout = %+v", gu.Agents)
	}
	if d, _ := s.UpdateAgentDiagnostics(ctx, u.ID, "agtA"); d != `{"x":1}` {
		t.Errorf("diagnostics = %q", d)
	}
	if gu2, _ := s.GetUpdate(ctx, p.ID, u2.ID); gu2.Status != okta.JobInProgress || gu2.SortOrder != 5 {
		t.Errorf("a stale header was written: %+v", gu2)
	}
	ch = mustChanges(t, s, before)
	if ch.Rev != wrev || len(ch.Updates) != 1 || ch.Updates[0].ID != u.ID || len(ch.UpdateAgents) != 2 {
		t.Errorf("ChangesSince(WriteRollout) = rev %d, updates %v, rows %+v", ch.Rev, updateIDs(ch.Updates), ch.UpdateAgents)
	}
	// The writer's own revision left out: the same snapshot without it.
	if own, err := s.ChangesSince(ctx, before, wrev); err != nil || own.Rev != wrev || len(own.Updates)+len(own.UpdateAgents) != 0 {
		t.Errorf("ChangesSince(%d, skip %d) = %+v, %v; want nothing but the revision", before, wrev, own, err)
	}
	if other, err := s.ChangesSince(ctx, before, wrev+100); err != nil || len(other.UpdateAgents) != 2 {
		t.Errorf("ChangesSince skipping an unrelated revision = %+v, %v", other, err)
	}
	// Writing the same (now current) rows again succeeds.
	if skipped, err := s.WriteRollout(ctx, &store.RolloutWrite{Updates: []*store.Update{&hdr}, Agents: w.Agents[1:3]}); err != nil || skipped != 0 {
		t.Errorf("second WriteRollout = %d, %v", skipped, err)
	}
	// A key twice: the first entry is written.
	dup := []store.UpdateAgentRow{w.Agents[1], w.Agents[1]}
	dup[0].Message, dup[1].Message = "first", "second"
	if skipped, err := s.WriteRollout(ctx, &store.RolloutWrite{Agents: dup}); err != nil || skipped != 1 {
		t.Errorf("WriteRollout of a key twice = %d, %v", skipped, err)
	}
	if gu, _ := s.GetUpdate(ctx, p.ID, u.ID); gu.Agents[1].Message != "first" || gu.Agents[1].Rev != dup[0].Rev || dup[1].Rev != w.Agents[1].Rev {
		t.Errorf("WriteRollout of a key twice wrote %+v (revs %d, %d)", gu.Agents[1], dup[0].Rev, dup[1].Rev)
	}

	// An agent removed from an update leaves a tombstone until it is
	// added back.
	before = mustRev(t, s)
	if _, err := s.ModifyUpdate(ctx, p.ID, u.ID, func(u *store.Update) error {
		u.Agents = slices.DeleteFunc(u.Agents, func(ua store.UpdateAgent) bool { return ua.AgentID == "agtC" })
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ch = mustChanges(t, s, before)
	if len(ch.RemovedUpdateAgents) != 1 || ch.RemovedUpdateAgents[0].UpdateID != u.ID || ch.RemovedUpdateAgents[0].AgentID != "agtC" ||
		ch.RemovedUpdateAgents[0].Rev != ch.Rev || len(ch.Updates) != 1 || len(ch.UpdateAgents) != 0 {
		t.Errorf("removal in the feed: removed %+v, updates %v, rows %+v", ch.RemovedUpdateAgents, updateIDs(ch.Updates), ch.UpdateAgents)
	}
	if skipped, err := s.WriteRollout(ctx, &store.RolloutWrite{Agents: []store.UpdateAgentRow{w.Agents[2]}}); err != nil || skipped != 1 {
		t.Errorf("WriteRollout on a removed row = %d, %v (want skipped)", skipped, err)
	}
	readd := w.Agents[2]
	readd.Rev = 0
	if skipped, err := s.WriteRollout(ctx, &store.RolloutWrite{Agents: []store.UpdateAgentRow{readd}}); err != nil || skipped != 0 {
		t.Errorf("WriteRollout adding a removed row back = %d, %v", skipped, err)
	}
	ch = mustChanges(t, s, before)
	if len(ch.RemovedUpdateAgents) != 0 || len(ch.UpdateAgents) != 1 || ch.UpdateAgents[0].AgentID != "agtC" {
		t.Errorf("after adding back: removed %+v, rows %+v", ch.RemovedUpdateAgents, ch.UpdateAgents)
	}

	// DeleteUpdate yields a tombstone, and a stale header is skipped.
	before = mustRev(t, s)
	if err := s.DeleteUpdate(ctx, p.ID, u.ID, nil); err != nil {
		t.Fatal(err)
	}
	ch = mustChanges(t, s, before)
	if !slices.Equal(ch.Deleted, []string{u.ID}) || len(ch.Updates)+len(ch.UpdateAgents)+len(ch.RemovedUpdateAgents) != 0 || ch.Rev != before+1 {
		t.Errorf("ChangesSince(delete) = %+v", ch)
	}
	if skipped, err := s.WriteRollout(ctx, &store.RolloutWrite{Updates: []*store.Update{&hdr}, Agents: []store.UpdateAgentRow{readd}}); err != nil || skipped != 2 {
		t.Errorf("WriteRollout on a deleted update = %d, %v (want 2 skipped)", skipped, err)
	}
	if ch := mustChanges(t, s, r0); slices.Contains(updateIDs(ch.Updates), u.ID) || !slices.Contains(ch.Deleted, u.ID) {
		t.Errorf("the full feed lists the deleted update: updates %v, deleted %v", updateIDs(ch.Updates), ch.Deleted)
	}
}

// testChangesConcurrent has hosts' job reports, the rollout engine's
// writes and an operator's changes race while a reader follows the
// change feed: applying the feed in order must end where a full read
// does. A store whose revisions became visible out of commit order would
// make the reader miss rows.
func testChangesConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	p := mustPool(t, s, okta.AgentTypeAD, "a")
	c := &store.Client{ID: "host-1", PoolID: p.ID, SecretHash: []byte("h1"), CreatedAt: now}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	start := mustRev(t, s)
	const n = 40
	u := &store.Update{ID: store.NewID("upd"), PoolID: p.ID, AgentType: okta.AgentTypeAD, Status: okta.JobInProgress, CreatedAt: now, ModifiedAt: now}
	for i := range n {
		u.Agents = append(u.Agents, store.UpdateAgent{AgentID: fmt.Sprintf("agt%02d", i), Status: okta.InstanceScheduled, JobID: fmt.Sprintf("job-%d", i), ModifiedAt: now})
	}
	if err := s.CreateUpdate(ctx, u); err != nil {
		t.Fatal(err)
	}

	var writers sync.WaitGroup
	// Hosts report progress and status by job id.
	for g := range 2 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			rnd := rand.New(rand.NewPCG(uint64(g), 1))
			for k := range 60 {
				j := store.JobReport{JobID: fmt.Sprintf("job-%d", rnd.IntN(n)), Progress: k, Phase: fmt.Sprintf("hb%d", g)}
				if k%3 == 0 {
					j.Status, j.Message = okta.InstanceInProgress, fmt.Sprintf("hb-%d-%d", g, k)
				}
				if err := s.ApplyHeartbeats(ctx, []store.Heartbeat{{ClientID: c.ID, PoolID: p.ID, Seen: now, Jobs: []store.JobReport{j}}}); err != nil {
					t.Errorf("ApplyHeartbeats: %v", err)
					return
				}
			}
		}()
	}
	// The engine writes what it read, some of it stale by then.
	for g := range 2 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			rnd := rand.New(rand.NewPCG(uint64(g), 2))
			for k := range 30 {
				cur, err := s.GetUpdate(ctx, p.ID, u.ID)
				if err != nil {
					t.Errorf("GetUpdate: %v", err)
					return
				}
				w := &store.RolloutWrite{Updates: []*store.Update{cur}}
				cur.Rollout = fmt.Sprintf("wr-%d-%d", g, k)
				for range 5 {
					r := store.UpdateAgentRow{UpdateID: u.ID, UpdateAgent: cur.Agents[rnd.IntN(len(cur.Agents))]}
					r.Message, r.JobSeq = fmt.Sprintf("wr-%d-%d", g, k), int64(k)
					w.Agents = append(w.Agents, r)
				}
				if rnd.IntN(4) == 0 {
					// Add the extra agent back, unless it is there.
					w.Agents = append(w.Agents, store.UpdateAgentRow{UpdateID: u.ID, UpdateAgent: store.UpdateAgent{AgentID: "extra", Position: n,
						Status: okta.InstanceScheduled, Message: fmt.Sprintf("wr-%d-%d", g, k)}})
				}
				if _, err := s.WriteRollout(ctx, w); err != nil {
					t.Errorf("WriteRollout: %v", err)
					return
				}
			}
		}()
	}
	// An operator changes the header and removes the extra agent.
	writers.Add(1)
	go func() {
		defer writers.Done()
		for k := range 20 {
			_, err := s.ModifyUpdate(ctx, p.ID, u.ID, func(u *store.Update) error {
				u.SortOrder = k
				if k%2 == 0 {
					u.Agents = slices.DeleteFunc(u.Agents, func(ua store.UpdateAgent) bool { return ua.AgentID == "extra" })
				}
				return nil
			})
			if err != nil {
				t.Errorf("ModifyUpdate: %v", err)
				return
			}
		}
	}()
	done := make(chan struct{})
	go func() { writers.Wait(); close(done) }()

	// The reader applies the feed in order.
	rev := start
	var header *store.Update
	rows := map[string]store.UpdateAgent{}
	apply := func(ch *store.Changes) {
		if ch.Rev < rev {
			t.Errorf("the revision went back from %d to %d", rev, ch.Rev)
		}
		for _, h := range ch.Updates {
			if h.Rev <= rev || h.Rev > ch.Rev {
				t.Errorf("header Rev %d outside (%d, %d]", h.Rev, rev, ch.Rev)
			}
			header = h
		}
		for _, r := range ch.UpdateAgents {
			if r.Rev <= rev || r.Rev > ch.Rev {
				t.Errorf("row %s Rev %d outside (%d, %d]", r.AgentID, r.Rev, rev, ch.Rev)
			}
			if old, ok := rows[r.AgentID]; ok && old.Rev >= r.Rev {
				t.Errorf("row %s went from Rev %d to %d", r.AgentID, old.Rev, r.Rev)
			}
			rows[r.AgentID] = r.UpdateAgent
		}
		for _, r := range ch.RemovedUpdateAgents {
			delete(rows, r.AgentID)
		}
		rev = ch.Rev
	}
	polls := 0
	for {
		finished := false
		select {
		case <-done:
			finished = true
		default:
		}
		// After the writers finish, one more read sees everything.
		apply(mustChanges(t, s, rev))
		polls++
		if finished {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if t.Failed() {
		return
	}
	got, err := s.GetUpdate(ctx, p.ID, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if header == nil || header.Rev != got.Rev || header.SortOrder != got.SortOrder || header.Rollout != got.Rollout {
		if header == nil {
			t.Errorf("the feed has no header")
		} else {
			t.Errorf("header from the feed: rev %d, sort order %d, rollout %q; full read: rev %d, sort order %d, rollout %q",
				header.Rev, header.SortOrder, header.Rollout, got.Rev, got.SortOrder, got.Rollout)
		}
	}
	if len(rows) != len(got.Agents) {
		t.Errorf("the feed has %d rows, a full read %d", len(rows), len(got.Agents))
	}
	for _, ua := range got.Agents {
		if r, ok := rows[ua.AgentID]; !ok || !sameRow(r, ua) {
			t.Errorf("row %s from the feed = %+v, full read %+v", ua.AgentID, r, ua)
		}
	}
	t.Logf("%d polls of the feed up to revision %d", polls, rev)
}

// testWriteRolloutMany: a dispatch of more rows than one statement of the
// store carries, with rows already there (a host's earlier row) spread
// through it: every new row is inserted with its fields and the revision,
// each existing one is skipped and keeps what it had.
func testWriteRolloutMany(t *testing.T, s store.Store) {
	ctx := context.Background()
	p := mustPool(t, s, okta.AgentTypeAD, "a")
	const n = 1000
	u := &store.Update{ID: store.NewID("upd"), PoolID: p.ID, AgentType: okta.AgentTypeAD, Status: okta.JobInProgress, CreatedAt: now, ModifiedAt: now}
	exists := func(i int) bool { return i%97 == 5 || i == n-1 }
	for i := range n {
		if exists(i) {
			u.Agents = append(u.Agents, store.UpdateAgent{AgentID: fmt.Sprintf("agt%04d", i), Position: i, Status: okta.InstanceFailed, Message: "before", ModifiedAt: now})
		}
	}
	if err := s.CreateUpdate(ctx, u); err != nil {
		t.Fatal(err)
	}
	w := &store.RolloutWrite{}
	for i := range n {
		w.Agents = append(w.Agents, store.UpdateAgentRow{UpdateID: u.ID, UpdateAgent: store.UpdateAgent{AgentID: fmt.Sprintf("agt%04d", i), Position: i,
			Status: okta.InstanceScheduled, ModifiedAt: now, JobID: fmt.Sprintf("job-%d", i), JobSeq: int64(i + 1), DispatchedAt: now, FromVersion: "1.0.0"}})
	}
	skipped, err := s.WriteRollout(ctx, w)
	if err != nil {
		t.Fatalf("WriteRollout: %v", err)
	}
	rev := mustRev(t, s)
	var want int
	for i, a := range w.Agents {
		switch {
		case exists(i) && a.Rev != 0:
			t.Errorf("row %d existed but was marked written (Rev %d)", i, a.Rev)
		case !exists(i) && a.Rev != rev:
			t.Errorf("row %d Rev = %d, want the write's %d", i, a.Rev, rev)
		}
		if exists(i) {
			want++
		}
	}
	if skipped != want {
		t.Errorf("skipped %d, want %d", skipped, want)
	}
	gu, err := s.GetUpdate(ctx, p.ID, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(gu.Agents) != n {
		t.Fatalf("update has %d rows, want %d", len(gu.Agents), n)
	}
	for _, a := range gu.Agents {
		var i int
		if _, err := fmt.Sscanf(a.AgentID, "agt%04d", &i); err != nil {
			t.Fatalf("row %q: %v", a.AgentID, err)
		}
		if exists(i) {
			if a.Status != okta.InstanceFailed || a.Message != "before" || a.JobID != "" {
				t.Errorf("existing row %d was overwritten: %+v", i, a)
			}
			continue
		}
		if !sameRow(a, w.Agents[i].UpdateAgent) {
			t.Errorf("row %d = %+v, want %+v", i, a, w.Agents[i].UpdateAgent)
		}
	}
}
