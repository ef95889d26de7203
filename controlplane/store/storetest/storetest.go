// Package storetest is the behaviour every store backend must pass. A
// backend's test calls Run with a function that opens a fresh, empty store.
package storetest

import (
	"context"
	"errors"
	"fmt"
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
	if got.Name != "ad-0" || got.Type != okta.AgentTypeAD || got.Settings.ReleaseChannel != okta.ChannelGA || !got.CreatedAt.Equal(now) {
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
		return nil
	})
	if err != nil || p.Name != "renamed" {
		t.Fatalf("ModifyPool = %v, %v", p, err)
	}
	got, _ = s.GetPool(ctx, ad[1].ID)
	want := store.Settings{ReleaseChannel: okta.ChannelEA, ContinueOnError: true, LatestVersion: "1.2.3", MinimalSupportedVersion: "1.0.0"}
	if got.Name != "renamed" || got.Settings != want {
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
