package controlplane_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/controlplane"
)

// rollbackView is the update's rollout.halted and rollout.rollback.
type rollbackView struct {
	Halted   string
	Rollback *struct {
		State                                 string
		Reason                                string
		ToRevert, Reverting, Reverted, Failed int
	}
}

func rollbackOf(t *testing.T, u okta.AgentPoolUpdate) rollbackView {
	t.Helper()
	var v rollbackView
	if len(u.Rollout) > 0 {
		if err := json.Unmarshal(u.Rollout, &v); err != nil {
			t.Fatalf("rollout %s: %v", u.Rollout, err)
		}
	}
	return v
}

// revertJobs beats every host and returns the revert jobs handed out, by
// host.
func revertJobs(t *testing.T, f *fleet, hs []*host) map[*host]sailpoint.Job {
	t.Helper()
	out := map[*host]sailpoint.Job{}
	for _, h := range hs {
		for _, j := range f.beat(h).Body.Jobs {
			if j.State == sailpoint.JobCancelled {
				continue
			}
			if !strings.HasPrefix(j.UUID, "revert-") {
				t.Errorf("%s was handed %s (%s), not a revert job", h.hostname, j.UUID, j.State)
				continue
			}
			out[h] = j
		}
	}
	return out
}

// restart replaces the fleet's server with a new one on the same store:
// the engine loads its state again.
func (f *fleet) restart() {
	f.t.Helper()
	f.srv.Close()
	cfg := controlplane.DefaultConfig()
	cfg.DataDir = f.dataDir
	f.srv = controlplane.New(cfg, f.st, nil, controlplane.WithClock(f.clock))
	f.t.Cleanup(f.srv.Close)
	f.env.srv = httptestServer(f.t, f.srv.Handler())
}

// haltedFleet runs an update of 10 hosts whose error budget (1 failure)
// halts it after four hosts took it; it returns the update, the hosts and
// the four that were updated.
func haltedFleet(t *testing.T, policy string) (*fleet, string, []*host, []*host) {
	f := newFleet(t)
	f.publish("1.0.0")
	f.publish("1.1.0")
	f.settings(`{"maxUnavailable":100}`)
	var hs []*host
	for i := range 10 {
		hs = append(hs, f.host(fmt.Sprintf("dc%02d", i), "1.0.0"))
	}
	u := f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0","rollout":`+policy+`}`)
	var moved []*host
	for round := 0; round < 10 && f.update(u.ID).Status == okta.JobInProgress; round++ {
		f.tick()
		for _, h := range hs {
			for _, j := range f.beat(h).Body.Jobs {
				if j.State != sailpoint.JobPending {
					continue
				}
				ok := len(moved) < 4
				if ok {
					moved = append(moved, h)
				}
				f.run(h, j, ok) // a failed host rolls back itself: still 1.0.0
			}
		}
	}
	if got := f.update(u.ID); got.Status != okta.JobFailed || !strings.Contains(rollbackOf(t, got).Halted, "ERROR_BUDGET: 2 of 10 hosts failed") {
		t.Fatalf("the budget did not halt the update: %s %s", got.Status, got.Rollout)
	}
	return f, u.ID, hs, moved
}

