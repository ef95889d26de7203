package controlplane_test

import (
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
)

// TestRegressedHostsRevertWhileUnhealthy: two hosts install a release
// that regresses a minute later; the regressions halt the update (budget
// of 1) and the fleet rollback hands both a revert job although they are
// DEGRADED and so fill the pool's maxUnavailable of 2: unhealthy hosts
// without a job do not hold back the reverts meant for them.
func TestRegressedHostsRevertWhileUnhealthy(t *testing.T) {
	f := newFleet(t)
	f.publish("1.0.0")
	f.publish("1.1.0")
	f.settings(`{"maxUnavailable":2}`)
	hs := []*host{f.host("dc1", "1.0.0"), f.host("dc2", "1.0.0"), f.host("dc3", "1.0.0"), f.host("dc4", "1.0.0"), f.host("dc5", "1.0.0")}
	u := f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0","rollout":{"errorBudget":{"count":1},"watchMinutes":10,"rollbackOnHalt":true}}`)
	var moved []*host
	for round := 0; round < 5 && len(moved) < 2; round++ {
		f.tick()
		for _, h := range hs {
			for _, j := range f.beat(h).Body.Jobs {
				if j.State == sailpoint.JobPending && len(moved) < 2 {
					moved = append(moved, h)
					f.run(h, j, true)
				}
			}
		}
	}
	if len(moved) != 2 {
		t.Fatalf("%d hosts took the release, want 2", len(moved))
	}
	f.clock.Advance(time.Minute)
	for _, h := range moved {
		h.status, h.health = sailpoint.StatusWarning, failing("health check failed: GET http://127.0.0.1:8089/healthz: HTTP 503")
	}
	for _, h := range hs {
		f.beat(h)
	}
	f.tick()
	got := f.update(u.ID)
	if got.Status != okta.JobFailed || !strings.HasPrefix(rollbackOf(t, got).Halted, "ERROR_BUDGET: 2 of 5 hosts failed") {
		t.Fatalf("update after the regressions: %s, rollout %s", got.Status, got.Rollout)
	}
	degraded := 0
	for _, a := range f.agentsOf() {
		if a.OperationalStatus == okta.OperationalStatusDegraded {
			degraded++
		}
	}
	if degraded != 2 {
		t.Errorf("%d agents DEGRADED, want the 2 regressed", degraded)
	}
	f.tick()
	jobs := revertJobs(t, f, hs)
	if len(jobs) != 2 {
		t.Fatalf("revert jobs for %d hosts while the regressed hosts fill maxUnavailable, want 2", len(jobs))
	}
	for _, h := range moved {
		j, ok := jobs[h]
		if !ok {
			t.Fatalf("%s has no revert job", h.hostname)
		}
		h.status, h.health = sailpoint.StatusNormal, &sailpoint.AgentHealth{OK: true, CheckedAt: "2026-03-02T10:02:00Z"}
		f.run(h, j, true)
	}
	f.tick()
	got = f.update(u.ID)
	if rb := rollbackOf(t, got).Rollback; rb == nil || rb.State != "Done" || rb.Reverted != 2 || rb.Failed != 0 {
		t.Errorf("rollout after the reverts: %s", got.Rollout)
	}
	for _, h := range moved {
		if row := agentRow(t, got, h.hostname); row.UpdateStatus != okta.InstanceFailed || !strings.HasPrefix(row.UpdateMessage, "ROLLED_BACK: back on 1.0.0 after ERROR_BUDGET: ") {
			t.Errorf("%s: %+v", h.hostname, row)
		}
	}
}
