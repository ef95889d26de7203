package rollout

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/controlplane/store"
)

// zoneFleet is a fleet whose hosts report the given zones ("" reports
// none) and a host-zoned update of 1.1.0 over all of them.
func zoneFleet(t *testing.T, cron string, minutes int, zones ...string) (*fleet, *Engine, *store.Update) {
	t.Helper()
	f := newFleet(t, len(zones), store.Settings{})
	var hbs []store.Heartbeat
	for i, z := range zones {
		hb := f.beat(f.hosts[i], "1.0.0")
		hb.Timezone = z
		hbs = append(hbs, hb)
	}
	if err := f.st.ApplyHeartbeats(f.ctx, hbs); err != nil {
		t.Fatal(err)
	}
	e := f.engine()
	f.hearAll(e)
	f.tick(e, true)
	delay := 0
	u := &store.Update{ID: store.NewID("upd"), PoolID: f.pool.ID, AgentType: okta.AgentTypeAD, Enabled: true, Status: okta.JobScheduled,
		TargetVersion: "1.1.0", AllAgents: true, CreatedAt: f.clock(), ModifiedAt: f.clock(),
		Schedule: &store.Schedule{Cron: cron, Timezone: "host", Delay: &delay, Duration: &minutes}}
	for _, h := range f.hosts {
		u.Agents = append(u.Agents, store.UpdateAgent{AgentID: f.agent[h], Status: okta.InstanceScheduled, ModifiedAt: f.clock()})
	}
	if err := f.st.CreateUpdate(f.ctx, u); err != nil {
		t.Fatal(err)
	}
	return f, e, u
}

// hearAll records a heartbeat of every host now, so hosts stay connected
// while the fake clock jumps hours.
func (f *fleet) hearAll(e *Engine) {
	for _, h := range f.hosts {
		e.Heard(h, f.clock())
	}
}

// at sets the fake clock, hears every host and ticks.
func (f *fleet) at(e *Engine, ts string) {
	f.t.Helper()
	tm, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		f.t.Fatal(err)
	}
	f.mu.Lock()
	f.now = tm.UTC()
	f.mu.Unlock()
	f.hearAll(e)
	f.tick(e, true)
}