func TestRollbackOnHalt(t *testing.T) {
	f, id, hs, moved := haltedFleet(t, `{"errorBudget":{"count":1},"rollbackOnHalt":true}`)
	f.tick()
	rb := rollbackOf(t, f.update(id))
	if rb.Rollback == nil || rb.Rollback.State != "InProgress" || rb.Rollback.ToRevert != 4 || rb.Rollback.Reverting != 4 ||
		!strings.HasPrefix(rb.Rollback.Reason, "ERROR_BUDGET: ") {
		t.Fatalf("rollout.rollback after the halt = %+v", rb.Rollback)
	}
	// A retry would undo the reverts: refused while they run.
	if r := f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates/"+id+"/retry", f.manage, ""); r.status != 400 ||
		!strings.Contains(string(r.body), "rollback is in progress") {
		t.Errorf("retry during the rollback: %d %s", r.status, r.body)
	}
	// The revert jobs survive a restart of poolserver.
	f.restart()
	f.tick()
	jobs := revertJobs(t, f, hs)
	if len(jobs) != len(moved) {
		t.Fatalf("revert jobs for %d hosts, want the %d the update moved", len(jobs), len(moved))
	}
	for _, h := range moved {
		j, ok := jobs[h]
		mp := j.ManagedProcessConfiguration["ad-agent"]
		if !ok || !j.AllowDowngrade || mp.Version != "1.0.0" || mp.Artifact == nil || mp.Artifact.Version != "1.0.0" || j.Maintenance.Window != "true" {
			t.Errorf("%s: revert job = %+v", h.hostname, j)
		}
	}
	// Three hosts revert; one refuses (its own config).
	for k, h := range moved {
		j := jobs[h]
		if k == 3 {
			h.jobs[j.UUID] = sailpoint.JobReport{UUID: j.UUID, State: sailpoint.JobFailed, Progress: 100, UpdateStatus: "Failed",
				UpdateMessage: "DOWNGRADE_REFUSED: artifacts.allow_downgrade and artifacts.allow_revert are off in this host's config"}
			f.beat(h)
			continue
		}
		f.run(h, j, true)
	}
	f.tick()
	got := f.update(id)
	rb = rollbackOf(t, got)
	if rb.Rollback == nil || rb.Rollback.State != "Done" || rb.Rollback.ToRevert != 4 || rb.Rollback.Reverted != 3 || rb.Rollback.Failed != 1 ||
		!strings.HasPrefix(rb.Halted, "ERROR_BUDGET: ") {
		t.Errorf("rollout after the reverts = %s", got.Rollout)
	}
	byName := map[string]okta.Agent{}
	for _, a := range got.Agents {
		byName[a.Name] = a
	}
	for k, h := range moved {
		a := byName[h.hostname]
		switch {
		case k < 3 && (a.UpdateStatus != okta.InstanceFailed || !strings.HasPrefix(a.UpdateMessage, "ROLLED_BACK: back on 1.0.0 after ERROR_BUDGET: 2 of 10 hosts failed")):
			t.Errorf("%s after its revert: %s %q", h.hostname, a.UpdateStatus, a.UpdateMessage)
		case k == 3 && !strings.HasPrefix(a.UpdateMessage, "DOWNGRADE_REFUSED: "):
			t.Errorf("%s refused: %s %q", h.hostname, a.UpdateStatus, a.UpdateMessage)
		}
	}
	resp, err := http.Get(f.env.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`poolserver_fleet_reverts_total{outcome="succeeded"} 3`, `poolserver_fleet_reverts_total{outcome="failed"} 1`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Done: nothing more is handed out.
	if jobs := revertJobs(t, f, hs); len(jobs) != 0 {
		t.Errorf("after the rollback: %d jobs", len(jobs))
	}
	// Once done, retry schedules the reverted hosts again.
	if r := f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates/"+id+"/retry", f.manage, ""); r.status != 201 {
		t.Errorf("retry after the rollback: %d %s", r.status, r.body)
	}
	if rb := rollbackOf(t, f.update(id)); rb.Rollback != nil || rb.Halted != "" {
		t.Errorf("retry keeps %+v", rb)
	}
}

func TestNoRollbackWithoutTheFlag(t *testing.T) {
	f, id, hs, moved := haltedFleet(t, `{"errorBudget":{"count":1}}`)
	f.tick()
	if rb := rollbackOf(t, f.update(id)); rb.Rollback != nil {
		t.Errorf("rollback without rollbackOnHalt: %+v", rb.Rollback)
	}
	if jobs := revertJobs(t, f, hs); len(jobs) != 0 {
		t.Errorf("%d revert jobs without rollbackOnHalt", len(jobs))
	}
	// An operator asks for it on the Failed update: it stays Failed.
	path := "/api/v1/agentPools/" + f.pool.ID + "/updates/" + id
	if r := f.do("POST", path+"/stop?rollback=maybe", f.manage, ""); r.status != 400 || !strings.Contains(string(r.body), "rollback: must be true or false") {
		t.Errorf("rollback=maybe: %d %s", r.status, r.body)
	}
	if r := f.do("POST", path+"/retry?rollback=true", f.manage, ""); r.status != 400 || !strings.Contains(string(r.body), "only the stop action") {
		t.Errorf("retry?rollback=true: %d %s", r.status, r.body)
	}
	if r := f.do("POST", path+"/stop?rollback=true", f.manage, ""); r.status != 201 {
		t.Fatalf("stop?rollback=true on a Failed update: %d %s", r.status, r.body)
	}
	f.tick()
	if got := f.update(id); got.Status != okta.JobFailed {
		t.Errorf("status after stop?rollback=true: %s", got.Status)
	}
	if jobs := revertJobs(t, f, hs); len(jobs) != len(moved) {
		t.Errorf("stop?rollback=true: %d revert jobs, want %d", len(jobs), len(moved))
	}
}

