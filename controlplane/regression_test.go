package controlplane_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
)

// rolloutOf decodes an update's rollout extension.
func rolloutOf(t *testing.T, u okta.AgentPoolUpdate) (v struct {
	Halted            string
	AwaitingPromotion bool
	WatchMinutes      *int
}) {
	t.Helper()
	if err := json.Unmarshal(u.Rollout, &v); err != nil {
		t.Fatalf("rollout %s: %v", u.Rollout, err)
	}
	return v
}

// agentsOf lists the pool's agents as the Agent Pools API shows them.
func (f *fleet) agentsOf() []okta.Agent {
	f.t.Helper()
	var pools []okta.AgentPool
	f.do("GET", "/api/v1/agentPools", f.read, "").decode(f.t, &pools)
	if len(pools) != 1 {
		f.t.Fatalf("pools = %+v", pools)
	}
	return pools[0].Agents
}

func failing(reason string) *sailpoint.AgentHealth {
	return &sailpoint.AgentHealth{OK: false, CheckedAt: "2026-03-02T10:04:00Z", Reason: reason}
}

// TestHealthWatchDegradesTheAgent: a host whose watch of its agent fails
// shows that agent DEGRADED with the reason; healthy again, OPERATIONAL.
func TestHealthWatchDegradesTheAgent(t *testing.T) {
	f := newFleet(t)
	h := f.host("dc1", "1.0.0")
	f.host("dc2", "1.0.0")
	h.health = &sailpoint.AgentHealth{OK: true, CheckedAt: "2026-03-02T10:00:00Z"}
	f.beat(h)
	if a := f.agentsOf()[0]; a.OperationalStatus != okta.OperationalStatusOperational || a.OperationalMessage != "" {
		t.Fatalf("healthy: %+v", a)
	}
	// poolagent sends WARNING while an agent's watch fails.
	h.status = sailpoint.StatusWarning
	h.health = failing("health check failed: GET http://127.0.0.1:8089/healthz: HTTP 503 Service Unavailable")
	f.beat(h)
	agents := f.agentsOf()
	if a := agents[0]; a.OperationalStatus != okta.OperationalStatusDegraded ||
		a.OperationalMessage != "health check failed: GET http://127.0.0.1:8089/healthz: HTTP 503 Service Unavailable" {
		t.Errorf("failing watch: %+v", a)
	}
	if a := agents[1]; a.OperationalStatus != okta.OperationalStatusOperational {
		t.Errorf("the other host: %+v", a)
	}
	// A watch result whose only change is its time writes nothing new.
	h.health.CheckedAt = "2026-03-02T10:05:00Z"
	f.beat(h)
	h.status, h.health = sailpoint.StatusNormal, &sailpoint.AgentHealth{OK: true, CheckedAt: "2026-03-02T10:06:00Z"}
	f.beat(h)
	if a := f.agentsOf()[0]; a.OperationalStatus != okta.OperationalStatusOperational || a.OperationalMessage != "" {
		t.Errorf("healthy again: %+v", a)
	}
}

// TestRegressionWithinWatchHalts: a host whose agent turns unhealthy four
// minutes after its install, within the update's watch, fails the update:
// REGRESSION in its updateMessage, and with an error budget of 0 the
// update halts through the budget (jobs not started taken back).
func TestRegressionWithinWatchHalts(t *testing.T) {
	f := newFleet(t)
	f.publish("1.1.0")
	f.settings(`{"maxUnavailable":3}`)
	hs := []*host{f.host("dc1", "1.0.0"), f.host("dc2", "1.0.0"), f.host("dc3", "1.0.0")}
	u := f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0","rollout":{"errorBudget":{"count":0},"watchMinutes":10}}`)
	if w := rolloutOf(t, u).WatchMinutes; w == nil || *w != 10 {
		t.Errorf("watchMinutes not echoed: %s", u.Rollout)
	}
	f.tick()
	var first *host
	for _, h := range hs {
		if jobs := f.beat(h).Body.Jobs; len(jobs) == 1 {
			first = h
			f.run(h, jobs[0], true)
			break
		}
	}
	if first == nil {
		t.Fatal("no host got a job")
	}
	f.tick()
	got := f.update(u.ID)
	row := agentRow(t, got, first.hostname)
	if row.UpdateStatus != okta.InstanceSuccess || row.UpdateMessage != "watching its health until 2026-03-02T10:10:00Z" {
		t.Errorf("installed host in its watch: %+v", row)
	}
	f.clock.Advance(4 * time.Minute)
	first.status, first.health = sailpoint.StatusWarning, failing("health check failed: GET http://127.0.0.1:8089/healthz: HTTP 503")
	for _, h := range hs {
		f.beat(h)
	}
	f.tick()
	got = f.update(u.ID)
	row = agentRow(t, got, first.hostname)
	if row.UpdateStatus != okta.InstanceFailed || row.UpdateMessage != "REGRESSION: health check failed 4m after install: GET http://127.0.0.1:8089/healthz: HTTP 503" {
		t.Errorf("regressed host: %+v", row)
	}
	if got.Status != okta.JobFailed || rolloutOf(t, got).Halted != "ERROR_BUDGET: 1 of 3 hosts failed; the budget tolerates 0" {
		t.Errorf("update after the regression: %s, rollout %s", got.Status, got.Rollout)
	}
	for _, h := range hs {
		if h != first {
			if jobs := f.beat(h).Body.Jobs; len(jobs) != 0 {
				t.Errorf("%s still gets a job after the halt", h.hostname)
			}
		}
	}
}

