package rollout

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/controlplane/store/sqlite"
)

// testCatalog is a fixed release catalog.
type testCatalog struct{ rels []*store.Release }

func (c *testCatalog) Get(name, version, goos, arch string) *store.Release {
	for _, r := range c.rels {
		if r.Name == name && r.Version == version && r.OS == goos && r.Arch == arch {
			return r
		}
	}
	return nil
}

func (c *testCatalog) Latest(name string, _ okta.ReleaseChannel) string {
	best := ""
	for _, r := range c.rels {
		if r.Name == name && r.Version > best {
			best = r.Version
		}
	}
	return best
}

func (c *testCatalog) Published(name, version string) (time.Time, bool) {
	for _, r := range c.rels {
		if r.Name == name && r.Version == version {
			return r.PublishedAt, true
		}
	}
	return time.Time{}, false
}

// countingStore counts what the engine reads and writes.
type countingStore struct {
	Store
	fullReads   atomic.Int64 // ListAgents, ListClients, ListActiveUpdates
	updateReads atomic.Int64 // GetUpdate
	rowsWritten atomic.Int64
	feedRows    atomic.Int64
}

func (s *countingStore) ListAgents(ctx context.Context, ids ...string) ([]*store.Agent, error) {
	s.fullReads.Add(1)
	return s.Store.ListAgents(ctx, ids...)
}

func (s *countingStore) ListClients(ctx context.Context, ids ...string) ([]*store.Client, error) {
	s.fullReads.Add(1)
	return s.Store.ListClients(ctx, ids...)
}

func (s *countingStore) ListActiveUpdates(ctx context.Context, st ...okta.AgentUpdateJobStatus) ([]*store.Update, error) {
	s.fullReads.Add(1)
	return s.Store.ListActiveUpdates(ctx, st...)
}

func (s *countingStore) GetUpdate(ctx context.Context, poolID, id string) (*store.Update, error) {
	s.updateReads.Add(1)
	return s.Store.GetUpdate(ctx, poolID, id)
}

func (s *countingStore) WriteRollout(ctx context.Context, w *store.RolloutWrite) (int, error) {
	s.rowsWritten.Add(int64(len(w.Agents)))
	return s.Store.WriteRollout(ctx, w)
}

func (s *countingStore) ChangesSince(ctx context.Context, rev int64, skip ...int64) (*store.Changes, error) {
	ch, err := s.Store.ChangesSince(ctx, rev, skip...)
	if ch != nil {
		s.feedRows.Add(int64(len(ch.UpdateAgents) + len(ch.Agents) + len(ch.Clients) + len(ch.Updates)))
	}
	return ch, err
}

// fleet is a pool of n hosts, each running one AD agent at 1.0.0, in a
// real SQLite store, with a fake clock.
type fleet struct {
	t     *testing.T
	ctx   context.Context
	st    store.Store
	cs    *countingStore
	pool  *store.Pool
	hosts []string // client ids
	agent map[string]string
	cat   *testCatalog
	mu    sync.Mutex
	now   time.Time
}

