package storetest

import (
	"context"
	"fmt"
	"testing"
	"unsafe"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
)

// testInterned checks that rows read back share one copy of each repeated
// low-cardinality value (the rollout engine keeps the whole fleet's rows),
// whichever read brought them: a list, a get or the change feed.
func testInterned(t *testing.T, s store.Store) {
	ctx := context.Background()
	p := mustPool(t, s, okta.AgentTypeAD, "intern")
	var hbs []store.Heartbeat
	for i := range 2 {
		id := fmt.Sprintf("host-intern-%d", i)
		if err := s.CreateClient(ctx, &store.Client{ID: id, PoolID: p.ID, SecretHash: []byte("secret-" + id), CreatedAt: now}); err != nil {
			t.Fatalf("CreateClient: %v", err)
		}
		hbs = append(hbs, store.Heartbeat{ClientID: id, PoolID: p.ID, Seen: now, Hostname: id, Status: "NORMAL", OS: "linux", Arch: "amd64",
			AgentVersion: "2.0.0", Timezone: "Europe/Paris", Facts: "{}",
			Agents: []store.AgentSeen{{AgentName: "ad", Name: id, Type: okta.AgentTypeAD, Version: "1.0.0", Status: okta.OperationalStatusDegraded, Message: "watch failed"}}})
	}
	if err := s.ApplyHeartbeats(ctx, hbs); err != nil {
		t.Fatalf("ApplyHeartbeats: %v", err)
	}
	agents, err := s.ListAgents(ctx, p.ID)
	if err != nil || len(agents) != 2 {
		t.Fatalf("ListAgents = %d agents, %v", len(agents), err)
	}
	u := &store.Update{ID: store.NewID("upd"), PoolID: p.ID, AgentType: okta.AgentTypeAD, Status: okta.JobInProgress, CreatedAt: now, ModifiedAt: now}
	for i, a := range agents {
		u.Agents = append(u.Agents, store.UpdateAgent{AgentID: a.ID, Status: okta.InstanceInProgress, Message: "downloading", Phase: "download",
			FromVersion: "1.0.0", JobID: fmt.Sprintf("job-intern-%d", i)})
	}
	if err := s.CreateUpdate(ctx, u); err != nil {
		t.Fatalf("CreateUpdate: %v", err)
	}

	clients, err := s.ListClients(ctx, p.ID)
	if err != nil || len(clients) != 2 {
		t.Fatalf("ListClients = %d clients, %v", len(clients), err)
	}
	got, err := s.GetUpdate(ctx, p.ID, u.ID)
	if err != nil || len(got.Agents) != 2 {
		t.Fatalf("GetUpdate = %+v, %v", got, err)
	}
	ch, err := s.ChangesSince(ctx, 0)
	if err != nil {
		t.Fatalf("ChangesSince: %v", err)
	}
	one, err := s.GetClient(ctx, "host-intern-0")
	if err != nil {
		t.Fatalf("GetClient: %v", err)
	}
	shared := func(what string, vals ...string) {
		t.Helper()
		for _, v := range vals[1:] {
			if v != vals[0] || unsafe.StringData(v) != unsafe.StringData(vals[0]) {
				t.Errorf("%s: %q read back as separate copies, want one shared copy", what, vals[0])
				return
			}
		}
	}
	a0, a1 := agents[0], agents[1]
	shared("agent pool id", a0.PoolID, a1.PoolID)
	shared("agent name", a0.AgentName, a1.AgentName)
	shared("agent type", string(a0.Type), string(a1.Type))
	shared("agent version", a0.Version, a1.Version)
	shared("agent status", string(a0.OperationalStatus), string(a1.OperationalStatus))
	shared("agent message", a0.OperationalMessage, a1.OperationalMessage)
	c0, c1 := clients[0], clients[1]
	shared("client pool id", c0.PoolID, c1.PoolID, one.PoolID)
	shared("client status", c0.Status, c1.Status, one.Status)
	shared("client os", c0.OS, c1.OS, one.OS)
	shared("client arch", c0.Arch, c1.Arch, one.Arch)
	shared("client agent version", c0.AgentVersion, c1.AgentVersion, one.AgentVersion)
	shared("client timezone", c0.Timezone, c1.Timezone, one.Timezone)
	u0, u1 := got.Agents[0], got.Agents[1]
	shared("update agent status", string(u0.Status), string(u1.Status))
	shared("update agent message", u0.Message, u1.Message)
	shared("update agent phase", u0.Phase, u1.Phase)
	shared("update agent from version", u0.FromVersion, u1.FromVersion, a0.Version)
	for _, ua := range ch.UpdateAgents {
		if ua.UpdateID == u.ID {
			shared("change feed update agent", ua.Message, u0.Message)
		}
	}
	for _, a := range ch.Agents {
		if a.PoolID == p.ID {
			shared("change feed agent", a.Version, a0.Version)
		}
	}
	for _, c := range ch.Clients {
		if c.PoolID == p.ID {
			shared("change feed client", c.OS, c0.OS)
		}
	}
}