// TestRegressionAfterWatchIsNotCounted: the update stays InProgress while
// its last host is watched, ends Success when the watch does, and a host
// that turns unhealthy after its watch changes nothing.
func TestRegressionAfterWatchIsNotCounted(t *testing.T) {
	f := newFleet(t)
	f.publish("1.1.0")
	h := f.host("dc1", "1.0.0")
	u := f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0","rollout":{"watchMinutes":5}}`)
	f.tick()
	f.run(h, f.beat(h).Body.Jobs[0], true)
	f.tick()
	if got := f.update(u.ID); got.Status != okta.JobInProgress || got.Agents[0].UpdateStatus != okta.InstanceSuccess {
		t.Errorf("within the watch: %s", statuses(got))
	}
	f.clock.Advance(5 * time.Minute)
	f.beat(h)
	f.tick()
	got := f.update(u.ID)
	if got.Status != okta.JobSuccess || got.Agents[0].UpdateMessage != "healthy through its watch after the install" {
		t.Errorf("after the watch: %s %+v", got.Status, got.Agents[0])
	}
	h.status, h.health = sailpoint.StatusWarning, failing("health check failed: command \"check\": exit status 1")
	f.beat(h)
	f.tick()
	if got := f.update(u.ID); statuses(got) != "Success:Success" {
		t.Errorf("a regression after the watch counted: %s", statuses(got))
	}
	if a := f.agentsOf()[0]; a.OperationalStatus != okta.OperationalStatusDegraded {
		t.Errorf("the agent is still shown as it is: %+v", a)
	}
}

// TestSilentHostPausesTheWave: a canary that stops heartbeating within
// its watch (the soak) is a regression: with continueOnError the update
// goes on, but the wave is held for an operator instead of promoted.
func TestSilentHostPausesTheWave(t *testing.T) {
	f := newFleet(t)
	f.publish("1.1.0")
	f.settings(`{"maxUnavailable":5,"continueOnError":true}`)
	hs := []*host{f.host("dc1", "1.0.0"), f.host("dc2", "1.0.0"), f.host("dc3", "1.0.0"), f.host("dc4", "1.0.0")}
	u := f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0","rollout":{"canary":1,"waves":[100],"soakMinutes":10}}`)
	f.tick()
	var canary *host
	for _, h := range hs {
		if jobs := f.beat(h).Body.Jobs; len(jobs) == 1 {
			canary = h
			f.run(h, jobs[0], true)
		}
	}
	if canary == nil {
		t.Fatal("no canary")
	}
	f.clock.Advance(time.Minute)
	for _, h := range hs {
		f.beat(h)
	}
	f.tick()
	// The canary goes silent; the others keep heartbeating.
	for range 4 {
		f.clock.Advance(time.Minute)
		for _, h := range hs {
			if h != canary {
				f.beat(h)
			}
		}
		f.tick()
	}
	got := f.update(u.ID)
	row := agentRow(t, got, canary.hostname)
	if row.UpdateStatus != okta.InstanceFailed || !strings.HasPrefix(row.UpdateMessage, "REGRESSION: the host stopped heartbeating 1m after install (last heard 2026-03-02T10:01:00Z)") {
		t.Errorf("silent canary: %+v", row)
	}
	if got.Status != okta.JobInProgress {
		t.Errorf("continueOnError: the update goes on, got %s", got.Status)
	}
	for range 6 {
		f.clock.Advance(time.Minute)
		for _, h := range hs {
			if h != canary {
				f.beat(h)
			}
		}
		f.tick()
	}
	got = f.update(u.ID)
	if got.Status != okta.JobPaused || !rolloutOf(t, got).AwaitingPromotion {
		t.Errorf("after the soak: %s, rollout %s", got.Status, got.Rollout)
	}
}

// agentRow finds a host's row in an update.
func agentRow(t *testing.T, u okta.AgentPoolUpdate, name string) okta.Agent {
	t.Helper()
	for _, a := range u.Agents {
		if a.Name == name {
			return a
		}
	}
	t.Fatalf("no agent %s in %+v", name, u.Agents)
	return okta.Agent{}
}
