package controlplane_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
)

func (f *fleet) settings(body string) {
	f.t.Helper()
	if r := f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates/settings", f.manage, body); r.status != 201 {
		f.t.Fatalf("settings %s: %d %s", body, r.status, r.body)
	}
}

func jobsOf(f *fleet, hs []*host) []int {
	var n []int
	for _, h := range hs {
		n = append(n, len(f.beat(h).Body.Jobs))
	}
	return n
}

func TestAvailabilityGuard(t *testing.T) {
	f := newFleet(t)
	f.publish("1.1.0")
	hs := []*host{f.host("dc1", "1.0.0"), f.host("dc2", "1.0.0"), f.host("dc3", "1.0.0")}
	// dc3 reports ERROR: DISRUPTED counts against maxUnavailable (1).
	hs[2].status = sailpoint.StatusError
	f.beat(hs[2])
	u := f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0"}`)
	f.tick()
	if got := fmt.Sprint(jobsOf(f, hs)); got != "[0 0 0]" {
		t.Errorf("with one agent unhealthy and maxUnavailable 1: jobs %s", got)
	}
	if msg := f.update(u.ID).Agents[0].UpdateMessage; !strings.Contains(msg, "maxUnavailable 1 reached (1 agents unhealthy)") {
		t.Errorf("the API does not say why: %q", msg)
	}
	hs[2].status = sailpoint.StatusNormal
	f.beat(hs[2])
	f.tick()
	if got := fmt.Sprint(jobsOf(f, hs)); got != "[1 0 0]" {
		t.Errorf("healthy again: jobs %s", got)
	}
	f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates/"+u.ID+"/stop", f.manage, "")

	// Fewer than 2 OPERATIONAL: nothing starts.
	f.settings(`{"maxUnavailable":3}`)
	f.clock.Advance(2 * time.Minute) // every host INACTIVE...
	f.beat(hs[0])                    // ...but dc1
	u = f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0"}`)
	f.tick()
	if got := f.update(u.ID).Agents[0]; got.UpdateStatus != okta.InstanceScheduled ||
		!strings.Contains(got.UpdateMessage, "1 of 3 agents are OPERATIONAL; the pool needs 2") {
		t.Errorf("minOperational: %+v", got)
	}
	// All connected again, but the pool asks for the whole cluster connected
	// and dc3 goes silent.
	f.settings(`{"requireAllConnected":true}`)
	f.beat(hs[1])
	f.tick()
	if got := f.update(u.ID).Agents[0]; !strings.Contains(got.UpdateMessage, "1 agents of the pool are disconnected") {
		t.Errorf("requireAllConnected: %+v", got)
	}
}

func TestCanaryAndWaves(t *testing.T) {
	f := newFleet(t)
	f.publish("1.1.0")
	f.settings(`{"maxUnavailable":100}`)
	var hs []*host
	for i := range 10 {
		hs = append(hs, f.host(fmt.Sprintf("dc%02d", i), "1.0.0"))
	}
	u := f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0","rollout":{"canary":1,"waves":[50,100],"soakMinutes":5}}`)
	runWave := func(want int) {
		t.Helper()
		f.tick()
		n := 0
		for _, h := range hs {
			for _, j := range f.beat(h).Body.Jobs {
				n++
				f.run(h, j, true)
			}
		}
		if n != want {
			t.Fatalf("wave handed out %d jobs, want %d", n, want)
		}
	}
	runWave(1) // the canary
	f.tick()
	var view struct {
		Wave, WaveCount int
	}
	json.Unmarshal(f.update(u.ID).Rollout, &view)
	if view.Wave != 1 || view.WaveCount != 3 {
		t.Errorf("rollout view = %+v", view)
	}
	runWave(0) // soaking
	f.clock.Advance(5 * time.Minute)
	for _, h := range hs {
		f.beat(h) // stay connected
	}
	runWave(5) // 50% of the other 9, rounded up
	f.clock.Advance(5 * time.Minute)
	for _, h := range hs {
		f.beat(h)
	}
	runWave(4)
	f.tick()
	// The last wave's hosts are watched for the soak (watchMinutes'
	// default): the update ends when their watch does.
	if got := f.update(u.ID); got.Status != okta.JobInProgress {
		t.Errorf("after the last wave, within its watch: %s", got.Status)
	}
	f.clock.Advance(5 * time.Minute)
	for _, h := range hs {
		f.beat(h)
	}
	f.tick()
	if got := f.update(u.ID); got.Status != okta.JobSuccess {
		t.Errorf("after the last wave's watch: %s", got.Status)
	}
	// Waves are stable: the same update id ranks agents the same way.
	if string(f.update(u.ID).Rollout) == "" {
		t.Error("no rollout view")
	}
}

func TestManualPromotion(t *testing.T) {
	f := newFleet(t)
	f.publish("1.1.0")
	f.settings(`{"maxUnavailable":100}`)
	hs := []*host{f.host("dc1", "1.0.0"), f.host("dc2", "1.0.0"), f.host("dc3", "1.0.0")}
	u := f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0","rollout":{"canary":1,"waves":[100],"manualPromotion":true}}`)
	f.tick()
	for _, h := range hs {
		for _, j := range f.beat(h).Body.Jobs {
			f.run(h, j, true)
		}
	}
	f.tick()
	if got := f.update(u.ID); got.Status != okta.JobPaused || !strings.Contains(string(got.Rollout), `"awaitingPromotion":true`) {
		t.Fatalf("after the canary: %s %s", got.Status, got.Rollout)
	}
	f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates/"+u.ID+"/resume", f.manage, "")
	f.tick()
	if got := fmt.Sprint(jobsOf(f, hs)); strings.Count(got, "1") != 2 {
		t.Errorf("after resume, jobs %s: want the two other hosts", got)
	}
}