func (f *fleet) status(u *store.Update) okta.AgentUpdateJobStatus {
	f.t.Helper()
	got, err := f.st.GetUpdate(f.ctx, f.pool.ID, u.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return got.Status
}

func (f *fleet) message(u *store.Update, host int) string {
	f.t.Helper()
	got, err := f.st.GetUpdate(f.ctx, f.pool.ID, u.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return got.Agents[host].Message
}

// job returns the host's one job of the update, or nil.
func (f *fleet) job(e *Engine, host int) *sailpoint.Job {
	jobs := e.JobsFor(f.hosts[host], f.clock())
	if len(jobs) == 0 {
		return nil
	}
	return &jobs[0]
}

// finish reports the host's job done and its agent at 1.1.0.
func (f *fleet) finish(e *Engine, host int) {
	f.t.Helper()
	j := f.job(e, host)
	if j == nil {
		f.t.Fatalf("host %d has no job to finish", host)
	}
	hb := f.beat(f.hosts[host], "1.1.0", store.JobReport{JobID: j.UUID, Status: okta.InstanceSuccess})
	if err := f.st.ApplyHeartbeats(f.ctx, []store.Heartbeat{hb}); err != nil {
		f.t.Fatal(err)
	}
}

// TestHostZoneWindowsFollowTheNight: two hosts in different zones and one
// that reported none each get their job at their own local 02:00; the
// update is InProgress while any of their windows is open; hosts outside
// theirs wait with the opening in their own time.
func TestHostZoneWindowsFollowTheNight(t *testing.T) {
	// The clock starts at 2026-12-02T10:00Z. "0 2 3 * *": the 3rd at 02:00
	// local, for an hour: Tokyo opens at 12-02T17:00Z, UTC at 12-03T02:00Z,
	// New York (EST) at 12-03T07:00Z.
	f, e, u := zoneFleet(t, "0 2 3 * *", 60, "Asia/Tokyo", "America/New_York", "")
	const tokyo, newYork, none = 0, 1, 2
	f.at(e, "2026-12-02T10:00:00Z")
	if st := f.status(u); st != okta.JobScheduled {
		t.Fatalf("before any window: status %s, want SCHEDULED", st)
	}
	for h := range 3 {
		if j := f.job(e, h); j != nil {
			t.Fatalf("host %d got a job before its window: %+v", h, j)
		}
	}

	f.at(e, "2026-12-02T16:59:59Z")
	if j := f.job(e, tokyo); j != nil || f.status(u) != okta.JobScheduled {
		t.Fatalf("a second before Tokyo's 02:00: job %+v, status %s", j, f.status(u))
	}
	f.at(e, "2026-12-02T17:00:00Z") // 02:00 in Tokyo
	if st := f.status(u); st != okta.JobInProgress {
		t.Fatalf("Tokyo's window is open: status %s, want IN_PROGRESS", st)
	}
	j := f.job(e, tokyo)
	if j == nil {
		t.Fatal("the Tokyo host has no job at its 02:00")
	}
	if m := j.Maintenance; m.WindowStartTime != "2026-12-02T17:00:00Z" || m.WindowFinishTime != "2026-12-02T18:00:00Z" || m.Window != "true" {
		t.Errorf("the Tokyo host's job carries the window %+v, want its own 17:00Z-18:00Z", m)
	}
	for h, want := range map[int]string{
		newYork: "waiting: the host's window opens at 2026-12-03T02:00:00-05:00 (America/New_York)",
		none:    "waiting: the host's window opens at 2026-12-03T02:00:00Z (UTC, the default: the host reported no known time zone)",
	} {
		if j := f.job(e, h); j != nil {
			t.Errorf("host %d got a job outside its window: %+v", h, j)
		}
		if m := f.message(u, h); m != want {
			t.Errorf("host %d's message = %q, want %q", h, m, want)
		}
	}

	// An idle tick inside the window writes nothing and scans nothing.
	written := f.cs.rowsWritten.Load()
	f.at(e, "2026-12-02T17:10:00Z")
	if n := f.cs.rowsWritten.Load() - written; n != 0 {
		t.Errorf("an idle tick wrote %d rows", n)
	}
	if n := len(e.zoneTimers); n > 6 {
		t.Errorf("%d zone timers for 3 zones", n)
	}

	f.finish(e, tokyo)
	f.at(e, "2026-12-02T17:30:00Z")
	f.at(e, "2026-12-02T18:00:00Z") // Tokyo's window closes: no window open
	if st := f.status(u); st != okta.JobScheduled {
		t.Fatalf("between the windows: status %s, want SCHEDULED", st)
	}

	f.at(e, "2026-12-03T02:00:00Z") // 02:00 UTC: the host without a zone
	if st := f.status(u); st != okta.JobInProgress {
		t.Fatalf("the default zone's window is open: status %s", st)
	}
	if j := f.job(e, none); j == nil || j.Maintenance.WindowStartTime != "2026-12-03T02:00:00Z" {
		t.Fatalf("the host without a zone at 02:00 UTC: job %+v", j)
	}
	if j := f.job(e, newYork); j != nil {
		t.Fatalf("the New York host got a job at 21:00 local: %+v", j)
	}
	f.finish(e, none)
	f.at(e, "2026-12-03T02:30:00Z")

	f.at(e, "2026-12-03T07:00:00Z") // 02:00 EST
	j = f.job(e, newYork)
	if j == nil || j.Maintenance.WindowStartTime != "2026-12-03T07:00:00Z" || j.Maintenance.WindowFinishTime != "2026-12-03T08:00:00Z" {
		t.Fatalf("the New York host at 02:00 EST: job %+v", j)
	}
	f.finish(e, newYork)
	f.at(e, "2026-12-03T07:10:00Z")
	if st := f.status(u); st != okta.JobSuccess {
		t.Fatalf("every host updated: status %s, want SUCCESS", st)
	}
}

// TestHostZoneJobRevokedWhenItsWindowCloses: a job handed out but not
// started when the host's own window closes is taken back while the update
// runs on in another zone, and the host waits for its next window.
func TestHostZoneJobRevokedWhenItsWindowCloses(t *testing.T) {
	// Ten-hour windows: Tokyo's runs 12-02T17:00Z to 12-03T03:00Z, Paris's
	// 12-03T01:00Z to 11:00Z.
	f, e, u := zoneFleet(t, "0 2 3 * *", 600, "Asia/Tokyo", "Europe/Paris")
	const tokyo, paris = 0, 1
	f.at(e, "2026-12-02T17:00:00Z")
	if f.job(e, tokyo) == nil {
		t.Fatal("no job in Tokyo's window")
	}
	f.at(e, "2026-12-03T01:00:00Z")
	if j := f.job(e, paris); j == nil || j.Maintenance.WindowStartTime != "2026-12-03T01:00:00Z" {
		t.Fatalf("the Paris host at 02:00 CET: job %+v", j)
	}
	if f.job(e, tokyo) == nil {
		t.Fatal("the Tokyo host lost its job inside its window")
	}
	f.at(e, "2026-12-03T03:00:00Z") // Tokyo closes, Paris still open
	if st := f.status(u); st != okta.JobInProgress {
		t.Fatalf("Paris's window is open: status %s", st)
	}
	if j := f.job(e, tokyo); j != nil {
		t.Fatalf("the Tokyo host's job outlived its window: %+v", j)
	}
	if m := f.message(u, tokyo); m != "waiting: the host's window opens at 2027-01-03T02:00:00+09:00 (Asia/Tokyo)" {
		t.Errorf("the Tokyo host's message = %q", m)
	}
	if f.job(e, paris) == nil {
		t.Error("the Paris host lost its job inside its window")
	}
}

// TestHostZoneMovedHost: a host that reports a new zone is planned in it.
func TestHostZoneMovedHost(t *testing.T) {
	f, e, u := zoneFleet(t, "0 2 3 * *", 60, "America/New_York")
	f.at(e, "2026-12-02T17:00:00Z")
	if j := f.job(e, 0); j != nil {
		t.Fatalf("the New York host got a job at noon: %+v", j)
	}
	hb := f.beat(f.hosts[0], "1.0.0")
	hb.Timezone = "Asia/Tokyo"
	if err := f.st.ApplyHeartbeats(f.ctx, []store.Heartbeat{hb}); err != nil {
		t.Fatal(err)
	}
	f.at(e, "2026-12-02T17:01:00Z")
	if j := f.job(e, 0); j == nil || j.Maintenance.WindowStartTime != "2026-12-02T17:00:00Z" {
		t.Fatalf("the host now in Tokyo at 02:01 local: job %+v", j)
	}
	if st := f.status(u); st != okta.JobInProgress {
		t.Errorf("status %s", st)
	}
}

// TestHostZoneDST runs host-zoned windows across DST changes with a fake
// clock: a start inside the spring-forward gap opens at the first instant
// after it; a start the fall-back repeats opens once, at its first
// occurrence; zones without DST and hosts without a zone are unaffected.
func TestHostZoneDST(t *testing.T) {
	tests := []struct {
		name, zone, cron string
		minutes          int
		before           string // a second before the window opens
		open, finish     string // the window the host's job carries
		after            string // the window has closed, and does not reopen
	}{
		// 2027-03-14: New York springs forward at 02:00 EST to 03:00 EDT.
		{"New York spring forward, 02:30 does not exist", "America/New_York", "30 2 14 * *", 60,
			"2027-03-14T06:59:59Z", "2027-03-14T07:00:00Z", "2027-03-14T08:00:00Z", "2027-03-14T08:00:00Z"},
		// 2027-11-07: New York falls back at 02:00 EDT to 01:00 EST; 01:30
		// happens twice: the window opens at the first (EDT) and not again.
		{"New York fall back, 01:30 twice", "America/New_York", "30 1 7 * *", 60,
			"2027-11-07T05:29:59Z", "2027-11-07T05:30:00Z", "2027-11-07T06:30:00Z", "2027-11-07T06:45:00Z"},
		// 2027-03-28: London springs forward at 01:00 GMT to 02:00 BST.
		{"London spring forward, 01:15 does not exist", "Europe/London", "15 1 28 * *", 60,
			"2027-03-28T00:59:59Z", "2027-03-28T01:00:00Z", "2027-03-28T02:00:00Z", "2027-03-28T02:00:00Z"},
		// 2027-10-31: London falls back at 02:00 BST to 01:00 GMT.
		{"London fall back, 01:30 twice", "Europe/London", "30 1 31 * *", 30,
			"2027-10-31T00:29:59Z", "2027-10-31T00:30:00Z", "2027-10-31T01:00:00Z", "2027-10-31T01:45:00Z"},
		// 2027-04-04: Sydney falls back at 03:00 AEDT to 02:00 AEST.
		{"Sydney fall back in April, 02:30 twice", "Australia/Sydney", "30 2 4 * *", 60,
			"2027-04-03T15:29:59Z", "2027-04-03T15:30:00Z", "2027-04-03T16:30:00Z", "2027-04-03T16:45:00Z"},
		// 2027-10-03: Sydney springs forward at 02:00 AEST to 03:00 AEDT.
		{"Sydney spring forward in October, 02:30 does not exist", "Australia/Sydney", "30 2 3 * *", 60,
			"2027-10-02T15:59:59Z", "2027-10-02T16:00:00Z", "2027-10-02T17:00:00Z", "2027-10-02T17:00:00Z"},
		{"Tokyo has no DST", "Asia/Tokyo", "0 2 14 * *", 60,
			"2027-03-13T16:59:59Z", "2027-03-13T17:00:00Z", "2027-03-13T18:00:00Z", "2027-03-13T18:00:00Z"},
		{"a host without a zone is read in UTC", "", "30 2 14 * *", 60,
			"2027-03-14T02:29:59Z", "2027-03-14T02:30:00Z", "2027-03-14T03:30:00Z", "2027-03-14T03:30:00Z"},
		{"a host with an unknown zone is read in UTC", "Mars/Olympus_Mons", "30 2 14 * *", 60,
			"2027-03-14T02:29:59Z", "2027-03-14T02:30:00Z", "2027-03-14T03:30:00Z", "2027-03-14T03:30:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, e, _ := zoneFleet(t, tt.cron, tt.minutes, tt.zone)
			f.at(e, tt.before)
			if j := f.job(e, 0); j != nil {
				t.Fatalf("a job a second before the window: %+v", j)
			}
			f.at(e, tt.open)
			j := f.job(e, 0)
			if j == nil {
				t.Fatalf("no job when the window opens at %s", tt.open)
			}
			if m := j.Maintenance; m.WindowStartTime != tt.open || m.WindowFinishTime != tt.finish || m.Window != "true" {
				t.Fatalf("the job's window = %s to %s (open %s), want %s to %s", m.WindowStartTime, m.WindowFinishTime, m.Window, tt.open, tt.finish)
			}
			f.at(e, tt.after)
			if j := f.job(e, 0); j != nil {
				t.Fatalf("a job after the window closed (a repeated wall time opens no second window): %+v", j.Maintenance)
			}
		})
	}
}

// hidingStore leaves one pool out of ListPools while hide is set: a pool
// created between the engine's listing and its read of the change feed.
type hidingStore struct {
	Store
	hide string
}

func (s *hidingStore) ListPools(ctx context.Context, q store.PoolQuery) ([]*store.Pool, error) {
	ps, err := s.Store.ListPools(ctx, q)
	return slices.DeleteFunc(ps, func(p *store.Pool) bool { return p.ID == s.hide }), err
}

// TestAgentOfANewPoolIsKept: an agent row that arrives before its pool is
// listed is applied once the pool is (the feed does not bring an unchanged
// row back), so a host-zoned update over the new pool covers it.
func TestAgentOfANewPoolIsKept(t *testing.T) {
	f := newFleet(t, 1, store.Settings{})
	hs := &hidingStore{Store: f.cs}
	e := New(Deps{Store: hs, Now: f.clock, Config: Config{Tick: time.Second, InactiveAfter: 90 * time.Second},
		Catalog: func(context.Context) (Catalog, error) { return f.cat, nil }})
	f.tick(e, true)
	p2 := &store.Pool{ID: store.NewID("pol"), Name: "p2", Type: okta.AgentTypeAD, Settings: store.Settings{MaxUnavailable: 1, ReleaseChannel: okta.ChannelGA},
		CreatedAt: f.clock()}
	if err := f.st.CreatePool(f.ctx, p2); err != nil {
		t.Fatal(err)
	}
	if err := f.st.CreateClient(f.ctx, &store.Client{ID: "late-host", PoolID: p2.ID, SecretHash: []byte("late"), CreatedAt: f.clock()}); err != nil {
		t.Fatal(err)
	}
	hb := f.beat("late-host", "1.0.0")
	hb.PoolID = p2.ID
	if err := f.st.ApplyHeartbeats(f.ctx, []store.Heartbeat{hb}); err != nil {
		t.Fatal(err)
	}
	hs.hide = p2.ID
	f.tick(e, true) // the agent arrives, its pool is not listed
	hs.hide = ""
	f.tick(e, true)
	ps := e.pools[p2.ID]
	if ps == nil || len(ps.agents) != 1 {
		t.Fatalf("the new pool's agent was dropped: pool %v", ps)
	}
}

// TestHostZonesOnAFollower: a replica that does not lead shows the same
// zone windows as the leader (the API's nextWindow may be served by
// either) and hands out the same jobs.
func TestHostZonesOnAFollower(t *testing.T) {
	f, leader, u := zoneFleet(t, "0 2 3 * *", 60, "Asia/Tokyo", "America/New_York")
	follower := f.engine()
	f.hearAll(follower)
	f.tick(follower, false)
	f.at(leader, "2026-12-02T17:00:00Z")
	f.hearAll(follower)
	f.tick(follower, false)
	lz, ok1 := leader.HostZones(u.ID)
	fz, ok2 := follower.HostZones(u.ID)
	if !ok1 || !ok2 || len(lz) != 2 || len(fz) != 2 {
		t.Fatalf("zones: leader %+v (%v), follower %+v (%v)", lz, ok1, fz, ok2)
	}
	for i := range lz {
		if lz[i] != fz[i] {
			t.Errorf("zone %d: leader %+v, follower %+v", i, lz[i], fz[i])
		}
	}
	if lz[0].Zone != "Asia/Tokyo" || !lz[0].Open || lz[0].Hosts != 1 || lz[1].Zone != "America/New_York" || lz[1].Open {
		t.Errorf("zones = %+v", lz)
	}
	for h := range f.hosts {
		l, fl := leader.JobsFor(f.hosts[h], f.clock()), follower.JobsFor(f.hosts[h], f.clock())
		if len(l) != len(fl) || (len(l) == 1 && (l[0].UUID != fl[0].UUID || *l[0].Maintenance != *fl[0].Maintenance)) {
			t.Errorf("host %d: leader hands %+v, follower %+v", h, l, fl)
		}
	}
}
