// Package storetest is the behaviour every store backend must pass. A
// backend's test calls Run with a function that opens a fresh, empty store.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
)

// Open returns a fresh, empty store for one test.
type Open func(t *testing.T) store.Store

// Run runs the whole suite against the backend that open returns.
func Run(t *testing.T, open Open) {
	t.Run("Pools", func(t *testing.T) { testPools(t, open(t)) })
	t.Run("Agents", func(t *testing.T) { testAgents(t, open(t)) })
	t.Run("Updates", func(t *testing.T) { testUpdates(t, open(t)) })
	t.Run("ConcurrentModify", func(t *testing.T) { testConcurrentModify(t, open(t)) })
	t.Run("Tokens", func(t *testing.T) { testTokens(t, open(t)) })
	t.Run("ClientsAndHeartbeats", func(t *testing.T) { testHeartbeats(t, open(t)) })
	t.Run("ClientTimezone", func(t *testing.T) { testClientTimezone(t, open(t)) })
	t.Run("Enroll", func(t *testing.T) { testEnroll(t, open(t)) })
	t.Run("Releases", func(t *testing.T) { testReleases(t, open(t)) })
	t.Run("Sequence", func(t *testing.T) { testSequence(t, open(t)) })
	t.Run("Audit", func(t *testing.T) { testAudit(t, open(t)) })
	t.Run("Changes", func(t *testing.T) { testChanges(t, open(t)) })
	t.Run("ChangesConcurrent", func(t *testing.T) { testChangesConcurrent(t, open(t)) })
	t.Run("WriteRolloutMany", func(t *testing.T) { testWriteRolloutMany(t, open(t)) })
	t.Run("Interned", func(t *testing.T) { testInterned(t, open(t)) })
}