func TestErrorBudgetHalts(t *testing.T) {
	f := newFleet(t)
	f.publish("1.1.0")
	f.settings(`{"maxUnavailable":100}`)
	var hs []*host
	for i := range 20 {
		hs = append(hs, f.host(fmt.Sprintf("dc%02d", i), "1.0.0"))
	}
	// 10% of 20 hosts: two failures are tolerated, the third halts.
	u := f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0","rollout":{"errorBudget":{"percent":10}}}`)
	f.tick()
	failed := 0
	for _, h := range hs {
		for _, j := range f.beat(h).Body.Jobs {
			if failed < 3 {
				f.run(h, j, false)
				failed++
			}
		}
	}
	f.tick()
	got := f.update(u.ID)
	if got.Status != okta.JobFailed || !strings.Contains(string(got.Rollout), "ERROR_BUDGET: 3 of 20 hosts failed; the budget tolerates 2") {
		t.Errorf("after 3 failures: %s %s", got.Status, got.Rollout)
	}
	// Nothing new is handed out.
	for _, h := range hs {
		for _, j := range f.beat(h).Body.Jobs {
			if j.State == sailpoint.JobPending {
				t.Errorf("a halted update handed out %s", j.UUID)
			}
		}
	}
}

func TestJobsCarryPrechecksSplayAndRateLimit(t *testing.T) {
	f := newFleet(t)
	f.publish("1.1.0")
	h := f.host("dc1", "1.0.0")
	f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0","rollout":{"splayMinutes":30,"downloadRateLimit":1048576,"minPoolagentVersion":"0.3.0"}}`)
	f.tick()
	jobs := f.beat(h).Body.Jobs
	if len(jobs) != 1 {
		t.Fatalf("jobs = %+v", jobs)
	}
	j := jobs[0]
	if j.Precheck == nil || j.Precheck.FromVersion != "1.0.0" || j.Precheck.MinPoolagentVersion != "0.3.0" || j.Precheck.FreeBytes < 16<<20 {
		t.Errorf("precheck = %+v", j.Precheck)
	}
	if j.DownloadRateLimit != 1048576 {
		t.Errorf("downloadRateLimit = %d", j.DownloadRateLimit)
	}
	at, err := time.Parse(time.RFC3339, j.StartAfter)
	if err != nil || at.Before(f.clock.Now().Add(-time.Second)) || at.After(f.clock.Now().Add(30*time.Minute)) {
		t.Errorf("startAfter = %q (now %s)", j.StartAfter, f.clock.Now())
	}
	// Deterministic: the same job is offered with the same start.
	if again := f.beat(h).Body.Jobs[0].StartAfter; again != j.StartAfter {
		t.Errorf("startAfter moved: %s then %s", j.StartAfter, again)
	}
	// A bad policy is a 400 naming the field.
	r := f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates", f.manage, `{"rollout":{"waves":[50,40],"errorBudget":{"percent":150}}}`)
	if r.status != 400 || !strings.Contains(string(r.body), "rollout.waves") || !strings.Contains(string(r.body), "rollout.errorBudget") {
		t.Errorf("bad policy: %d %s", r.status, r.body)
	}
}

func TestFailureDiagnostics(t *testing.T) {
	f := newFleet(t)
	f.publish("1.1.0")
	h := f.host("dc1", "1.0.0")
	u := f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0"}`)
	f.tick()
	j := f.beat(h).Body.Jobs[0]
	out := strings.Repeat("x", 70<<10) + "panic: the end"
	h.jobs[j.UUID] = sailpoint.JobReport{UUID: j.UUID, State: sailpoint.JobFailed, UpdateStatus: "Failed",
		UpdateMessage: "HEALTH_CHECK: no answer", Diagnostics: &sailpoint.Diagnostics{Output: out, Health: "GET /healthz: HTTP 503"}}
	f.beat(h)
	agentID := f.update(u.ID).Agents[0].ID
	var d struct{ AgentID, UpdateStatus, UpdateMessage, Output, Health string }
	r := f.do("GET", "/api/v1/agentPools/"+f.pool.ID+"/updates/"+u.ID+"/agents/"+agentID+"/diagnostics", f.read, "")
	r.decode(t, &d)
	if r.status != 200 || d.UpdateStatus != "Failed" || d.Health != "GET /healthz: HTTP 503" || len(d.Output) != sailpoint.MaxDiagnosticsOutput ||
		!strings.HasSuffix(d.Output, "panic: the end") {
		t.Errorf("diagnostics = %d %s %q len %d", r.status, d.UpdateStatus, d.Health, len(d.Output))
	}
	if r := f.do("GET", "/api/v1/agentPools/"+f.pool.ID+"/updates/"+u.ID+"/agents/nope/diagnostics", f.read, ""); r.status != 404 {
		t.Errorf("unknown agent: %d", r.status)
	}
}