func TestStopWithRollback(t *testing.T) {
	f := newFleet(t)
	f.publish("1.0.0")
	f.publish("1.1.0")
	f.settings(`{"maxUnavailable":2}`)
	var hs []*host
	for i := range 5 {
		hs = append(hs, f.host(fmt.Sprintf("dc%d", i), "1.0.0"))
	}
	// rollbackOnHalt is off: ?rollback=true works whatever it says.
	u := f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0"}`)
	f.tick()
	for _, h := range hs[:2] {
		for _, j := range f.beat(h).Body.Jobs {
			f.run(h, j, true)
		}
	}
	// dc2 is past the swap when the operator stops; dc3 has a job not
	// started.
	f.tick()
	var running sailpoint.Job
	for _, h := range hs[2:4] {
		for _, j := range f.beat(h).Body.Jobs {
			if h == hs[2] {
				running = j
				h.jobs[j.UUID] = sailpoint.JobReport{UUID: j.UUID, State: sailpoint.JobRunning, UpdateStatus: "PendingCompletion", Progress: 90, Phase: "health"}
				f.beat(h)
			}
		}
	}
	if running.UUID == "" {
		t.Fatal("dc2 got no job")
	}
	path := "/api/v1/agentPools/" + f.pool.ID + "/updates/" + u.ID
	if r := f.do("POST", path+"/stop?rollback=true", f.manage, ""); r.status != 201 {
		t.Fatalf("stop?rollback=true: %d %s", r.status, r.body)
	}
	f.tick()
	got := f.update(u.ID)
	rb := rollbackOf(t, got)
	if got.Status != okta.JobCancelled || !strings.HasPrefix(rb.Halted, "STOPPED: ") || rb.Rollback == nil || rb.Rollback.State != "InProgress" || rb.Rollback.ToRevert != 2 {
		t.Fatalf("after stop?rollback=true: %s %s", got.Status, got.Rollout)
	}
	if r := f.do("DELETE", path, f.manage, ""); r.status != 400 {
		t.Errorf("delete during the rollback: %d %s", r.status, r.body)
	}
	// maxUnavailable 2 bounds the reverts, dc2's job in flight included.
	jobs := revertJobs(t, f, hs[:2])
	if len(jobs) != 1 {
		t.Fatalf("revert jobs: %d, want 1 (maxUnavailable 2, one job in flight)", len(jobs))
	}
	// dc2 was told to cancel, but it was past the swap: it finishes on
	// 1.1.0, and gets its revert too.
	rep := f.beat(hs[2])
	if len(rep.Body.Jobs) != 1 || rep.Body.Jobs[0].UUID != running.UUID || rep.Body.Jobs[0].State != sailpoint.JobCancelled {
		t.Errorf("dc2's job after the stop: %+v", rep.Body.Jobs)
	}
	hs[2].version = "1.1.0"
	hs[2].jobs[running.UUID] = sailpoint.JobReport{UUID: running.UUID, State: sailpoint.JobFinished, Progress: 100}
	f.beat(hs[2])
	reverted := map[*host]bool{}
	for round := 0; round < 5; round++ {
		f.tick()
		for h, j := range revertJobs(t, f, hs) {
			if reverted[h] {
				t.Errorf("%s handed a second revert job", h.hostname)
			}
			reverted[h] = true
			f.run(h, j, true)
		}
	}
	if len(reverted) != 3 || !reverted[hs[0]] || !reverted[hs[1]] || !reverted[hs[2]] {
		t.Errorf("reverted %d hosts, want dc0, dc1 and dc2", len(reverted))
	}
	got = f.update(u.ID)
	rb = rollbackOf(t, got)
	if rb.Rollback == nil || rb.Rollback.State != "Done" || rb.Rollback.Reverted != 3 || rb.Rollback.Failed != 0 {
		t.Errorf("after the reverts: %s", got.Rollout)
	}
	for _, h := range hs {
		if h.version != "1.0.0" {
			t.Errorf("%s is on %s", h.hostname, h.version)
		}
	}
	if r := f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates/"+u.ID+"/pause?rollback=true", f.manage, ""); r.status != 400 {
		t.Errorf("pause?rollback=true: %d", r.status)
	}
}

