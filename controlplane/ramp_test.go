package controlplane_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/controlplane"
)

// rampFleet is a fleet of n hosts at 1.0.0 with room for all of them at
// once (maxUnavailable n), so only the start rate holds hosts back.
type rampFleet struct {
	*fleet
	hs   []*host
	jobs map[*host]sailpoint.Job // jobs taken and not yet finished
}

func newRampFleet(t *testing.T, n int) *rampFleet {
	f := newFleet(t)
	f.publish("1.1.0")
	f.settings(fmt.Sprintf(`{"maxUnavailable":%d}`, n))
	rf := &rampFleet{fleet: f, jobs: map[*host]sailpoint.Job{}}
	for i := range n {
		rf.hs = append(rf.hs, f.host(fmt.Sprintf("dc%02d", i), "1.0.0"))
	}
	return rf
}

// step moves the clock by d, lets every host heartbeat (staying
// connected), ticks the engine and returns how many hosts were handed a
// new job.
func (rf *rampFleet) step(d time.Duration) int {
	rf.t.Helper()
	rf.clock.Advance(d)
	for _, h := range rf.hs {
		rf.beat(h)
	}
	rf.tick()
	n := 0
	for _, h := range rf.hs {
		for _, j := range rf.beat(h).Body.Jobs {
			if _, ok := rf.jobs[h]; !ok && j.State == sailpoint.JobPending {
				rf.jobs[h] = j
				n++
			}
		}
	}
	return n
}

// finish runs every job taken to success.
func (rf *rampFleet) finish() {
	rf.t.Helper()
	for h, j := range rf.jobs {
		rf.run(h, j, true)
		h.version = "1.1.0"
		rf.beat(h)
	}
	clear(rf.jobs)
}

// rateView is the part of the update's rollout extension about the rate.
type rateView struct {
	MaxPerMinute     int `json:"maxPerMinute"`
	CurrentPerMinute int `json:"currentPerMinute"`
	Ramp             *struct {
		StartPerMinute   int     `json:"startPerMinute"`
		Factor           float64 `json:"factor"`
		SuccessesToRaise int     `json:"successesToRaise"`
	} `json:"ramp"`
}

func rateOf(t *testing.T, u okta.AgentPoolUpdate) rateView {
	t.Helper()
	var v rateView
	if err := json.Unmarshal(u.Rollout, &v); err != nil {
		t.Fatalf("rollout %s: %v", u.Rollout, err)
	}
	return v
}

// waitingMessages lists the distinct messages of the update's agents
// still waiting without a job.
func waitingMessages(u okta.AgentPoolUpdate) string {
	seen := map[string]bool{}
	var out []string
	for _, a := range u.Agents {
		if a.UpdateStatus == okta.InstanceScheduled && a.DispatchedAt == nil && !seen[a.UpdateMessage] {
			seen[a.UpdateMessage] = true
			out = append(out, a.UpdateMessage)
		}
	}
	return strings.Join(out, " | ")
}

