package rollout

import (
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
)

// watchedUpdate stores an update of every host with a watch of minutes
// after each install and an error budget of budget hosts (none when
// negative).
func (f *fleet) watchedUpdate(minutes, budget int) *store.Update {
	f.t.Helper()
	u := &store.Update{ID: store.NewID("upd"), PoolID: f.pool.ID, AgentType: okta.AgentTypeAD, Enabled: true, Status: okta.JobInProgress,
		TargetVersion: "1.1.0", AllAgents: true, CreatedAt: f.clock(), ModifiedAt: f.clock()}
	for _, h := range f.hosts {
		u.Agents = append(u.Agents, store.UpdateAgent{AgentID: f.agent[h], Status: okta.InstanceScheduled, ModifiedAt: f.clock()})
	}
	p := &Policy{WatchMinutes: &minutes}
	if budget >= 0 {
		p.ErrorBudget = &ErrorBudget{Count: budget}
	}
	WriteDoc(u, Doc{Policy: p})
	if err := f.st.CreateUpdate(f.ctx, u); err != nil {
		f.t.Fatal(err)
	}
	return u
}

// finishAll reports every handed-out job finished at 1.1.0.
func (f *fleet) finishAll(e *Engine) {
	f.t.Helper()
	var hbs []store.Heartbeat
	for _, h := range f.hosts {
		for _, j := range e.JobsFor(h, f.clock()) {
			hbs = append(hbs, f.beat(h, "1.1.0", store.JobReport{JobID: j.UUID, Status: okta.InstanceSuccess, Progress: 100}))
		}
	}
	if err := f.st.ApplyHeartbeats(f.ctx, hbs); err != nil {
		f.t.Fatal(err)
	}
}

// unhealthy is a heartbeat of a host whose watch of its agent fails.
func (f *fleet) unhealthy(id, why string) store.Heartbeat {
	hb := f.beat(id, "1.1.0")
	hb.Status = "WARNING"
	hb.Agents[0].Status, hb.Agents[0].Message = okta.OperationalStatusDegraded, why
	return hb
}

func (f *fleet) row(u *store.Update, host string) store.UpdateAgent {
	f.t.Helper()
	got, err := f.st.GetUpdate(f.ctx, f.pool.ID, u.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, ua := range got.Agents {
		if ua.AgentID == f.agent[host] {
			return ua
		}
	}
	f.t.Fatalf("no row of %s", host)
	return store.UpdateAgent{}
}

// TestRegressionIsIncremental: one host regressing within its watch costs
// the tick that row and the update's header, no whole-table read; the
// update halts (a failure, no continueOnError).
func TestRegressionIsIncremental(t *testing.T) {
	const n = 300
	f := newFleet(t, n, store.Settings{})
	e := f.engine()
	for _, h := range f.hosts {
		e.Heard(h, f.clock())
	}
	f.tick(e, true)
	u := f.watchedUpdate(30, -1)
	f.tick(e, true)
	f.finishAll(e)
	f.tick(e, true)
	if got, _ := f.st.GetUpdate(f.ctx, f.pool.ID, u.ID); got.Status != okta.JobInProgress {
		t.Fatalf("every host done, all within their watch: update %s", got.Status)
	}
	if len(e.watches) != n {
		t.Fatalf("%d watches, want %d", len(e.watches), n)
	}
	loads, written := f.cs.fullReads.Load(), f.cs.rowsWritten.Load()
	f.advance(7 * time.Minute)
	h := f.hosts[42]
	if err := f.st.ApplyHeartbeats(f.ctx, []store.Heartbeat{f.unhealthy(h, "crash loop: the service manager restarted the service 3 times in the last 2m")}); err != nil {
		t.Fatal(err)
	}
	for _, h := range f.hosts {
		e.Heard(h, f.clock()) // the others stay connected
	}
	f.tick(e, true)
	row := f.row(u, h)
	if row.Status != okta.InstanceFailed || row.Message != "REGRESSION: crash loop 7m after install: the service manager restarted the service 3 times in the last 2m" {
		t.Errorf("regressed host: %+v", row)
	}
	if got := f.cs.rowsWritten.Load() - written; got != 1 {
		t.Errorf("the regression wrote %d rows, want 1", got)
	}
	if got := f.cs.fullReads.Load(); got != loads {
		t.Errorf("the regression read whole tables %d times", got-loads)
	}
	got, _ := f.st.GetUpdate(f.ctx, f.pool.ID, u.ID)
	if got.Status != okta.JobFailed {
		t.Errorf("update after the regression: %s", got.Status)
	}
}

// TestNewLeaderKeepsWatching: a leader that takes over within a host's
// watch watches it again from the install's time, and a host already
// unhealthy fails at its first tick; a host whose watch ended is not.
func TestNewLeaderKeepsWatching(t *testing.T) {
	f := newFleet(t, 3, store.Settings{MinOperational: 1})
	e := f.engine()
	for _, h := range f.hosts {
		e.Heard(h, f.clock())
	}
	f.tick(e, true)
	u := f.watchedUpdate(10, 5)
	f.tick(e, true)
	f.finishAll(e)
	f.tick(e, true)
	// The leader dies; meanwhile host 0 turns unhealthy.
	f.advance(9 * time.Minute)
	var hbs []store.Heartbeat
	for _, h := range f.hosts {
		hbs = append(hbs, f.beat(h, "1.1.0"))
	}
	hbs[0] = f.unhealthy(f.hosts[0], "health check failed: GET http://127.0.0.1:8089/healthz: HTTP 503")
	if err := f.st.ApplyHeartbeats(f.ctx, hbs); err != nil {
		t.Fatal(err)
	}
	next := f.engine()
	for _, h := range f.hosts {
		next.Heard(h, f.clock())
	}
	f.tick(next, true)
	if row := f.row(u, f.hosts[0]); row.Status != okta.InstanceFailed || !strings.HasPrefix(row.Message, "REGRESSION: health check failed 9m after install: GET") {
		t.Errorf("unhealthy host under the new leader: %+v", row)
	}
	// Past the watch: host 1 turning unhealthy is not counted, and the
	// update ends (Failed: one host failed, within the budget).
	f.advance(2 * time.Minute)
	hbs = hbs[1:]
	for i := range hbs {
		hbs[i] = f.beat(f.hosts[i+1], "1.1.0")
	}
	hbs[0] = f.unhealthy(f.hosts[1], "health check failed: GET http://127.0.0.1:8089/healthz: HTTP 503")
	if err := f.st.ApplyHeartbeats(f.ctx, hbs); err != nil {
		t.Fatal(err)
	}
	f.tick(next, true)
	if row := f.row(u, f.hosts[1]); row.Status != okta.InstanceSuccess {
		t.Errorf("a host unhealthy after its watch: %+v", row)
	}
	if got, _ := f.st.GetUpdate(f.ctx, f.pool.ID, u.ID); got.Status != okta.JobFailed || ReadDoc(got).State.Halted != "" {
		t.Errorf("update after the watches: %s %q", got.Status, ReadDoc(got).State.Halted)
	}
}