func newFleet(t *testing.T, n int, settings store.Settings) *fleet {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fleet{t: t, ctx: ctx, st: st, cs: &countingStore{Store: st}, agent: map[string]string{}, now: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
	if settings.MaxUnavailable == 0 {
		settings.MaxUnavailable = n
	}
	settings.ReleaseChannel = okta.ChannelGA
	f.pool = &store.Pool{ID: store.NewID("pol"), Name: "p", Type: okta.AgentTypeAD, Settings: settings, CreatedAt: f.now}
	if err := st.CreatePool(ctx, f.pool); err != nil {
		t.Fatal(err)
	}
	f.cat = &testCatalog{rels: []*store.Release{{Seq: 1, Name: "AD", Version: "1.1.0", OS: "linux", Arch: "amd64", Channel: okta.ChannelGA, Size: 10, SHA256: "ab", PublishedAt: f.now}}}
	var hbs []store.Heartbeat
	for i := range n {
		id := fmt.Sprintf("host-%04d", i)
		if err := st.CreateClient(ctx, &store.Client{ID: id, PoolID: f.pool.ID, SecretHash: []byte(id), CreatedAt: f.now}); err != nil {
			t.Fatal(err)
		}
		f.hosts = append(f.hosts, id)
		hbs = append(hbs, f.beat(id, "1.0.0"))
	}
	if err := st.ApplyHeartbeats(ctx, hbs); err != nil {
		t.Fatal(err)
	}
	agents, err := st.ListAgents(ctx, f.pool.ID)
	if err != nil || len(agents) != n {
		t.Fatalf("agents = %d, %v", len(agents), err)
	}
	for _, a := range agents {
		f.agent[a.ClientID] = a.ID
	}
	return f
}

func (f *fleet) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fleet) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// beat is a host's heartbeat with its agent at version.
func (f *fleet) beat(id, version string, jobs ...store.JobReport) store.Heartbeat {
	return store.Heartbeat{ClientID: id, PoolID: f.pool.ID, Seen: f.clock(), Status: "NORMAL", OS: "linux", Arch: "amd64", AgentVersion: "1.0.0",
		Facts: "{}", Agents: []store.AgentSeen{{AgentName: "ad", Name: id, Type: okta.AgentTypeAD, Version: version, Status: okta.OperationalStatusOperational}},
		Jobs: jobs}
}

func (f *fleet) engine() *Engine {
	return New(Deps{Store: f.cs, Now: f.clock, Config: Config{Tick: time.Second, InactiveAfter: 90 * time.Second, WriteBatch: 100},
		Catalog: func(context.Context) (Catalog, error) { return f.cat, nil }})
}

func (f *fleet) tick(e *Engine, lead bool) {
	f.t.Helper()
	if err := e.tick(f.ctx, lead); err != nil {
		f.t.Fatal(err)
	}
}

// createUpdate stores an "all agents" update of 1.1.0 with a row for
// every host (rows false: without rows, as the API creates it).
func (f *fleet) createUpdate(rows ...bool) *store.Update {
	f.t.Helper()
	u := &store.Update{ID: store.NewID("upd"), PoolID: f.pool.ID, AgentType: okta.AgentTypeAD, Enabled: true, Status: okta.JobInProgress,
		TargetVersion: "1.1.0", AllAgents: true, CreatedAt: f.clock(), ModifiedAt: f.clock()}
	if len(rows) == 0 || rows[0] {
		for _, h := range f.hosts {
			u.Agents = append(u.Agents, store.UpdateAgent{AgentID: f.agent[h], Status: okta.InstanceScheduled, ModifiedAt: f.clock()})
		}
	}
	if err := f.st.CreateUpdate(f.ctx, u); err != nil {
		f.t.Fatal(err)
	}
	return u
}

