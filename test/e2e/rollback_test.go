package e2e_test

import (
	"bytes"
	"encoding/json"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/internal/e2e"
)

// rollbackState is an update's rollout.halted and rollout.rollback.
type rollbackState struct {
	Halted   string
	Rollback *struct {
		State                                 string
		ToRevert, Reverting, Reverted, Failed int
	}
}

func rollbackStateOf(t *testing.T, u okta.AgentPoolUpdate) rollbackState {
	t.Helper()
	var v rollbackState
	if len(u.Rollout) > 0 {
		if err := json.Unmarshal(u.Rollout, &v); err != nil {
			t.Fatalf("rollout %s: %v", u.Rollout, err)
		}
	}
	return v
}

// waitRollbackDone waits for the update's fleet rollback to finish.
func (f *fleet) waitRollbackDone(id string) (okta.AgentPoolUpdate, rollbackState) {
	f.t.Helper()
	var u okta.AgentPoolUpdate
	var rb rollbackState
	f.eventually(2*time.Minute, "the fleet rollback finishes", func() (bool, error) {
		u = f.update(id)
		rb = rollbackStateOf(f.t, u)
		return rb.Rollback != nil && rb.Rollback.State == "Done", nil
	})
	return u, rb
}

// onDisk checks that every host's installed agent binary is the 1.0.0
// release, byte for byte, and says so.
func (f *fleet) allOnDisk(version string) {
	f.t.Helper()
	want, err := os.ReadFile(samples[version])
	if err != nil {
		f.t.Fatal(err)
	}
	for i, v := range f.versions() {
		h := f.hosts[i]
		got, err := os.ReadFile(h.Binary)
		if err != nil {
			f.t.Fatal(err)
		}
		if v != version || !bytes.Equal(got, want) {
			f.t.Errorf("%s: %s on disk (the %s binary: %t), want %s", h.Name, v, version, bytes.Equal(got, want), version)
		}
	}
}

// TestRollbackOnHaltThroughRealHosts: release 1.3.0 fails its health check
// on two of six hosts (dc4, dc6). The error budget tolerates one failure;
// the second halts the update after dc1, dc2, dc3 and dc5 took it. With
// rollbackOnHalt every host it reached goes back to 1.0.0 on disk, under
// the host's own allow_revert (the default), from the binary it kept (no
// download), and the API says ROLLED_BACK.
func TestRollbackOnHaltThroughRealHosts(t *testing.T) {
	t.Parallel()
	bad, err := bins.BuildSampleUnhealthyIf(t.Context(), "1.3.0", "SAMPLEAGENT_BAD_HOST")
	if err != nil {
		t.Fatal(err)
	}
	f := newFleetWith(t, 0, e2e.ServerOptions{LogLevel: "debug"}) // Requests counts the downloads
	if err := f.srv.Publish(f.ctx, f.keys, "AD", "1.3.0", runtime.GOOS, runtime.GOARCH, bad, "GA"); err != nil {
		t.Fatal(err)
	}
	for k, name := range []string{"dc1", "dc2", "dc3", "dc4", "dc5", "dc6"} {
		var env []string
		if name == "dc4" || name == "dc6" {
			env = []string{"SAMPLEAGENT_BAD_HOST=1"}
		}
		f.addHost(name, "", e2e.HostOptions{AgentEnv: env})
		f.waitAgents(k + 1) // one at a time: the pool's order is the order they joined
	}
	// maxUnavailable 1 (the default): the hosts go one at a time, in the
	// pool's order.
	id := f.create(`{"targetVersion":"1.3.0","rollout":{"errorBudget":{"count":1},"rollbackOnHalt":true}}`)
	u, rb := f.waitRollbackDone(id)
	if u.Status != okta.JobFailed || !strings.HasPrefix(rb.Halted, "ERROR_BUDGET: 2 of 6 hosts failed") {
		t.Errorf("update %s, halted %q", u.Status, rb.Halted)
	}
	if r := rb.Rollback; r.ToRevert != 4 || r.Reverted != 4 || r.Failed != 0 || r.Reverting != 0 {
		t.Errorf("rollout.rollback = %+v", *r)
	}
	for _, a := range u.Agents {
		switch a.Name {
		case "dc4", "dc6":
			if a.UpdateStatus != okta.InstanceFailed || !strings.HasPrefix(a.UpdateMessage, "HEALTH_CHECK") {
				t.Errorf("%s: %s %q", a.Name, a.UpdateStatus, a.UpdateMessage)
			}
		default:
			if a.UpdateStatus != okta.InstanceFailed || !strings.HasPrefix(a.UpdateMessage, "ROLLED_BACK: back on 1.0.0 after ERROR_BUDGET: 2 of 6 hosts failed") {
				t.Errorf("%s: %s %q", a.Name, a.UpdateStatus, a.UpdateMessage)
			}
		}
	}
	f.allOnDisk("1.0.0")
	// Each host went back to the binary it kept when 1.3.0 replaced it:
	// nothing was downloaded.
	if n, err := f.srv.Requests("/artifacts/AD/1.0.0/"); err != nil || n != 0 {
		t.Errorf("the reverts downloaded 1.0.0 %d times (%v), want none", n, err)
	}
	if n, err := f.srv.Requests("/artifacts/AD/1.3.0/"); err != nil || n < 4 {
		t.Errorf("1.3.0 downloaded %d times (%v): is the count working?", n, err)
	}
}