func TestRampThroughTheAPI(t *testing.T) {
	rf := newRampFleet(t, 8)
	u := rf.createUpdate(rf.pool.ID, `{"targetVersion":"1.1.0","rollout":{"maxPerMinute":12,"ramp":{"startPerMinute":6,"factor":2,"successesToRaise":2}}}`)
	if v := rateOf(t, u); v.CurrentPerMinute != 6 || v.MaxPerMinute != 12 || v.Ramp == nil || v.Ramp.Factor != 2 {
		t.Fatalf("create reply's rollout: %s", u.Rollout)
	}
	// 6 a minute: one host per 10 seconds.
	if n := rf.step(0); n != 1 {
		t.Fatalf("first tick handed out %d jobs, want 1 (6 a minute: one per 10 s)", n)
	}
	if got := waitingMessages(rf.update(u.ID)); got != "waiting: the ramp's start rate is used up (see rollout.currentPerMinute)" {
		t.Errorf("waiting hosts say %q", got)
	}
	if n := rf.step(5 * time.Second); n != 0 {
		t.Fatalf("5 s later: %d jobs, want 0", n)
	}
	if n := rf.step(5 * time.Second); n != 1 {
		t.Fatalf("10 s later: %d jobs, want 1", n)
	}
	// Two successes raise the rate to 12 a minute: two per 10 seconds,
	// one of which the start at 10 s still holds.
	rf.finish()
	if n := rf.step(0); n != 1 {
		t.Fatalf("after two successes: %d jobs, want 1", n)
	}
	got := rf.update(u.ID)
	if v := rateOf(t, got); v.CurrentPerMinute != 12 {
		t.Errorf("after two successes currentPerMinute = %d, want 12 (%s)", v.CurrentPerMinute, got.Rollout)
	}
	// The server says when it handed each job out.
	started := 0
	for _, a := range got.Agents {
		if a.DispatchedAt != nil {
			started++
			if a.DispatchedAt.After(rf.clock.Now()) || rf.clock.Now().Sub(*a.DispatchedAt) > 10*time.Second {
				t.Errorf("agent %s dispatchedAt %s (now %s)", a.Name, a.DispatchedAt, rf.clock.Now())
			}
		}
	}
	if started != 3 {
		t.Errorf("%d agents carry dispatchedAt, want 3", started)
	}
	if n := rf.step(10 * time.Second); n != 2 {
		t.Fatalf("at 20 s: %d jobs, want 2", n)
	}
	// Five successes would make 24 a minute: the cap holds it at 12.
	rf.finish()
	if n := rf.step(0); n != 0 {
		t.Fatalf("burst used up: %d jobs, want 0", n)
	}
	got = rf.update(u.ID)
	if v := rateOf(t, got); v.CurrentPerMinute != 12 {
		t.Errorf("capped currentPerMinute = %d, want 12", v.CurrentPerMinute)
	}
	if msg := waitingMessages(got); msg != "waiting: rollout.maxPerMinute 12 reached" {
		t.Errorf("waiting hosts say %q", msg)
	}
	// The rest go two per 10 s until the update is done.
	for i := 0; i < 6; i++ {
		if n := rf.step(10 * time.Second); n > 2 {
			t.Fatalf("%d jobs in 10 s at 12 a minute", n)
		}
		rf.finish()
	}
	rf.tick()
	if got := rf.update(u.ID); got.Status != okta.JobSuccess {
		t.Errorf("the ramped update ended %s", statuses(got))
	}
}

// TestRampCombinesWithTheGuard: maxUnavailable still bounds the hosts in
// flight when the rate would allow more.
func TestRampCombinesWithTheGuard(t *testing.T) {
	rf := newRampFleet(t, 6)
	rf.settings(`{"maxUnavailable":1}`)
	u := rf.createUpdate(rf.pool.ID, `{"targetVersion":"1.1.0","rollout":{"maxPerMinute":60}}`)
	if n := rf.step(0); n != 1 {
		t.Fatalf("first tick: %d jobs, want 1 (maxUnavailable 1)", n)
	}
	if msg := waitingMessages(rf.update(u.ID)); !strings.Contains(msg, "maxUnavailable 1 reached") {
		t.Errorf("waiting hosts say %q", msg)
	}
	rf.finish()
	if n := rf.step(time.Second); n != 1 {
		t.Fatalf("a slot freed: %d jobs, want 1", n)
	}
}