// TestTickWorkFollowsChanges: after the first load, a tick reads no whole
// table and writes only what changed; one host's report costs a few rows,
// not the fleet.
func TestTickWorkFollowsChanges(t *testing.T) {
	const n = 500
	f := newFleet(t, n, store.Settings{})
	e := f.engine()
	for _, h := range f.hosts {
		e.Heard(h, f.clock())
	}
	f.tick(e, true)
	loads := f.cs.fullReads.Load()
	if loads == 0 {
		t.Fatal("the first tick did not load the fleet")
	}
	if n, ok := e.PoolAgents(f.pool.ID); !ok || n != len(f.hosts) {
		t.Errorf("PoolAgents = %d, %v; want %d, true", n, ok, len(f.hosts))
	}
	if _, ok := e.PoolAgents("pol-unknown"); ok {
		t.Error("PoolAgents of an unknown pool is ok")
	}
	u := f.createUpdate()
	f.tick(e, true) // follows the new update and hands out every job
	if got := f.cs.rowsWritten.Load(); got != n {
		t.Fatalf("dispatch wrote %d rows, want %d", got, n)
	}
	for _, h := range f.hosts {
		if jobs := e.JobsFor(h, f.clock()); len(jobs) != 1 || jobs[0].UpdateID != u.ID {
			t.Fatalf("jobs of %s = %+v", h, jobs)
		}
	}
	// Quiet ticks: nothing read whole, nothing written, and the engine's
	// own writes do not come back through the feed.
	written, fed := f.cs.rowsWritten.Load(), f.cs.feedRows.Load()
	for range 3 {
		f.tick(e, true)
	}
	if got := f.cs.feedRows.Load() - fed; got != 0 {
		t.Errorf("the engine read %d of its own rows back from the feed", got)
	}
	if got := f.cs.rowsWritten.Load() - written; got != 0 {
		t.Errorf("quiet ticks wrote %d rows", got)
	}
	if got := f.cs.fullReads.Load(); got != loads {
		t.Errorf("ticks after the first read whole tables %d times", got-loads)
	}
	// One host finishes: the next tick sees one row, writes none, and the
	// host's job is gone.
	h := f.hosts[7]
	job := e.JobsFor(h, f.clock())[0].UUID
	feed := f.cs.feedRows.Load()
	if err := f.st.ApplyHeartbeats(f.ctx, []store.Heartbeat{f.beat(h, "1.1.0", store.JobReport{JobID: job, Status: okta.InstanceSuccess, Progress: 100})}); err != nil {
		t.Fatal(err)
	}
	f.tick(e, true)
	if got := f.cs.feedRows.Load() - feed; got > 4 {
		t.Errorf("one report brought %d rows through the feed", got)
	}
	if e.stats.passed != 0 {
		// Its agent's new version decides nothing for the other rows.
		t.Errorf("one report made the plan go over %d rows", e.stats.passed)
	}
	if got := f.cs.rowsWritten.Load() - written; got != 0 {
		t.Errorf("one report made the engine write %d rows", got)
	}
	if jobs := e.JobsFor(h, f.clock()); len(jobs) != 0 {
		t.Errorf("finished host still has jobs %+v", jobs)
	}
	// Everyone finishes: the update is Success and leaves the engine.
	var hbs []store.Heartbeat
	for _, h := range f.hosts {
		if jobs := e.JobsFor(h, f.clock()); len(jobs) == 1 {
			hbs = append(hbs, f.beat(h, "1.1.0", store.JobReport{JobID: jobs[0].UUID, Status: okta.InstanceSuccess, Progress: 100}))
		}
	}
	if err := f.st.ApplyHeartbeats(f.ctx, hbs); err != nil {
		t.Fatal(err)
	}
	f.tick(e, true)
	got, err := f.st.GetUpdate(f.ctx, f.pool.ID, u.ID)
	if err != nil || got.Status != okta.JobSuccess {
		t.Fatalf("update after every report = %v, %v", got.Status, err)
	}
	if len(e.updates) != 0 {
		t.Errorf("the engine still holds %d updates", len(e.updates))
	}
}

// TestFollowerPublishesTheLeadersJobs: a second engine on the same store
// that does not lead hands out the same jobs from the change feed.
func TestFollowerPublishesTheLeadersJobs(t *testing.T) {
	f := newFleet(t, 50, store.Settings{MaxUnavailable: 10})
	leader, follower := f.engine(), f.engine()
	for _, h := range f.hosts {
		leader.Heard(h, f.clock())
		follower.Heard(h, f.clock())
	}
	f.tick(leader, true)
	f.tick(follower, false)
	f.createUpdate()
	f.tick(leader, true)
	f.tick(follower, false)
	handed := 0
	for _, h := range f.hosts {
		l, fl := leader.JobsFor(h, f.clock()), follower.JobsFor(h, f.clock())
		if len(l) != len(fl) || (len(l) == 1 && l[0].UUID != fl[0].UUID) {
			t.Fatalf("host %s: leader hands %+v, follower %+v", h, l, fl)
		}
		handed += len(l)
	}
	if handed != 10 {
		t.Errorf("%d jobs handed out, want maxUnavailable 10", handed)
	}
}