func testHeartbeats(t *testing.T, s store.Store) {
	ctx := context.Background()
	p := mustPool(t, s, okta.AgentTypeAD, "a")
	c := &store.Client{ID: "host-1", PoolID: p.ID, SecretHash: []byte("secret-hash-1"), CreatedAt: now}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	if err := s.CreateClient(ctx, &store.Client{ID: "host-1", PoolID: p.ID, SecretHash: []byte("x"), CreatedAt: now}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate client: %v", err)
	}
	if got, err := s.ClientBySecret(ctx, []byte("secret-hash-1")); err != nil || got.ID != "host-1" || got.Facts != "{}" {
		t.Errorf("ClientBySecret = %+v, %v", got, err)
	}
	if _, err := s.ClientBySecret(ctx, []byte("nope")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ClientBySecret(unknown) = %v", err)
	}
	u := &store.Update{ID: store.NewID("upd"), PoolID: p.ID, AgentType: okta.AgentTypeAD, Status: okta.JobInProgress, CreatedAt: now, ModifiedAt: now,
		Agents: []store.UpdateAgent{{AgentID: "agtX", Status: okta.InstanceScheduled, JobID: "job-1", JobSeq: 7, DispatchedAt: now}}}
	if err := s.CreateUpdate(ctx, u); err != nil {
		t.Fatal(err)
	}
	seen := now.Add(time.Minute)
	hb := store.Heartbeat{ClientID: "host-1", PoolID: p.ID, Seen: seen, Type: "VA", Hostname: "dc1.example.com", Status: "NORMAL",
		OS: "linux", Arch: "amd64", AgentVersion: "0.3.0", Facts: `{"hostname":"dc1.example.com"}`,
		Agents: []store.AgentSeen{{AgentName: "ad", Name: "dc1.example.com", Type: okta.AgentTypeAD, Version: "1.0.0", Status: okta.OperationalStatusOperational}},
		Jobs:   []store.JobReport{{JobID: "job-1", Status: okta.InstanceInProgress, Progress: 40, Phase: "download"}}}
	if err := s.ApplyHeartbeats(ctx, []store.Heartbeat{hb}); err != nil {
		t.Fatalf("ApplyHeartbeats: %v", err)
	}
	got, _ := s.GetClient(ctx, "host-1")
	if got.Hostname != "dc1.example.com" || got.OS != "linux" || got.Status != "NORMAL" || !got.LastSeen.Equal(seen) || got.AgentVersion != "0.3.0" {
		t.Errorf("client after heartbeat = %+v", got)
	}
	agents, _ := s.ListAgents(ctx, p.ID)
	if len(agents) != 1 || agents[0].Version != "1.0.0" || agents[0].ClientID != "host-1" || agents[0].AgentName != "ad" ||
		agents[0].OperationalStatus != okta.OperationalStatusOperational || !agents[0].LastConnection.Equal(seen) {
		t.Fatalf("agents after heartbeat = %+v", agents)
	}
	firstID := agents[0].ID
	u2 := &store.Update{ID: store.NewID("upd"), PoolID: p.ID, AgentType: okta.AgentTypeAD, Status: okta.JobCancelled, CreatedAt: now, ModifiedAt: now,
		Agents: []store.UpdateAgent{{AgentID: firstID, Status: okta.InstanceInProgress, JobID: "job-2"}}}
	if err := s.CreateUpdate(ctx, u2); err != nil {
		t.Fatal(err)
	}
	if owner, err := s.JobOwner(ctx, "job-2"); err != nil || owner != "host-1" {
		t.Errorf("JobOwner = %q, %v", owner, err)
	}
	if _, err := s.JobOwner(ctx, "job-none"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("JobOwner(unknown) = %v", err)
	}
	if h, err := s.GetUpdateHeader(ctx, p.ID, u.ID); err != nil || h.ID != u.ID || h.Agents != nil || h.Status != okta.JobInProgress || h.Rev == 0 {
		t.Errorf("GetUpdateHeader = %+v, %v", h, err)
	}
	if _, err := s.GetUpdateHeader(ctx, p.ID, "updNone"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetUpdateHeader(unknown) = %v", err)
	}
	gu, _ := s.GetUpdate(ctx, p.ID, u.ID)
	if gu.Agents[0].Status != okta.InstanceInProgress || gu.Agents[0].Progress != 40 || gu.Agents[0].Phase != "download" || gu.Agents[0].JobSeq != 7 {
		t.Errorf("update agent after job report = %+v", gu.Agents[0])
	}
	// A second heartbeat upserts the same agent and reports progress only.
	hb2 := store.Heartbeat{ClientID: "host-1", PoolID: p.ID, Seen: seen.Add(time.Minute),
		Agents: []store.AgentSeen{{AgentName: "ad", Name: "dc1.example.com", Type: okta.AgentTypeAD, Version: "1.1.0", Status: okta.OperationalStatusOperational}},
		Jobs:   []store.JobReport{{JobID: "job-1", Progress: 90, Phase: "verify"}, {JobID: "unknown-job", Status: okta.InstanceFailed}}}
	if err := s.ApplyHeartbeats(ctx, []store.Heartbeat{hb2}); err != nil {
		t.Fatal(err)
	}
	agents, _ = s.ListAgents(ctx, p.ID)
	if len(agents) != 1 || agents[0].ID != firstID || agents[0].Version != "1.1.0" {
		t.Errorf("agents after 2nd heartbeat = %+v", agents)
	}
	gu, _ = s.GetUpdate(ctx, p.ID, u.ID)
	if gu.Agents[0].Status != okta.InstanceInProgress || gu.Agents[0].Progress != 90 {
		t.Errorf("progress-only report = %+v", gu.Agents[0])
	}
	if got, _ := s.GetClient(ctx, "host-1"); got.Hostname != "dc1.example.com" {
		t.Errorf("a heartbeat without facts cleared them: %+v", got)
	}
	// The host's health watch: the reason is kept with the status, and a
	// new reason alone is a change of the row.
	revBefore := agents[0].Rev
	hb3 := store.Heartbeat{ClientID: "host-1", PoolID: p.ID, Seen: seen.Add(2 * time.Minute),
		Agents: []store.AgentSeen{{AgentName: "ad", Name: "dc1.example.com", Type: okta.AgentTypeAD, Version: "1.1.0",
			Status: okta.OperationalStatusDegraded, Message: "health check failed: GET http://127.0.0.1:8089/healthz: HTTP 503"}}}
	hb4 := hb3
	hb4.Agents = []store.AgentSeen{hb3.Agents[0]}
	hb4.Agents[0].Message = "crash loop: the service manager restarted the service 3 times in the last 2m"
	for _, hb := range []store.Heartbeat{hb3, hb4} {
		if err := s.ApplyHeartbeats(ctx, []store.Heartbeat{hb}); err != nil {
			t.Fatal(err)
		}
		agents, _ = s.ListAgents(ctx, p.ID)
		if a := agents[0]; a.OperationalStatus != okta.OperationalStatusDegraded || a.OperationalMessage != hb.Agents[0].Message || a.Rev <= revBefore {
			t.Errorf("agent after a failing watch = %+v (rev before %d)", a, revBefore)
		}
		revBefore = agents[0].Rev
	}
	// Touch moves last-seen forward, never back.
	later := seen.Add(time.Hour)
	if err := s.TouchClients(ctx, map[string]time.Time{"host-1": later}); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchClients(ctx, map[string]time.Time{"host-1": now}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetClient(ctx, "host-1"); !got.LastSeen.Equal(later) {
		t.Errorf("last seen = %v, want %v", got.LastSeen, later)
	}
	if agents, _ := s.ListAgents(ctx, p.ID); !agents[0].LastConnection.Equal(later) {
		t.Errorf("agent last connection = %v", agents[0].LastConnection)
	}
	if list, _ := s.ListClients(ctx, p.ID); len(list) != 1 {
		t.Errorf("ListClients = %v", list)
	}
	if list, _ := s.ListClients(ctx); len(list) != 1 {
		t.Errorf("ListClients() = %v", list)
	}
	active, err := s.ListActiveUpdates(ctx, okta.JobInProgress)
	if err != nil || len(active) != 1 || len(active[0].Agents) != 1 {
		t.Errorf("ListActiveUpdates = %v, %v", active, err)
	}
	headers, err := s.ListUpdateHeaders(ctx, okta.JobInProgress)
	if err != nil || len(headers) != 1 || headers[0].ID != active[0].ID || headers[0].Agents != nil {
		t.Errorf("ListUpdateHeaders = %v, %v; want the update without its agents", headers, err)
	}
}

func testEnroll(t *testing.T, s store.Store) {
	ctx := context.Background()
	p := mustPool(t, s, okta.AgentTypeLDAP, "a")
	tok := &store.EnrollToken{Hash: []byte("enroll-1"), PoolID: p.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateEnrollToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("expired")
	if err := s.Enroll(ctx, tok.Hash, func(*store.EnrollToken) error { return refused }, &store.Client{ID: "c0", SecretHash: []byte("h0"), CreatedAt: now}); !errors.Is(err, refused) {
		t.Errorf("refused enroll = %v", err)
	}
	c := &store.Client{ID: "c1", SecretHash: []byte("h1"), CreatedAt: now}
	if err := s.Enroll(ctx, tok.Hash, nil, c); err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	if c.PoolID != p.ID {
		t.Errorf("enrolled into %q", c.PoolID)
	}
	if err := s.Enroll(ctx, tok.Hash, nil, &store.Client{ID: "c2", SecretHash: []byte("h2"), CreatedAt: now}); !errors.Is(err, store.ErrUsed) {
		t.Errorf("second use = %v, want ErrUsed", err)
	}
	if err := s.Enroll(ctx, []byte("other"), nil, &store.Client{ID: "c3", SecretHash: []byte("h3"), CreatedAt: now}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown token = %v", err)
	}
	if _, err := s.GetClient(ctx, "c0"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused enrollment created a client: %v", err)
	}
}

func testReleases(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, v := range []string{"1.0.0", "1.1.0"} {
		r := &store.Release{Name: "AD", Version: v, OS: "linux", Arch: "amd64", Channel: okta.ChannelGA, Size: 10, SHA256: "ab", Signature: "sig", PublishedAt: now}
		if err := s.CreateRelease(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateRelease(ctx, &store.Release{Name: "AD", Version: "1.0.0", OS: "linux", Arch: "amd64", Channel: okta.ChannelGA}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate release = %v", err)
	}
	if err := s.CreateRelease(ctx, &store.Release{Name: "poolagent", Version: "0.2.0", OS: "linux", Arch: "amd64", Channel: okta.ChannelEA, PublishedAt: now}); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListReleases(ctx, "AD")
	if err != nil || len(list) != 2 || list[1].Version != "1.1.0" {
		t.Errorf("ListReleases(AD) = %v, %v", list, err)
	}
	if all, _ := s.ListReleases(ctx, ""); len(all) != 3 {
		t.Errorf("ListReleases() = %d", len(all))
	}
	r, err := s.GetRelease(ctx, "AD", "1.1.0", "linux", "amd64")
	if err != nil || r.Signature != "sig" || !r.PublishedAt.Equal(now) || r.Channel != okta.ChannelGA {
		t.Errorf("GetRelease = %+v, %v", r, err)
	}
	if _, err := s.GetRelease(ctx, "AD", "1.1.0", "windows", "amd64"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetRelease(missing) = %v", err)
	}
	testReleasePatches(t, s)
}

// testReleasePatches: a release's patches are stored with it, in order,
// and read back by every read of the catalog; a refused release leaves
// none behind.
func testReleasePatches(t *testing.T, s store.Store) {
	ctx := context.Background()
	patches := []store.ReleasePatch{
		{FromVersion: "1.0.0", FromSHA256: "aa", Size: 3, SHA256: "p1"},
		{FromVersion: "1.1.0", FromSHA256: "ab", Size: 2, SHA256: "p2"},
	}
	r := &store.Release{Name: "AD", Version: "1.2.0", OS: "linux", Arch: "amd64", Channel: okta.ChannelGA, Size: 10, SHA256: "ac",
		Signature: "sig", PublishedAt: now, Patches: patches}
	if err := s.CreateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	dup := *r
	dup.Patches = []store.ReleasePatch{{FromVersion: "0.9.0", FromSHA256: "a9", Size: 1, SHA256: "p0"}}
	if err := s.CreateRelease(ctx, &dup); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate release with patches = %v", err)
	}
	got, err := s.GetRelease(ctx, "AD", "1.2.0", "linux", "amd64")
	if err != nil || !slices.Equal(got.Patches, patches) {
		t.Errorf("GetRelease(1.2.0).Patches = %+v, %v; want %+v", got, err, patches)
	}
	for _, name := range []string{"AD", ""} {
		list, err := s.ListReleases(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, rel := range list {
			want := []store.ReleasePatch(nil)
			if rel.Name == "AD" && rel.Version == "1.2.0" {
				want = patches
			}
			if !slices.Equal(rel.Patches, want) {
				t.Errorf("ListReleases(%q): %s %s patches = %+v, want %+v", name, rel.Name, rel.Version, rel.Patches, want)
			}
		}
	}
	if old, err := s.GetRelease(ctx, "AD", "1.1.0", "linux", "amd64"); err != nil || len(old.Patches) != 0 {
		t.Errorf("GetRelease(1.1.0).Patches = %+v, %v; want none", old, err)
	}
}

func testSequence(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, err := s.NextSequence(ctx, "jobs", 1)
	if err != nil || a != 1 {
		t.Fatalf("first = %d, %v", a, err)
	}
	b, _ := s.NextSequence(ctx, "jobs", 5)
	c, _ := s.NextSequence(ctx, "jobs", 1)
	if b != 2 || c != 7 {
		t.Errorf("sequence = %d, %d, want 2, 7", b, c)
	}
	if d, _ := s.NextSequence(ctx, "other", 1); d != 1 {
		t.Errorf("other counter = %d", d)
	}
}

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mustPool(t *testing.T, s store.Store, typ okta.AgentType, name string) *store.Pool {
	t.Helper()
	p := &store.Pool{ID: store.NewID("pol"), Name: name, Type: typ, CreatedAt: now}
	if err := s.CreatePool(context.Background(), p); err != nil {
		t.Fatalf("CreatePool: %v", err)
	}
	return p
}

func testPools(t *testing.T, s store.Store) {
	ctx := context.Background()
	var ad []*store.Pool
	for i := range 5 {
		ad = append(ad, mustPool(t, s, okta.AgentTypeAD, fmt.Sprintf("ad-%d", i)))
	}
	mustPool(t, s, okta.AgentTypeLDAP, "ldap-0")

	got, err := s.GetPool(ctx, ad[0].ID)
	if err != nil {
		t.Fatalf("GetPool: %v", err)
	}
	if got.Name != "ad-0" || got.Type != okta.AgentTypeAD || got.Settings.ReleaseChannel != okta.ChannelGA || !got.CreatedAt.Equal(now) ||
		got.Settings.MinOperational != store.DefaultMinOperational {
		t.Errorf("GetPool = %+v", got)
	}
	if _, err := s.GetPool(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetPool(missing) error = %v, want ErrNotFound", err)
	}
	if err := s.CreatePool(ctx, &store.Pool{ID: ad[0].ID, Name: "dup", Type: okta.AgentTypeAD, CreatedAt: now}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreatePool(duplicate id) error = %v, want ErrConflict", err)
	}

	page, err := s.ListPools(ctx, store.PoolQuery{Type: okta.AgentTypeAD, Limit: 3})
	if err != nil || len(page) != 3 || page[0].ID != ad[0].ID || page[2].ID != ad[2].ID {
		t.Fatalf("ListPools first page = %v, %v", page, err)
	}
	page, err = s.ListPools(ctx, store.PoolQuery{Type: okta.AgentTypeAD, AfterSeq: page[2].Seq, Limit: 3})
	if err != nil || len(page) != 2 || page[0].ID != ad[3].ID {
		t.Fatalf("ListPools second page = %v, %v", page, err)
	}
	page, err = s.ListPools(ctx, store.PoolQuery{Type: okta.AgentTypeLDAP, Limit: 10})
	if err != nil || len(page) != 1 {
		t.Fatalf("ListPools LDAP = %v, %v", page, err)
	}

	p, err := s.ModifyPool(ctx, ad[1].ID, func(p *store.Pool) error {
		p.Name = "renamed"
		p.Settings.ContinueOnError = true
		p.Settings.ReleaseChannel = okta.ChannelEA
		p.Settings.LatestVersion = "1.2.3"
		p.Settings.MinimalSupportedVersion = "1.0.0"
		p.Settings.MinOperational = 3
		p.Settings.RequireAllConnected = true
		p.Settings.ArtifactMirrors = []string{"https://mirror1.example.com/pa", "http://10.0.0.2:8080"}
		return nil
	})
	if err != nil || p.Name != "renamed" {
		t.Fatalf("ModifyPool = %v, %v", p, err)
	}
	got, _ = s.GetPool(ctx, ad[1].ID)
	want := store.Settings{ReleaseChannel: okta.ChannelEA, ContinueOnError: true, LatestVersion: "1.2.3", MinimalSupportedVersion: "1.0.0", MaxUnavailable: 1,
		MinOperational: 3, RequireAllConnected: true, ArtifactMirrors: []string{"https://mirror1.example.com/pa", "http://10.0.0.2:8080"}}
	if got.Name != "renamed" || !got.Settings.Equal(want) {
		t.Errorf("after ModifyPool: %+v", got)
	}
	boom := errors.New("boom")
	if _, err := s.ModifyPool(ctx, ad[1].ID, func(p *store.Pool) error { p.Name = "lost"; return boom }); !errors.Is(err, boom) {
		t.Errorf("ModifyPool error = %v, want boom", err)
	}
	if got, _ := s.GetPool(ctx, ad[1].ID); got.Name != "renamed" {
		t.Errorf("a failed ModifyPool saved its change: %q", got.Name)
	}
	if _, err := s.ModifyPool(ctx, "nope", func(*store.Pool) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ModifyPool(missing) error = %v", err)
	}
}

func testAgents(t *testing.T, s store.Store) {
	ctx := context.Background()
	p1 := mustPool(t, s, okta.AgentTypeAD, "a")
	p2 := mustPool(t, s, okta.AgentTypeAD, "b")
	for i, pid := range []string{p1.ID, p2.ID, p1.ID} {
		a := &store.Agent{ID: store.NewID("agt"), PoolID: pid, Name: fmt.Sprintf("host-%d", i), Type: okta.AgentTypeAD,
			Version: "1.0.0", LastConnection: now, CreatedAt: now}
		if err := s.CreateAgent(ctx, a); err != nil {
			t.Fatalf("CreateAgent: %v", err)
		}
	}
	got, err := s.ListAgents(ctx, p1.ID)
	if err != nil || len(got) != 2 || got[0].Name != "host-0" || got[1].Name != "host-2" {
		t.Fatalf("ListAgents(p1) = %v, %v", got, err)
	}
	if got[0].OperationalStatus != okta.OperationalStatusInactive || !got[0].LastConnection.Equal(now) || got[0].Version != "1.0.0" {
		t.Errorf("agent = %+v", got[0])
	}
	got, err = s.ListAgents(ctx, p1.ID, p2.ID)
	if err != nil || len(got) != 3 {
		t.Fatalf("ListAgents(p1, p2) = %v, %v", got, err)
	}
	if got, err := s.ListAgents(ctx); err != nil || len(got) != 0 {
		t.Errorf("ListAgents() = %v, %v", got, err)
	}
}

func testUpdates(t *testing.T, s store.Store) {
	ctx := context.Background()
	p := mustPool(t, s, okta.AgentTypeAD, "a")
	delay, duration := 3, 120
	scheduled := &store.Update{ID: store.NewID("upd"), PoolID: p.ID, Name: "nightly", AgentType: okta.AgentTypeAD, Enabled: true,
		Status: okta.JobScheduled, TargetVersion: "1.1.0", CreatedAt: now, ModifiedAt: now, SortOrder: 2,
		Schedule: &store.Schedule{Cron: "0 2 * * 2#1", Timezone: "Europe/Berlin", Delay: &delay, Duration: &duration},
		Agents: []store.UpdateAgent{
			{AgentID: "agtB", Status: okta.InstanceScheduled, ModifiedAt: now},
			{AgentID: "agtA", Status: okta.InstanceScheduled, ModifiedAt: now},
		}}
	adhoc := &store.Update{ID: store.NewID("upd"), PoolID: p.ID, Name: "now", AgentType: okta.AgentTypeAD, Enabled: true,
		Status: okta.JobInProgress, TargetVersion: "1.1.0", AllAgents: true, CreatedAt: now, ModifiedAt: now}
	for _, u := range []*store.Update{scheduled, adhoc} {
		if err := s.CreateUpdate(ctx, u); err != nil {
			t.Fatalf("CreateUpdate: %v", err)
		}
	}
	got, err := s.GetUpdate(ctx, p.ID, scheduled.ID)
	if err != nil {
		t.Fatalf("GetUpdate: %v", err)
	}
	if got.Schedule == nil || *got.Schedule.Delay != 3 || *got.Schedule.Duration != 120 || got.Schedule.Cron != "0 2 * * 2#1" ||
		got.Schedule.Timezone != "Europe/Berlin" || !got.Schedule.LastUpdated.IsZero() {
		t.Errorf("schedule = %+v", got.Schedule)
	}
	if len(got.Agents) != 2 || got.Agents[0].AgentID != "agtB" || got.Agents[1].AgentID != "agtA" {
		t.Errorf("agents order = %+v", got.Agents)
	}
	if got.SortOrder != 2 || !got.Enabled || got.AllAgents || got.Status != okta.JobScheduled {
		t.Errorf("update = %+v", got)
	}
	if _, err := s.GetUpdate(ctx, "otherpool", scheduled.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetUpdate(other pool) error = %v, want ErrNotFound", err)
	}

	yes, no := true, false
	for _, tc := range []struct {
		filter *bool
		want   []string
	}{{nil, []string{scheduled.ID, adhoc.ID}}, {&yes, []string{scheduled.ID}}, {&no, []string{adhoc.ID}}} {
		list, err := s.ListUpdates(ctx, p.ID, tc.filter)
		if err != nil || len(list) != len(tc.want) {
			t.Fatalf("ListUpdates(%v) = %v, %v", tc.filter, list, err)
		}
		for i, id := range tc.want {
			if list[i].ID != id {
				t.Errorf("ListUpdates(%v)[%d] = %s, want %s", tc.filter, i, list[i].ID, id)
			}
		}
	}
	if list, _ := s.ListUpdates(ctx, p.ID, nil); len(list[0].Agents) != 2 {
		t.Errorf("ListUpdates did not load agents: %+v", list[0])
	}

	last := now.Add(time.Hour)
	u, err := s.ModifyUpdate(ctx, p.ID, scheduled.ID, func(u *store.Update) error {
		u.Status = okta.JobPaused
		u.ResumeStatus = okta.JobScheduled
		u.Schedule.LastUpdated = last
		u.Agents[0].Status = okta.InstanceFailed
		u.Agents[0].Message = "health check failed"
		u.Agents = u.Agents[:1]
		return nil
	})
	if err != nil || u.Status != okta.JobPaused {
		t.Fatalf("ModifyUpdate = %v, %v", u, err)
	}
	got, _ = s.GetUpdate(ctx, p.ID, scheduled.ID)
	if got.Status != okta.JobPaused || got.ResumeStatus != okta.JobScheduled || !got.Schedule.LastUpdated.Equal(last) ||
		len(got.Agents) != 1 || got.Agents[0].Status != okta.InstanceFailed || got.Agents[0].Message != "health check failed" {
		t.Errorf("after ModifyUpdate: %+v agents %+v", got, got.Agents)
	}
	u, err = s.ModifyUpdate(ctx, p.ID, scheduled.ID, func(u *store.Update) error { u.Schedule = nil; return nil })
	if err != nil || u.Schedule != nil {
		t.Fatalf("ModifyUpdate(clear schedule) = %v, %v", u, err)
	}
	if got, _ := s.GetUpdate(ctx, p.ID, scheduled.ID); got.Schedule != nil {
		t.Errorf("schedule not cleared: %+v", got.Schedule)
	}

	refuse := errors.New("refused")
	if err := s.DeleteUpdate(ctx, p.ID, adhoc.ID, func(*store.Update) error { return refuse }); !errors.Is(err, refuse) {
		t.Errorf("DeleteUpdate(refused) = %v", err)
	}
	if _, err := s.GetUpdate(ctx, p.ID, adhoc.ID); err != nil {
		t.Errorf("a refused delete deleted: %v", err)
	}
	if err := s.DeleteUpdate(ctx, p.ID, scheduled.ID, nil); err != nil {
		t.Fatalf("DeleteUpdate: %v", err)
	}
	if _, err := s.GetUpdate(ctx, p.ID, scheduled.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetUpdate after delete: %v", err)
	}
	if err := s.DeleteUpdate(ctx, p.ID, scheduled.ID, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteUpdate(missing) = %v", err)
	}
}

// testConcurrentModify checks that ModifyUpdate is atomic: concurrent
// increments of SortOrder all land.
func testConcurrentModify(t *testing.T, s store.Store) {
	ctx := context.Background()
	p := mustPool(t, s, okta.AgentTypeAD, "a")
	u := &store.Update{ID: store.NewID("upd"), PoolID: p.ID, AgentType: okta.AgentTypeAD, Status: okta.JobInProgress, CreatedAt: now, ModifiedAt: now}
	if err := s.CreateUpdate(ctx, u); err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.ModifyUpdate(ctx, p.ID, u.ID, func(u *store.Update) error { u.SortOrder++; return nil })
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("ModifyUpdate: %v", err)
		}
	}
	got, _ := s.GetUpdate(ctx, p.ID, u.ID)
	if got.SortOrder != n {
		t.Errorf("SortOrder = %d after %d concurrent increments", got.SortOrder, n)
	}
}

func testTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	tok := &store.Token{ID: store.NewID("tok"), Name: "ci", Hash: []byte("0123456789abcdef0123456789abcdef"),
		Scopes: []store.Scope{store.ScopeRead}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateToken(ctx, tok); err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	got, err := s.TokenByHash(ctx, tok.Hash)
	if err != nil {
		t.Fatalf("TokenByHash: %v", err)
	}
	if got.ID != tok.ID || got.Name != "ci" || len(got.Scopes) != 1 || !got.Has(store.ScopeRead) || got.Has(store.ScopeManage) || !got.ExpiresAt.Equal(tok.ExpiresAt) {
		t.Errorf("token = %+v", got)
	}
	if _, err := s.TokenByHash(ctx, []byte("other")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TokenByHash(unknown) = %v", err)
	}
	if err := s.CreateToken(ctx, &store.Token{ID: store.NewID("tok"), Hash: tok.Hash, CreatedAt: now}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateToken(duplicate hash) = %v", err)
	}
}

func testAudit(t *testing.T, s store.Store) {
	ctx := context.Background()
	if got, err := s.ListAudit(ctx, store.AuditQuery{Limit: 10}); err != nil || len(got) != 0 {
		t.Fatalf("ListAudit(empty) = %v, %v", got, err)
	}
	want := []*store.AuditEntry{
		{Time: now, ActorKind: store.ActorCLI, ActorID: "alice", Action: "pool.create", PoolID: "pol1", Detail: "name=AD"},
		{Time: now.Add(time.Minute), ActorKind: store.ActorToken, ActorID: "tok1", ActorName: "ci", Action: "update.create",
			PoolID: "pol1", UpdateID: "upd1", StatusAfter: "SCHEDULED"},
		{Time: now.Add(2 * time.Minute), ActorKind: store.ActorToken, ActorID: "tok1", ActorName: "ci", Action: "update.pause",
			PoolID: "pol1", UpdateID: "upd1", Target: "t", StatusBefore: "IN_PROGRESS", StatusAfter: "PAUSED"},
	}
	for _, e := range want {
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatalf("AppendAudit: %v", err)
		}
		if e.Seq <= 0 || e.ID == "" {
			t.Fatalf("AppendAudit left Seq %d, ID %q", e.Seq, e.ID)
		}
	}
	if !(want[0].Seq < want[1].Seq && want[1].Seq < want[2].Seq) {
		t.Errorf("seqs not increasing: %d %d %d", want[0].Seq, want[1].Seq, want[2].Seq)
	}
	all, err := s.ListAudit(ctx, store.AuditQuery{Limit: 10})
	if err != nil || len(all) != 3 {
		t.Fatalf("ListAudit = %v, %v", all, err)
	}
	for i, got := range all {
		w := want[2-i] // newest first
		if *got != *w || !got.Time.Equal(w.Time) {
			t.Errorf("entry %d = %+v, want %+v", i, got, w)
		}
	}
	page, err := s.ListAudit(ctx, store.AuditQuery{Limit: 1, BeforeSeq: all[0].Seq})
	if err != nil || len(page) != 1 || page[0].ID != want[1].ID {
		t.Errorf("ListAudit(before newest, limit 1) = %v, %v", page, err)
	}
	since, err := s.ListAudit(ctx, store.AuditQuery{Limit: 10, Since: now.Add(time.Minute)})
	if err != nil || len(since) != 2 || since[1].ID != want[1].ID {
		t.Errorf("ListAudit(since) = %v, %v", since, err)
	}
}