// TestStopWithRollbackThroughRealHosts: an operator stops a healthy
// rollout after its first host took it, with ?rollback=true: every host it
// reached (one that was past its swap at the stop included) is back on
// 1.0.0 on disk; the others never moved.
func TestStopWithRollbackThroughRealHosts(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 3)
	id := f.create(`{"targetVersion":"1.1.0"}`)
	f.eventually(60*time.Second, "first host done", func() (bool, error) { return count(f.update(id), okta.InstanceSuccess) >= 1, nil })
	var u okta.AgentPoolUpdate
	f.api("POST", "/api/v1/agentPools/"+f.pool+"/updates/"+id+"/stop?rollback=true", "", &u)
	if u.Status != okta.JobCancelled {
		t.Errorf("status after stop?rollback=true: %s", u.Status)
	}
	u, rb := f.waitRollbackDone(id)
	if !strings.HasPrefix(rb.Halted, "STOPPED: ") || rb.Rollback.Reverted < 1 || rb.Rollback.Failed != 0 || rb.Rollback.Reverted != rb.Rollback.ToRevert {
		t.Errorf("rollout = %s", u.Rollout)
	}
	rolled := 0
	for _, a := range u.Agents {
		if strings.HasPrefix(a.UpdateMessage, "ROLLED_BACK: back on 1.0.0 after STOPPED: ") {
			rolled++
		}
	}
	if rolled != rb.Rollback.Reverted {
		t.Errorf("%d agents say ROLLED_BACK, rollout.rollback.reverted %d: %+v", rolled, rb.Rollback.Reverted, u.Agents)
	}
	f.allOnDisk("1.0.0")
}

// TestRegressionRollsTheFleetBack: release 1.3.0 passes its install's
// health check and fails it 5 s after its start. The first wave (3 of 6
// hosts, ranked by the update; the pool's maxUnavailable 3 lets them go
// together) installs it; each host's health watch (every second) sees it
// fail, the server fails each with REGRESSION within the soak, the third
// failure is beyond the budget of 2 and halts the update, and with
// rollbackOnHalt every host it reached goes back to 1.0.0 on disk, though
// all three are DEGRADED and so fill maxUnavailable (reverts count the
// jobs in flight only). The second wave never received the release.
func TestRegressionRollsTheFleetBack(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 0)
	bad, err := bins.BuildSampleFailingAfter(f.ctx, "1.3.0", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.srv.Publish(f.ctx, f.keys, "AD", "1.3.0", runtime.GOOS, runtime.GOARCH, bad, "GA"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"dc1", "dc2", "dc3", "dc4", "dc5", "dc6"} {
		f.addHost(name, "", e2e.HostOptions{WatchInterval: time.Second})
	}
	f.waitAgents(6)
	f.api("POST", "/api/v1/agentPools/"+f.pool+"/updates/settings", `{"maxUnavailable":3}`, nil)
	// Waves [50, 100] of 6: 3 hosts, then the 3 others after a soak of 5
	// minutes, which the regressions end first.
	id := f.create(`{"targetVersion":"1.3.0","rollout":{"waves":[50,100],"soakMinutes":5,"errorBudget":{"count":2},"rollbackOnHalt":true}}`)
	u, rb := f.waitRollbackDone(id)
	if u.Status != okta.JobFailed || !strings.HasPrefix(rb.Halted, "ERROR_BUDGET: 3 of 6 hosts failed; the budget tolerates 2") {
		t.Errorf("update %s, halted %q", u.Status, rb.Halted)
	}
	if r := rb.Rollback; r.ToRevert != 3 || r.Reverted != 3 || r.Failed != 0 || r.Reverting != 0 {
		t.Errorf("rollout.rollback = %+v", *r)
	}
	reached := map[string]bool{}
	for _, a := range u.Agents {
		if a.UpdateStatus == okta.InstanceFailed && strings.HasPrefix(a.UpdateMessage, "ROLLED_BACK: back on 1.0.0 after ERROR_BUDGET: 3 of 6 hosts failed") {
			reached[a.Name] = true
		} else if a.UpdateStatus == okta.InstanceFailed || a.UpdateStatus == okta.InstanceSuccess {
			t.Errorf("%s: %s %q", a.Name, a.UpdateStatus, a.UpdateMessage)
		}
		if a.Version != "1.0.0" {
			t.Errorf("%s reports %s", a.Name, a.Version)
		}
	}
	if len(reached) != 3 {
		t.Errorf("%d agents rolled back, want the first wave's 3: %+v", len(reached), u.Agents)
	}
	f.allOnDisk("1.0.0")
	// Each host's own account: the first wave's hosts finished the
	// update's job and then its revert, from the binary they kept, and
	// their agent is healthy again; the second wave's were handed nothing.
	for _, h := range f.hosts {
		st, err := h.Status(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, j := range st.Jobs {
			kind := "update"
			if strings.HasPrefix(j.UUID, "revert-") {
				kind = "revert"
			}
			got = append(got, kind+" "+j.Version+" "+j.State)
		}
		want := ""
		if reached[h.Name] {
			want = "update 1.3.0 FINISHED, revert 1.0.0 FINISHED"
		}
		if strings.Join(got, ", ") != want {
			t.Errorf("%s's jobs: %q, want %q", h.Name, got, want)
		}
		// The watch's next check (every second) finds 1.0.0 healthy.
		f.eventually(30*time.Second, h.Name+"'s agent healthy on 1.0.0", func() (bool, error) {
			st, err := h.Status(f.ctx)
			if err != nil {
				return false, err
			}
			for _, a := range st.Agents {
				if a.Name == "ad-agent" {
					return a.Version == "1.0.0" && a.Health != nil && a.Health.OK, nil
				}
			}
			return false, nil
		})
	}
}