// TestSilentHostWaits: a host not heard from within InactiveAfter gets no
// job and says why; heard again, it gets one.
func TestSilentHostWaits(t *testing.T) {
	f := newFleet(t, 3, store.Settings{MinOperational: 1})
	e := f.engine()
	f.advance(2 * time.Minute) // everyone's heartbeat is now 2 minutes old
	for _, h := range f.hosts[:2] {
		e.Heard(h, f.clock())
	}
	f.tick(e, true)
	u := f.createUpdate()
	f.tick(e, true)
	if jobs := e.JobsFor(f.hosts[2], f.clock()); len(jobs) != 0 {
		t.Fatalf("silent host got %+v", jobs)
	}
	got, _ := f.st.GetUpdate(f.ctx, f.pool.ID, u.ID)
	if m := got.Agents[2].Message; m != "waiting: the host is not connected" {
		t.Errorf("silent host's message = %q", m)
	}
	e.Heard(f.hosts[2], f.clock())
	f.tick(e, true)
	if jobs := e.JobsFor(f.hosts[2], f.clock()); len(jobs) != 1 {
		t.Errorf("host heard again got %+v", jobs)
	}
	// Silence past InactiveAfter: the deadline heap notices without a
	// heartbeat.
	f.advance(100 * time.Second)
	f.tick(e, true)
	for _, h := range f.hosts {
		if c := e.clients[h]; c.connected {
			t.Errorf("host %s still connected after 100 s of silence", h)
		}
	}
}

// TestAllAgentsUpdateWithoutRows: an "all agents" update is stored without
// its agents' rows; the engine writes them, in the pool's order, and hands
// out the jobs in the same tick.
func TestAllAgentsUpdateWithoutRows(t *testing.T) {
	const n = 300
	f := newFleet(t, n, store.Settings{})
	e := f.engine()
	for _, h := range f.hosts {
		e.Heard(h, f.clock())
	}
	f.tick(e, true)
	u := f.createUpdate(false)
	f.tick(e, true)
	got, err := f.st.GetUpdate(f.ctx, f.pool.ID, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Agents) != n {
		t.Fatalf("the engine wrote %d rows, want %d", len(got.Agents), n)
	}
	for i, ua := range got.Agents {
		if want := f.agent[f.hosts[i]]; ua.AgentID != want || ua.Position != i || ua.JobID == "" {
			t.Fatalf("row %d = %+v, want agent %s at position %d with a job", i, ua, want, i)
		}
	}
	// A second engine (a restart) loads the rows as they are: no second
	// set of jobs.
	e2 := f.engine()
	f.tick(e2, true)
	for _, h := range f.hosts[:5] {
		a, b := e.JobsFor(h, f.clock()), e2.JobsFor(h, f.clock())
		if len(a) != 1 || len(b) != 1 || a[0].UUID != b[0].UUID {
			t.Fatalf("host %s: before restart %+v, after %+v", h, a, b)
		}
	}
}

// TestDispatchWritesInCheckInOrder: a large dispatch is written in batches
// ordered by when the hosts were last heard from, so the hosts that check
// in soonest have their jobs committed (and published) first.
func TestDispatchWritesInCheckInOrder(t *testing.T) {
	const n = 300
	f := newFleet(t, n, store.Settings{})
	e := f.engine() // WriteBatch 100: three batches
	base := f.clock()
	f.advance(time.Minute)
	for i, h := range f.hosts {
		// Host 0 was heard last, host n-1 first.
		e.Heard(h, base.Add(time.Duration(n-i)*100*time.Millisecond))
	}
	f.tick(e, true)
	u := f.createUpdate(false)
	f.tick(e, true)
	got, err := f.st.GetUpdate(f.ctx, f.pool.ID, u.ID)
	if err != nil || len(got.Agents) != n {
		t.Fatalf("rows = %d, %v", len(got.Agents), err)
	}
	byAgent := map[string]int64{}
	for _, ua := range got.Agents {
		byAgent[ua.AgentID] = ua.Rev
	}
	first, last := byAgent[f.agent[f.hosts[n-1]]], byAgent[f.agent[f.hosts[0]]]
	if first >= last || byAgent[f.agent[f.hosts[n/2]]] <= first || byAgent[f.agent[f.hosts[n/2]]] >= last {
		t.Errorf("revisions: host heard first %d, middle %d, last %d; want rising in check-in order", first, byAgent[f.agent[f.hosts[n/2]]], last)
	}
}