// Without an error budget the first failure halts (continueOnError off):
// with rollbackOnHalt that halt rolls back too.
func TestRollbackOnHaltWithoutABudget(t *testing.T) {
	f := newFleet(t)
	f.publish("1.0.0")
	f.publish("1.1.0")
	f.settings(`{"maxUnavailable":1}`)
	hs := []*host{f.host("dc1", "1.0.0"), f.host("dc2", "1.0.0"), f.host("dc3", "1.0.0")}
	u := f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0","rollout":{"rollbackOnHalt":true}}`)
	for k, h := range hs[:2] {
		f.tick()
		for _, j := range f.beat(h).Body.Jobs {
			f.run(h, j, k == 0)
		}
	}
	f.tick()
	got := f.update(u.ID)
	rb := rollbackOf(t, got)
	if got.Status != okta.JobFailed || rb.Halted != "FAILED: 1 of 3 hosts failed and the pool does not continue on error" || rb.Rollback == nil {
		t.Fatalf("after dc2 failed: %s %s", got.Status, got.Rollout)
	}
	jobs := revertJobs(t, f, hs)
	if len(jobs) != 1 || jobs[hs[0]].UUID == "" {
		t.Fatalf("revert jobs %v, want dc1's alone", jobs)
	}
	f.run(hs[0], jobs[hs[0]], true)
	f.tick()
	if rb := rollbackOf(t, f.update(u.ID)); rb.Rollback == nil || rb.Rollback.State != "Done" || rb.Rollback.Reverted != 1 {
		t.Errorf("after dc1's revert: %+v", rb.Rollback)
	}
}

// A moved host that is not connected waits; its next heartbeat gets it
// its revert.
func TestRollbackWaitsForADisconnectedHost(t *testing.T) {
	f := newFleet(t)
	f.publish("1.0.0")
	f.publish("1.1.0")
	f.settings(`{"maxUnavailable":5}`)
	hs := []*host{f.host("dc0", "1.0.0"), f.host("dc1", "1.0.0"), f.host("dc2", "1.0.0")}
	u := f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0"}`)
	f.tick()
	for _, h := range hs[:2] {
		for _, j := range f.beat(h).Body.Jobs {
			f.run(h, j, true)
		}
	}
	f.clock.Advance(2 * time.Minute) // every host INACTIVE...
	f.beat(hs[1])                    // ...but dc1 and dc2
	f.beat(hs[2])
	f.tick()
	if r := f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates/"+u.ID+"/stop?rollback=true", f.manage, ""); r.status != 201 {
		t.Fatalf("stop?rollback=true: %d %s", r.status, r.body)
	}
	f.tick()
	rb := rollbackOf(t, f.update(u.ID))
	if rb.Rollback == nil || rb.Rollback.State != "InProgress" || rb.Rollback.ToRevert != 2 || rb.Rollback.Reverting != 1 {
		t.Fatalf("with dc0 silent: %+v", rb.Rollback)
	}
	f.tick() // quiet: nothing changed
	if jobs := revertJobs(t, f, hs[1:]); len(jobs) != 1 {
		t.Fatalf("dc1: %d revert jobs", len(jobs))
	}
	hs[0].jobs = map[string]sailpoint.JobReport{} // its report was acknowledged: it repeats none
	f.beat(hs[0])                                 // back
	f.tick()
	if jobs := revertJobs(t, f, hs[:1]); len(jobs) != 1 {
		t.Fatalf("dc0 back: %d revert jobs", len(jobs))
	}
}
