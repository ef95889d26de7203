package e2e_test

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/internal/e2e"
)

// TestRegressionAfterInstallHaltsTheUpdate: a release that passes its
// install's health check and fails it a few seconds later. The canary
// installs it; its poolagent's health watch (every second) sees /healthz
// fail, the heartbeat says so, the server fails the canary with
// REGRESSION within the soak, and the error budget of 0 halts the update:
// no other host is handed the release.
func TestRegressionAfterInstallHaltsTheUpdate(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 0)
	bad, err := bins.BuildSampleFailingAfter(f.ctx, "1.3.0", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.srv.Publish(f.ctx, f.keys, "AD", "1.3.0", runtime.GOOS, runtime.GOARCH, bad, "GA"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"dc1", "dc2", "dc3"} {
		f.addHost(name, "", e2e.HostOptions{WatchInterval: time.Second})
	}
	f.waitAgents(3)
	id := f.create(`{"targetVersion":"1.3.0","rollout":{"canary":1,"waves":[100],"soakMinutes":5,"errorBudget":{"count":0}}}`)
	u := f.waitStatus(id, okta.JobFailed)

	var canary okta.Agent
	for _, a := range u.Agents {
		switch {
		case a.UpdateStatus == okta.InstanceFailed:
			canary = a
		case a.UpdateStatus == okta.InstanceSuccess || a.Version != "1.0.0":
			t.Errorf("a host beyond the canary took the release: %+v", a)
		}
	}
	t.Logf("%s: %s", canary.Name, canary.UpdateMessage)
	if !strings.HasPrefix(canary.UpdateMessage, "REGRESSION: health check failed ") ||
		!strings.Contains(canary.UpdateMessage, " after install: GET http://") || !strings.Contains(canary.UpdateMessage, "503") {
		t.Errorf("the canary's updateMessage: %q", canary.UpdateMessage)
	}
	var view struct{ Halted string }
	if err := json.Unmarshal(u.Rollout, &view); err != nil || !strings.HasPrefix(view.Halted, "ERROR_BUDGET: 1 of 3 hosts failed; the budget tolerates 0") {
		t.Errorf("rollout %s: %v", u.Rollout, err)
	}
	// The canary runs the release (a regression is no rollback) and is
	// DEGRADED with the reason; its own status shows the watch's result.
	var pools []okta.AgentPool
	f.api("GET", "/api/v1/agentPools", "", &pools)
	for _, a := range pools[0].Agents {
		if a.ID != canary.ID {
			continue
		}
		if a.OperationalStatus != okta.OperationalStatusDegraded || !strings.HasPrefix(a.OperationalMessage, "health check failed: GET http://") {
			t.Errorf("the canary in the pool: %s %q", a.OperationalStatus, a.OperationalMessage)
		}
	}
	var host *e2e.Host
	for _, h := range f.hosts {
		if h.Name == canary.Name {
			host = h
		}
	}
	if host == nil {
		t.Fatalf("no host named %s", canary.Name)
	}
	if v, err := host.InstalledVersion(f.ctx); err != nil || v != "1.3.0" {
		t.Errorf("the canary runs %q (%v), want 1.3.0", v, err)
	}
	st, err := host.Status(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range st.Agents {
		if a.Name == "ad-agent" && (a.Health == nil || a.Health.OK || !strings.Contains(a.Health.Reason, "503")) {
			t.Errorf("poolagent status of the canary: %+v", a.Health)
		}
	}
	if got := f.versions(); strings.Count(strings.Join(got, ","), "1.0.0") != 2 {
		t.Errorf("installed = %v, want the two other hosts still on 1.0.0", got)
	}
}