// TestMinimumFollowsVersionChanges: with minimalSupportedVersion set, an
// agent whose version drops below it after the pool was checked gets an
// update of its own (the check looks at the agents whose versions changed,
// not the pool), and so does an agent that joins the pool below it.
func TestMinimumFollowsVersionChanges(t *testing.T) {
	f := newFleet(t, 4, store.Settings{MinimalSupportedVersion: "1.0.0"})
	e := f.engine()
	for _, h := range f.hosts {
		e.Heard(h, f.clock())
	}
	f.tick(e, true)
	minUpdates := func() []*store.Update {
		t.Helper()
		list, err := f.st.ListUpdates(f.ctx, f.pool.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		var out []*store.Update
		for _, u := range list {
			if strings.HasPrefix(u.Name, "minimalSupportedVersion") {
				out = append(out, u)
			}
		}
		return out
	}
	if got := minUpdates(); len(got) != 0 {
		t.Fatalf("every agent at the minimum, yet %d updates", len(got))
	}
	// Host 2's agent goes back to 0.9.0.
	if err := f.st.ApplyHeartbeats(f.ctx, []store.Heartbeat{f.beat(f.hosts[2], "0.9.0")}); err != nil {
		t.Fatal(err)
	}
	f.tick(e, true)
	got := minUpdates()
	if len(got) != 1 || len(got[0].Agents) != 1 || got[0].Agents[0].AgentID != f.agent[f.hosts[2]] {
		t.Fatalf("after one agent fell below the minimum: %d updates %+v", len(got), got)
	}
	// A new host joins with its agent below the minimum.
	id := "host-new"
	if err := f.st.CreateClient(f.ctx, &store.Client{ID: id, PoolID: f.pool.ID, SecretHash: []byte(id), CreatedAt: f.clock()}); err != nil {
		t.Fatal(err)
	}
	if err := f.st.ApplyHeartbeats(f.ctx, []store.Heartbeat{f.beat(id, "0.8.0")}); err != nil {
		t.Fatal(err)
	}
	e.Heard(id, f.clock())
	f.tick(e, true)
	if got := minUpdates(); len(got) != 2 {
		t.Fatalf("after an agent joined below the minimum: %d updates, want 2", len(got))
	}
}

// An update created by count is counted all Scheduled from its creation
// until a tick holds it, then by the engine; one the engine never holds
// (deleted first) is forgotten once the feed says so.
func TestCreatedSummary(t *testing.T) {
	f := newFleet(t, 20, store.Settings{})
	e := f.engine()
	for _, h := range f.hosts {
		e.Heard(h, f.clock())
	}
	f.tick(e, true)
	u := f.createUpdate(false) // all agents, no rows yet
	e.Created(u.ID, len(f.hosts))
	if s, ok := e.Summary(u.ID); !ok || s.Total != len(f.hosts) || s.Counts[okta.InstanceScheduled] != len(f.hosts) {
		t.Fatalf("Summary before a tick = %+v, %v; want %d Scheduled", s, ok, len(f.hosts))
	}
	f.tick(e, true)
	if _, ok := e.created.Load(u.ID); ok {
		t.Error("the created counts outlived the tick that holds the update")
	}
	// A host's success shows: the counts are the engine's.
	h := f.hosts[3]
	job := e.JobsFor(h, f.clock())[0].UUID
	if err := f.st.ApplyHeartbeats(f.ctx, []store.Heartbeat{f.beat(h, "1.1.0", store.JobReport{JobID: job, Status: okta.InstanceSuccess, Progress: 100})}); err != nil {
		t.Fatal(err)
	}
	f.tick(e, true)
	if s, ok := e.Summary(u.ID); !ok || s.Total != len(f.hosts) || s.Counts[okta.InstanceSuccess] != 1 {
		t.Fatalf("Summary after one success = %+v, %v; want the engine's counts", s, ok)
	}

	gone := f.createUpdate(false)
	e.Created(gone.ID, len(f.hosts))
	if err := f.st.DeleteUpdate(f.ctx, f.pool.ID, gone.ID, nil); err != nil {
		t.Fatal(err)
	}
	f.tick(e, true)
	if s, ok := e.Summary(gone.ID); ok {
		t.Errorf("Summary of a deleted update = %+v, want none", s)
	}
}