func TestRampInvalidValues(t *testing.T) {
	f := newFleet(t)
	cases := []struct{ body, cause string }{
		{`{"rollout":{"maxPerMinute":-5}}`, "rollout.maxPerMinute: must be from 0 (unlimited) to 1000000 hosts a minute, got -5"},
		{`{"rollout":{"ramp":{"startPerMinute":0,"factor":2,"successesToRaise":5}}}`, "rollout.ramp.startPerMinute: must be from 1"},
		{`{"rollout":{"ramp":{"startPerMinute":6,"factor":0.5,"successesToRaise":5}}}`, "rollout.ramp.factor: must be above 1 and at most 10"},
		{`{"rollout":{"ramp":{"startPerMinute":6,"factor":2,"successesToRaise":0}}}`, "rollout.ramp.successesToRaise: must be at least 1"},
		{`{"rollout":{"maxPerMinute":5,"ramp":{"startPerMinute":6,"factor":2,"successesToRaise":1}}}`, "rollout.ramp.startPerMinute: 6 is above rollout.maxPerMinute 5"},
		{`{"rollout":{"maxPerMinute":"fast"}}`, "rollout.maxPerMinute: expected int"},
	}
	for _, c := range cases {
		r := f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates", f.manage, c.body)
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", c.body, r.status, r.body)
			continue
		}
		e := r.okta(t)
		if e.ErrorCode != okta.CodeValidation || len(e.ErrorCauses) == 0 || !strings.Contains(e.ErrorCauses[0].ErrorSummary, c.cause) {
			t.Errorf("%s: %+v, want a cause %q", c.body, e, c.cause)
		}
	}
	// Modify is validated the same way.
	u := f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0","enabled":false}`)
	r := f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates/"+u.ID, f.manage, `{"rollout":{"ramp":{"startPerMinute":6}}}`)
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "rollout.ramp.factor") {
		t.Errorf("modify with a bad ramp: %d %s", r.status, r.body)
	}
}

// TestRampSurvivesARestart: a new server on the same store rebuilds the
// minute's starts from their stored dispatchedAt and the ramp's step from
// the hosts that succeeded.
func TestRampSurvivesARestart(t *testing.T) {
	rf := newRampFleet(t, 8)
	u := rf.createUpdate(rf.pool.ID, `{"targetVersion":"1.1.0","rollout":{"maxPerMinute":4,"ramp":{"startPerMinute":2,"factor":2,"successesToRaise":1}}}`)
	if n := rf.step(0); n != 1 {
		t.Fatalf("t=0: %d jobs, want 1", n)
	}
	rf.finish() // one success: 4 a minute, one per 10 s
	for _, at := range []int{10, 20, 30} {
		if n := rf.step(10 * time.Second); n != 1 {
			t.Fatalf("t=%d: %d jobs, want 1", at, n)
		}
	}
	if n := rf.step(10 * time.Second); n != 0 {
		t.Fatalf("t=40: %d jobs, want 0 (4 in the minute)", n)
	}

	// Restart: a new server and engine on the same store.
	rf.srv.Close()
	cfg := controlplane.DefaultConfig()
	cfg.DataDir = rf.dataDir
	srv := controlplane.New(cfg, rf.st, nil, controlplane.WithClock(rf.clock))
	t.Cleanup(srv.Close)
	rf.srv, rf.env.srv = srv, httptestServer(t, srv.Handler())

	if n := rf.step(0); n != 0 {
		t.Fatalf("right after the restart: %d jobs, want 0 (the minute's 4 starts are remembered)", n)
	}
	if v := rateOf(t, rf.update(u.ID)); v.CurrentPerMinute != 4 {
		t.Errorf("after the restart currentPerMinute = %d, want 4", v.CurrentPerMinute)
	}
	if n := rf.step(19 * time.Second); n != 0 {
		t.Fatalf("t=59: %d jobs, want 0", n)
	}
	// The start at t=0 leaves the window; at 2 a minute (the ramp
	// forgotten) three starts in the minute would still hold it.
	if n := rf.step(time.Second); n != 1 {
		t.Fatalf("t=60: %d jobs, want 1", n)
	}
	// An operator lowers the cap: the reply shows it at once, the engine
	// holds to it.
	r := rf.do("POST", "/api/v1/agentPools/"+rf.pool.ID+"/updates/"+u.ID, rf.manage, `{"rollout":{"maxPerMinute":2}}`)
	var mod okta.AgentPoolUpdate
	r.decode(t, &mod)
	if r.status/100 != 2 || rateOf(t, mod).CurrentPerMinute != 2 {
		t.Fatalf("modify to maxPerMinute 2: %d %s", r.status, mod.Rollout)
	}
	if n := rf.step(0); n != 0 {
		t.Fatalf("t=60 at 2 a minute: %d jobs, want 0 (the minute holds 4)", n)
	}
	if got := waitingMessages(rf.update(u.ID)); got != "waiting: rollout.maxPerMinute 2 reached" {
		t.Errorf("waiting hosts say %q", got)
	}
}
