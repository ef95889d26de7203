package conformance

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/okta/okta-sdk-golang/v5/okta"
	wire "github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/controlplane/store"
)

// checkAgent compares an agent as the SDK decoded it with the stored one.
func checkAgent(t *testing.T, got okta.Agent, want *store.Agent) {
	t.Helper()
	wantStatus := string(want.OperationalStatus)
	if want.LastConnection.IsZero() {
		wantStatus = "INACTIVE" // never heard from
	}
	if got.GetId() != want.ID || got.GetName() != want.Name || got.GetPoolId() != want.PoolID ||
		got.GetType() != string(want.Type) || got.GetVersion() != want.Version ||
		got.GetOperationalStatus() != wantStatus {
		t.Errorf("agent = %s, want id %s name %s pool %s type %s version %s status %s", jsonOf(t, got),
			want.ID, want.Name, want.PoolID, want.Type, want.Version, wantStatus)
	}
	if got.IsHidden == nil || *got.IsHidden != want.IsHidden {
		t.Errorf("agent %s isHidden = %v, want %v", want.ID, got.IsHidden, want.IsHidden)
	}
	switch {
	case want.LastConnection.IsZero() && got.LastConnection != nil:
		t.Errorf("agent %s lastConnection = %v, want absent (never connected)", want.ID, got.LastConnection)
	case !want.LastConnection.IsZero() && (got.LastConnection == nil || !got.LastConnection.Equal(want.LastConnection)):
		t.Errorf("agent %s lastConnection = %v, want %v", want.ID, got.LastConnection, want.LastConnection)
	}
	noExtra(t, "agent", got.AdditionalProperties)
	if got.Links != nil {
		noExtra(t, "agent._links", got.Links.AdditionalProperties)
	}
}

// checkUpdate checks the fields every update reply carries.
func checkUpdate(t *testing.T, h *harness, got *okta.AgentPoolUpdate, poolID string) {
	t.Helper()
	if got == nil {
		t.Fatal("no update decoded")
	}
	if got.GetId() == "" {
		t.Fatal("update without id")
	}
	if got.Links == nil || got.Links.Self == nil || got.Links.Self.Href != h.selfHref(poolID, got.GetId()) {
		t.Errorf("_links = %s, want self.href %s", jsonOf(t, got.Links), h.selfHref(poolID, got.GetId()))
	}
	if got.Enabled == nil || got.NotifyAdmin == nil || got.SortOrder == nil || got.Status == nil {
		t.Errorf("enabled, notifyAdmin, sortOrder and status must always be sent: %s", jsonOf(t, got))
	}
	noExtra(t, "update", got.AdditionalProperties)
	if got.Links != nil {
		noExtra(t, "update._links", got.Links.AdditionalProperties)
		if got.Links.Self != nil {
			noExtra(t, "update._links.self", got.Links.Self.AdditionalProperties)
		}
	}
	if got.Schedule != nil {
		noExtra(t, "update.schedule", got.Schedule.AdditionalProperties)
	}
}

func agentIDs(as []okta.Agent) []string {
	ids := make([]string, len(as))
	for i, a := range as {
		ids[i] = a.GetId()
	}
	return ids
}

func poolIDs(ps []okta.AgentPool) []string {
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.GetId()
	}
	return ids
}

func TestListAgentPools(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	type wantPool struct {
		pool   *store.Pool
		agents []*store.Agent
		status string
	}
	var want []wantPool
	add := func(typ wire.AgentType, name, status string, agents ...agentSpec) {
		p, as := h.pool(typ, name, agents...)
		want = append(want, wantPool{p, as, status})
	}
	// Created interleaved; listed by type, then creation order.
	add(wire.AgentTypeAD, "ad-1", "OPERATIONAL", up("dc1"), agentSpec{name: "dc2", status: wire.OperationalStatusOperational, lastSeen: lastSeen.Add(time.Minute), hidden: true})
	add(wire.AgentTypeLDAP, "ldap-1", "DISRUPTED", agentSpec{name: "ldap", status: wire.OperationalStatusDisrupted}) // never connected
	add(wire.AgentTypeAD, "ad-2", "DEGRADED", up("dc3"), agentSpec{name: "dc4", status: wire.OperationalStatusDisrupted, lastSeen: lastSeen})
	add(wire.AgentTypeMFA, "mfa-1", "OPERATIONAL", up("radius"))
	add(wire.AgentTypeLDAP, "ldap-2", "INACTIVE")
	add(wire.AgentTypeAD, "ad-3", "INACTIVE")
	byID := map[string]wantPool{}
	for _, w := range want {
		byID[w.pool.ID] = w
	}
	ids := func(names ...string) []string {
		var out []string
		for _, n := range names {
			for _, w := range want {
				if w.pool.Name == n {
					out = append(out, w.pool.ID)
				}
			}
		}
		return out
	}
	checkPools := func(t *testing.T, got []okta.AgentPool, wantIDs []string) {
		t.Helper()
		if !slices.Equal(poolIDs(got), wantIDs) {
			t.Fatalf("pools = %v, want %v", poolIDs(got), wantIDs)
		}
		for _, p := range got {
			w := byID[p.GetId()]
			if p.GetName() != w.pool.Name || p.GetType() != string(w.pool.Type) || p.GetOperationalStatus() != w.status {
				t.Errorf("pool = %s, want name %s type %s operationalStatus %s", jsonOf(t, p), w.pool.Name, w.pool.Type, w.status)
			}
			if len(p.Agents) != len(w.agents) {
				t.Fatalf("pool %s has %d agents, want %d", w.pool.Name, len(p.Agents), len(w.agents))
			}
			for i, a := range p.Agents {
				checkAgent(t, a, w.agents[i])
			}
			noExtra(t, "pool", p.AdditionalProperties)
		}
	}

	for _, tok := range []struct{ name, token string }{{"manage", h.manage}, {"read", h.read}} {
		t.Run("default/"+tok.name, func(t *testing.T) {
			c := h.client(tok.token)
			got, resp, err := c.api.ListAgentPools(ctx).Execute()
			if err != nil {
				t.Fatal(err)
			}
			wantStatus(t, resp, http.StatusOK)
			checkPools(t, got, ids("ad-1", "ad-2", "ad-3", "ldap-1", "ldap-2", "mfa-1"))
			if resp.HasNextPage() {
				t.Errorf("a list that fits the default limit has a next page: %s", resp.NextPage())
			}
		})
	}

	t.Run("poolType and limitPerPoolType, next page via the SDK", func(t *testing.T) {
		c := h.client(h.read)
		got, resp, err := c.api.ListAgentPools(ctx).PoolType("AD").LimitPerPoolType(2).Execute()
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, resp, http.StatusOK)
		checkPools(t, got, ids("ad-1", "ad-2"))
		if !resp.HasNextPage() {
			t.Fatalf("no rel=\"next\" Link; headers %v", resp.Header["Link"])
		}
		for _, l := range resp.Header["Link"] {
			if target := strings.TrimPrefix(strings.SplitN(l, ">", 2)[0], "<"); !strings.HasPrefix(target, h.srv.URL+"/api/v1/agentPools") {
				t.Errorf("Link %q is not an absolute URL of this server", l)
			}
		}
		var page2 []okta.AgentPool
		resp2, err := resp.Next(&page2)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, resp2, http.StatusOK)
		checkPools(t, page2, ids("ad-3"))
		if resp2.HasNextPage() {
			t.Errorf("last page has a next page: %s", resp2.NextPage())
		}

		// The same cursor, passed by hand through the request's After.
		next, err := url.Parse(resp.NextPage())
		if err != nil {
			t.Fatal(err)
		}
		after := next.Query().Get("after")
		if after == "" {
			t.Fatalf("next link %q has no after cursor", resp.NextPage())
		}
		page2b, resp3, err := c.api.ListAgentPools(ctx).PoolType("AD").LimitPerPoolType(2).After(after).Execute()
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, resp3, http.StatusOK)
		checkPools(t, page2b, ids("ad-3"))
	})

	t.Run("all types one per page, following Link", func(t *testing.T) {
		c := h.client(h.read)
		page, resp, err := c.api.ListAgentPools(ctx).LimitPerPoolType(1).Execute()
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, resp, http.StatusOK)
		pages := [][]okta.AgentPool{page}
		for resp.HasNextPage() {
			if len(pages) > len(want) {
				t.Fatalf("more than %d pages: the cursor does not advance (next %s)", len(want), resp.NextPage())
			}
			var next []okta.AgentPool
			if resp, err = resp.Next(&next); err != nil {
				t.Fatal(err)
			}
			wantStatus(t, resp, http.StatusOK)
			pages = append(pages, next)
		}
		wantPages := [][]string{ids("ad-1", "ldap-1", "mfa-1"), ids("ad-2", "ldap-2"), ids("ad-3")}
		if len(pages) != len(wantPages) {
			t.Fatalf("%d pages, want %d", len(pages), len(wantPages))
		}
		for i := range pages {
			checkPools(t, pages[i], wantPages[i])
		}
	})
}

// adHoc is a flow 2 (ad-hoc) update for one agent.
func adHoc(agentID string) okta.AgentPoolUpdate {
	return okta.AgentPoolUpdate{
		Name:          okta.PtrString("ad hoc 3.20"),
		AgentType:     okta.PtrString("AD"),
		TargetVersion: okta.PtrString("3.20.0"),
		NotifyAdmin:   okta.PtrBool(true),
		Reason:        okta.PtrString("security fix"),
		SortOrder:     okta.PtrInt32(2),
		Agents:        []okta.Agent{{Id: okta.PtrString(agentID)}},
	}
}

// scheduled is a flow 3 update for every agent of the pool.
func scheduled() okta.AgentPoolUpdate {
	return okta.AgentPoolUpdate{
		Name:          okta.PtrString("monthly"),
		TargetVersion: okta.PtrString("3.21.0"),
		Schedule: &okta.AutoUpdateSchedule{
			Cron:     okta.PtrString("0 2 * * 2#1"),
			Timezone: okta.PtrString("Europe/Berlin"),
			Delay:    okta.PtrInt32(3),
			Duration: okta.PtrInt32(90),
		},
	}
}

func TestAgentPoolUpdates(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	p, agents := h.pool(wire.AgentTypeAD, "ad", up("dc1"), up("dc2"))
	c := h.client(h.manage)

	// Flow 2: no schedule, starts at once.
	flow2, resp, err := c.api.CreateAgentPoolsUpdate(ctx, p.ID).AgentPoolUpdate(adHoc(agents[0].ID)).Execute()
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, resp, http.StatusCreated)
	checkUpdate(t, h, flow2, p.ID)
	if flow2.GetStatus() != "InProgress" || !flow2.GetEnabled() || flow2.GetName() != "ad hoc 3.20" ||
		flow2.GetTargetVersion() != "3.20.0" || flow2.GetAgentType() != "AD" || !flow2.GetNotifyAdmin() ||
		flow2.GetReason() != "security fix" || flow2.GetSortOrder() != 2 || flow2.Schedule != nil {
		t.Errorf("flow 2 update = %s", jsonOf(t, flow2))
	}
	if len(flow2.Agents) != 1 {
		t.Fatalf("flow 2 agents = %v, want [%s]", agentIDs(flow2.Agents), agents[0].ID)
	}
	checkAgent(t, flow2.Agents[0], agents[0])
	if got := flow2.Agents[0].GetUpdateStatus(); got != "Scheduled" {
		t.Errorf("agent updateStatus = %q, want Scheduled", got)
	}

	// Flow 3: a schedule, waits for its window.
	flow3, resp, err := c.api.CreateAgentPoolsUpdate(ctx, p.ID).AgentPoolUpdate(scheduled()).Execute()
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, resp, http.StatusCreated)
	checkUpdate(t, h, flow3, p.ID)
	if flow3.GetStatus() != "Scheduled" || flow3.GetAgentType() != "AD" || !flow3.GetEnabled() {
		t.Errorf("flow 3 update = %s", jsonOf(t, flow3))
	}
	if sc := flow3.Schedule; sc == nil || sc.GetCron() != "0 2 * * 2#1" || sc.GetTimezone() != "Europe/Berlin" ||
		sc.GetDelay() != 3 || sc.GetDuration() != 90 || sc.LastUpdated != nil {
		t.Errorf("flow 3 schedule = %s", jsonOf(t, flow3.Schedule))
	}
	if !slices.Equal(agentIDs(flow3.Agents), []string{agents[0].ID, agents[1].ID}) {
		t.Errorf("flow 3 agents = %v, want every agent of the pool", agentIDs(flow3.Agents))
	}
	for i, a := range flow3.Agents {
		checkAgent(t, a, agents[i])
	}

	t.Run("list", func(t *testing.T) {
		for _, tc := range []struct {
			name      string
			scheduled *bool
			want      []string
		}{
			{"all", nil, []string{flow2.GetId(), flow3.GetId()}},
			{"scheduled=true", okta.PtrBool(true), []string{flow3.GetId()}},
			{"scheduled=false", okta.PtrBool(false), []string{flow2.GetId()}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				req := h.client(h.read).api.ListAgentPoolsUpdates(ctx, p.ID)
				if tc.scheduled != nil {
					req = req.Scheduled(*tc.scheduled)
				}
				got, resp, err := req.Execute()
				if err != nil {
					t.Fatal(err)
				}
				wantStatus(t, resp, http.StatusOK)
				var ids []string
				for i := range got {
					checkUpdate(t, h, &got[i], p.ID)
					ids = append(ids, got[i].GetId())
				}
				if !slices.Equal(ids, tc.want) {
					t.Errorf("updates = %v, want %v", ids, tc.want)
				}
			})
		}
	})

	t.Run("get", func(t *testing.T) {
		for _, u := range []*okta.AgentPoolUpdate{flow2, flow3} {
			got, resp, err := h.client(h.read).api.GetAgentPoolsUpdateInstance(ctx, p.ID, u.GetId()).Execute()
			if err != nil {
				t.Fatal(err)
			}
			wantStatus(t, resp, http.StatusOK)
			checkUpdate(t, h, got, p.ID)
			if jsonOf(t, got) != jsonOf(t, u) {
				t.Errorf("GET = %s\nwant the created update %s", jsonOf(t, got), jsonOf(t, u))
			}
		}
	})

	// Sending back the whole object the server returned (with id, _links,
	// status, agents' read-only fields) changes only what was edited.
	t.Run("update whole object", func(t *testing.T) {
		for _, u := range []*okta.AgentPoolUpdate{flow2, flow3} {
			cur, _, err := c.api.GetAgentPoolsUpdateInstance(ctx, p.ID, u.GetId()).Execute()
			if err != nil {
				t.Fatal(err)
			}
			edited := *cur
			edited.Name = okta.PtrString(cur.GetName() + " (renamed)")
			edited.TargetVersion = okta.PtrString("3.22.1")
			got, resp, err := c.api.UpdateAgentPoolsUpdate(ctx, p.ID, u.GetId()).AgentPoolUpdate(edited).Execute()
			if err != nil {
				t.Fatalf("whole object sent back: %v", err)
			}
			wantStatus(t, resp, http.StatusCreated)
			checkUpdate(t, h, got, p.ID)
			if jsonOf(t, got) != jsonOf(t, edited) {
				t.Errorf("after sending back the whole object:\n got %s\nwant %s", jsonOf(t, got), jsonOf(t, edited))
			}
		}
	})

	t.Run("update partial", func(t *testing.T) {
		cur, _, err := c.api.GetAgentPoolsUpdateInstance(ctx, p.ID, flow3.GetId()).Execute()
		if err != nil {
			t.Fatal(err)
		}
		got, resp, err := c.api.UpdateAgentPoolsUpdate(ctx, p.ID, flow3.GetId()).
			AgentPoolUpdate(okta.AgentPoolUpdate{Reason: okta.PtrString("moved to the weekend")}).Execute()
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, resp, http.StatusCreated)
		want := *cur
		want.Reason = okta.PtrString("moved to the weekend")
		if jsonOf(t, got) != jsonOf(t, want) {
			t.Errorf("partial update changed other fields:\n got %s\nwant %s", jsonOf(t, got), jsonOf(t, want))
		}

		// A schedule added to an ad-hoc update that has not started
		// moves it to flow 3, with the schedule defaults filled in.
		got, resp, err = c.api.UpdateAgentPoolsUpdate(ctx, p.ID, flow2.GetId()).
			AgentPoolUpdate(okta.AgentPoolUpdate{Schedule: &okta.AutoUpdateSchedule{Cron: okta.PtrString("0 3 15 * *")}}).Execute()
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, resp, http.StatusCreated)
		if sc := got.Schedule; got.GetStatus() != "Scheduled" || sc == nil || sc.GetCron() != "0 3 15 * *" ||
			sc.GetTimezone() != controlplane.DefaultTimezone || sc.GetDuration() != controlplane.DefaultWindowMinutes || sc.GetDelay() != 0 {
			t.Errorf("update with an added schedule = %s", jsonOf(t, got))
		}
	})

	t.Run("delete", func(t *testing.T) {
		resp, err := c.api.DeleteAgentPoolsUpdate(ctx, p.ID, flow3.GetId()).Execute()
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, resp, http.StatusNoContent)
		_, resp, err = c.api.GetAgentPoolsUpdateInstance(ctx, p.ID, flow3.GetId()).Execute()
		checkError(t, sdkModel(t, err), wire.CodeNotFound, false)
		wantStatus(t, resp, http.StatusNotFound)
		resp, err = c.api.DeleteAgentPoolsUpdate(ctx, p.ID, flow3.GetId()).Execute()
		checkError(t, sdkModel(t, err), wire.CodeNotFound, false)
		wantStatus(t, resp, http.StatusNotFound)
	})
}

// action is one lifecycle operation of the SDK.
type action func(ctx context.Context, c okta.AgentPoolsAPI, poolID, updateID string) (*okta.AgentPoolUpdate, *okta.APIResponse, error)

var actions = map[string]action{
	"activate": func(ctx context.Context, c okta.AgentPoolsAPI, p, u string) (*okta.AgentPoolUpdate, *okta.APIResponse, error) {
		return c.ActivateAgentPoolsUpdate(ctx, p, u).Execute()
	},
	"deactivate": func(ctx context.Context, c okta.AgentPoolsAPI, p, u string) (*okta.AgentPoolUpdate, *okta.APIResponse, error) {
		return c.DeactivateAgentPoolsUpdate(ctx, p, u).Execute()
	},
	"pause": func(ctx context.Context, c okta.AgentPoolsAPI, p, u string) (*okta.AgentPoolUpdate, *okta.APIResponse, error) {
		return c.PauseAgentPoolsUpdate(ctx, p, u).Execute()
	},
	"resume": func(ctx context.Context, c okta.AgentPoolsAPI, p, u string) (*okta.AgentPoolUpdate, *okta.APIResponse, error) {
		return c.ResumeAgentPoolsUpdate(ctx, p, u).Execute()
	},
	"retry": func(ctx context.Context, c okta.AgentPoolsAPI, p, u string) (*okta.AgentPoolUpdate, *okta.APIResponse, error) {
		return c.RetryAgentPoolsUpdate(ctx, p, u).Execute()
	},
	"stop": func(ctx context.Context, c okta.AgentPoolsAPI, p, u string) (*okta.AgentPoolUpdate, *okta.APIResponse, error) {
		return c.StopAgentPoolsUpdate(ctx, p, u).Execute()
	},
	"delete": func(ctx context.Context, c okta.AgentPoolsAPI, p, u string) (*okta.AgentPoolUpdate, *okta.APIResponse, error) {
		resp, err := c.DeleteAgentPoolsUpdate(ctx, p, u).Execute()
		return nil, resp, err
	},
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	p, agents := h.pool(wire.AgentTypeAD, "ad", up("dc1"), up("dc2"))
	c := h.client(h.manage)

	tests := []struct {
		name      string
		flow3     bool     // create with a schedule
		before    []string // actions that must succeed first
		action    string
		refused   bool   // the action is illegal: 400
		status    string // the status after action
		enabled   bool
		agentStat string // every agent's updateStatus after action, if set
	}{
		{name: "pause in progress", action: "pause", status: "Paused", enabled: true},
		{name: "pause scheduled", flow3: true, action: "pause", status: "Paused", enabled: true},
		{name: "resume to in progress", before: []string{"pause"}, action: "resume", status: "InProgress", enabled: true},
		{name: "resume to scheduled", flow3: true, before: []string{"pause"}, action: "resume", status: "Scheduled", enabled: true},
		{name: "deactivate", action: "deactivate", status: "InProgress", enabled: false},
		{name: "activate after deactivate", before: []string{"deactivate"}, action: "activate", status: "InProgress", enabled: true},
		{name: "stop", action: "stop", status: "Cancelled", enabled: true, agentStat: "Cancelled"},
		{name: "retry after stop", before: []string{"stop"}, action: "retry", status: "InProgress", enabled: true, agentStat: "Scheduled"},
		{name: "activate a stopped scheduled update", flow3: true, before: []string{"stop"}, action: "activate", status: "Scheduled", enabled: true, agentStat: "Scheduled"},
		{name: "deactivate a stopped scheduled update", flow3: true, before: []string{"stop"}, action: "deactivate", status: "Cancelled", enabled: false},
		{name: "delete paused", before: []string{"pause"}, action: "delete"},
		{name: "delete scheduled", flow3: true, action: "delete"},

		// Illegal: 400 E0000001 naming the current status.
		{name: "resume not paused", action: "resume", refused: true},
		{name: "retry in progress", action: "retry", refused: true},
		{name: "pause stopped", before: []string{"stop"}, action: "pause", refused: true},
		{name: "stop stopped", before: []string{"stop"}, action: "stop", refused: true},
		{name: "activate stopped ad-hoc", before: []string{"stop"}, action: "activate", refused: true},
		{name: "delete in progress", action: "delete", refused: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := adHoc(agents[0].ID)
			if tc.flow3 {
				body = scheduled()
			}
			u, _, err := c.api.CreateAgentPoolsUpdate(ctx, p.ID).AgentPoolUpdate(body).Execute()
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range tc.before {
				if _, _, err := actions[b](ctx, c.api, p.ID, u.GetId()); err != nil {
					t.Fatalf("%s: %v", b, err)
				}
			}
			before, _, err := c.api.GetAgentPoolsUpdateInstance(ctx, p.ID, u.GetId()).Execute()
			if err != nil {
				t.Fatal(err)
			}
			got, resp, err := actions[tc.action](ctx, c.api, p.ID, u.GetId())

			switch {
			case tc.refused:
				// The lifecycle operations declare no 400, so the SDK
				// keeps the body but leaves the model nil.
				wantStatus(t, resp, http.StatusBadRequest)
				if ge := sdkError(t, err); ge.Error() != "400 Bad Request" {
					t.Errorf("error = %q", ge.Error())
				}
				e := bodyModel(t, err)
				checkError(t, e, wire.CodeValidation, true)
				if !strings.Contains(e.ErrorCauses[0].GetErrorSummary(), before.GetStatus()) {
					t.Errorf("cause %q does not name the current status %s", e.ErrorCauses[0].GetErrorSummary(), before.GetStatus())
				}
				after, _, err := c.api.GetAgentPoolsUpdateInstance(ctx, p.ID, u.GetId()).Execute()
				if err != nil {
					t.Fatal(err)
				}
				if jsonOf(t, after) != jsonOf(t, before) {
					t.Errorf("a refused %s changed the update:\n%s\n%s", tc.action, jsonOf(t, before), jsonOf(t, after))
				}

			case tc.action == "delete":
				if err != nil {
					t.Fatal(err)
				}
				wantStatus(t, resp, http.StatusNoContent)
				_, _, err = c.api.GetAgentPoolsUpdateInstance(ctx, p.ID, u.GetId()).Execute()
				checkError(t, sdkModel(t, err), wire.CodeNotFound, false)

			default:
				if err != nil {
					t.Fatal(err)
				}
				wantStatus(t, resp, http.StatusCreated)
				checkUpdate(t, h, got, p.ID)
				if got.GetId() != u.GetId() || got.GetStatus() != tc.status || got.GetEnabled() != tc.enabled {
					t.Errorf("after %s: id %s status %s enabled %v, want %s %s %v",
						tc.action, got.GetId(), got.GetStatus(), got.GetEnabled(), u.GetId(), tc.status, tc.enabled)
				}
				if tc.agentStat != "" {
					for _, a := range got.Agents {
						if a.GetUpdateStatus() != tc.agentStat {
							t.Errorf("agent %s updateStatus = %s, want %s", a.GetId(), a.GetUpdateStatus(), tc.agentStat)
						}
					}
				}
				again, _, err := c.api.GetAgentPoolsUpdateInstance(ctx, p.ID, u.GetId()).Execute()
				if err != nil {
					t.Fatal(err)
				}
				if jsonOf(t, again) != jsonOf(t, got) {
					t.Errorf("GET after %s differs from its reply:\n%s\n%s", tc.action, jsonOf(t, got), jsonOf(t, again))
				}
			}
		})
	}
}

func TestUpdateSettings(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	p, _ := h.pool(wire.AgentTypeLDAP, "ldap", up("ldap1"))
	c := h.client(h.manage)

	get := func(t *testing.T) *okta.AgentPoolUpdateSetting {
		t.Helper()
		s, resp, err := h.client(h.read).api.GetAgentPoolsUpdateSettings(ctx, p.ID).Execute()
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, resp, http.StatusOK)
		noExtra(t, "settings", s.AdditionalProperties)
		return s
	}
	cur := get(t)
	if cur.GetPoolId() != p.ID || cur.GetPoolName() != "ldap" || cur.GetAgentType() != "LDAP" ||
		cur.GetReleaseChannel() != "GA" || cur.ContinueOnError == nil || cur.GetContinueOnError() {
		t.Fatalf("settings = %s", jsonOf(t, cur))
	}

	steps := []struct {
		name string
		body func(cur okta.AgentPoolUpdateSetting) okta.AgentPoolUpdateSetting
		edit func(want *okta.AgentPoolUpdateSetting) // what the reply must differ in
	}{
		{
			name: "partial continueOnError",
			body: func(okta.AgentPoolUpdateSetting) okta.AgentPoolUpdateSetting {
				return okta.AgentPoolUpdateSetting{ContinueOnError: okta.PtrBool(true)}
			},
			edit: func(w *okta.AgentPoolUpdateSetting) { w.ContinueOnError = okta.PtrBool(true) },
		},
		{
			name: "partial channel and versions",
			body: func(okta.AgentPoolUpdateSetting) okta.AgentPoolUpdateSetting {
				return okta.AgentPoolUpdateSetting{ReleaseChannel: okta.PtrString("BETA"),
					LatestVersion: okta.PtrString("3.22.0"), MinimalSupportedVersion: okta.PtrString("3.18.0")}
			},
			edit: func(w *okta.AgentPoolUpdateSetting) {
				w.ReleaseChannel = okta.PtrString("BETA")
				w.LatestVersion = okta.PtrString("3.22.0")
				w.MinimalSupportedVersion = okta.PtrString("3.18.0")
			},
		},
		{
			name: "whole object sent back",
			body: func(cur okta.AgentPoolUpdateSetting) okta.AgentPoolUpdateSetting {
				cur.PoolName = okta.PtrString("ldap-eu")
				cur.ReleaseChannel = okta.PtrString("EA")
				return cur
			},
			edit: func(w *okta.AgentPoolUpdateSetting) {
				w.PoolName = okta.PtrString("ldap-eu")
				w.ReleaseChannel = okta.PtrString("EA")
			},
		},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			before := get(t)
			got, resp, err := c.api.UpdateAgentPoolsUpdateSettings(ctx, p.ID).AgentPoolUpdateSetting(st.body(*before)).Execute()
			if err != nil {
				t.Fatal(err)
			}
			wantStatus(t, resp, http.StatusCreated)
			want := *before
			st.edit(&want)
			if jsonOf(t, got) != jsonOf(t, want) {
				t.Errorf("reply:\n got %s\nwant %s", jsonOf(t, got), jsonOf(t, want))
			}
			if after := get(t); jsonOf(t, after) != jsonOf(t, want) {
				t.Errorf("GET after POST:\n got %s\nwant %s", jsonOf(t, after), jsonOf(t, want))
			}
		})
	}

	t.Run("invalid channel", func(t *testing.T) {
		_, resp, err := c.api.UpdateAgentPoolsUpdateSettings(ctx, p.ID).
			AgentPoolUpdateSetting(okta.AgentPoolUpdateSetting{ReleaseChannel: okta.PtrString("NIGHTLY")}).Execute()
		wantStatus(t, resp, http.StatusBadRequest)
		checkError(t, sdkModel(t, err), wire.CodeValidation, true)
	})
}

func TestErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	p, _ := h.pool(wire.AgentTypeAD, "ad", up("dc1"))
	_, otherAgents := h.pool(wire.AgentTypeLDAP, "ldap", up("ldap1"))
	manage := h.client(h.manage)
	u, _, err := manage.api.CreateAgentPoolsUpdate(ctx, p.ID).AgentPoolUpdate(scheduled()).Execute()
	if err != nil {
		t.Fatal(err)
	}
	const nope = "polDoesNotExist0000"
	const noUpd = "updDoesNotExist0000"

	// call is one SDK operation reduced to its HTTP reply and error.
	type call func(c okta.AgentPoolsAPI) (*okta.APIResponse, error)
	drop := func(_ any, r *okta.APIResponse, err error) (*okta.APIResponse, error) { return r, err }
	manageOps := func(pool, upd string) map[string]call {
		ops := map[string]call{
			"CreateAgentPoolsUpdate": func(c okta.AgentPoolsAPI) (*okta.APIResponse, error) {
				return drop(c.CreateAgentPoolsUpdate(ctx, pool).AgentPoolUpdate(scheduled()).Execute())
			},
			"UpdateAgentPoolsUpdate": func(c okta.AgentPoolsAPI) (*okta.APIResponse, error) {
				return drop(c.UpdateAgentPoolsUpdate(ctx, pool, upd).AgentPoolUpdate(okta.AgentPoolUpdate{Name: okta.PtrString("x")}).Execute())
			},
			"UpdateAgentPoolsUpdateSettings": func(c okta.AgentPoolsAPI) (*okta.APIResponse, error) {
				return drop(c.UpdateAgentPoolsUpdateSettings(ctx, pool).AgentPoolUpdateSetting(okta.AgentPoolUpdateSetting{ContinueOnError: okta.PtrBool(true)}).Execute())
			},
		}
		for name, a := range actions {
			ops[name] = func(c okta.AgentPoolsAPI) (*okta.APIResponse, error) { return drop(a(ctx, c, pool, upd)) }
		}
		return ops
	}
	readOps := func(pool, upd string) map[string]call {
		return map[string]call{
			"ListAgentPoolsUpdates": func(c okta.AgentPoolsAPI) (*okta.APIResponse, error) {
				return drop(c.ListAgentPoolsUpdates(ctx, pool).Execute())
			},
			"GetAgentPoolsUpdateInstance": func(c okta.AgentPoolsAPI) (*okta.APIResponse, error) {
				return drop(c.GetAgentPoolsUpdateInstance(ctx, pool, upd).Execute())
			},
			"GetAgentPoolsUpdateSettings": func(c okta.AgentPoolsAPI) (*okta.APIResponse, error) {
				return drop(c.GetAgentPoolsUpdateSettings(ctx, pool).Execute())
			},
		}
	}

	t.Run("404 unknown pool or update", func(t *testing.T) {
		cases := map[string]call{}
		for name, op := range readOps(nope, u.GetId()) {
			cases[name+"/unknown pool"] = op
		}
		for name, op := range manageOps(nope, u.GetId()) {
			cases[name+"/unknown pool"] = op
		}
		cases["GetAgentPoolsUpdateInstance/unknown update"] = readOps(p.ID, noUpd)["GetAgentPoolsUpdateInstance"]
		for name, op := range manageOps(p.ID, noUpd) {
			if name != "CreateAgentPoolsUpdate" && name != "UpdateAgentPoolsUpdateSettings" {
				cases[name+"/unknown update"] = op
			}
		}
		for name, op := range cases {
			t.Run(name, func(t *testing.T) {
				resp, err := op(manage.api)
				wantStatus(t, resp, http.StatusNotFound)
				checkError(t, sdkModel(t, err), wire.CodeNotFound, false)
			})
		}
	})

	t.Run("403 read-only token on manage operations", func(t *testing.T) {
		read := h.client(h.read)
		for name, op := range manageOps(p.ID, u.GetId()) {
			t.Run(name, func(t *testing.T) {
				resp, err := op(read.api)
				wantStatus(t, resp, http.StatusForbidden)
				checkError(t, sdkModel(t, err), wire.CodeForbidden, true)
			})
		}
		after, _, err := manage.api.GetAgentPoolsUpdateInstance(ctx, p.ID, u.GetId()).Execute()
		if err != nil {
			t.Fatal(err)
		}
		if after.GetStatus() != "Scheduled" || after.GetName() != u.GetName() {
			t.Errorf("a refused operation changed the update: %s", jsonOf(t, after))
		}
		for name, op := range readOps(p.ID, u.GetId()) {
			t.Run(name+" is allowed", func(t *testing.T) {
				resp, err := op(read.api)
				if err != nil {
					t.Fatal(err)
				}
				wantStatus(t, resp, http.StatusOK)
			})
		}
	})

	t.Run("400 invalid bodies", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			body okta.AgentPoolUpdate
		}{
			{"bad cron", okta.AgentPoolUpdate{Schedule: &okta.AutoUpdateSchedule{Cron: okta.PtrString("every tuesday")}}},
			{"unknown time zone", okta.AgentPoolUpdate{Schedule: &okta.AutoUpdateSchedule{Cron: okta.PtrString("0 2 15 * *"), Timezone: okta.PtrString("Mars/Olympus")}}},
			{"agent type of another pool", okta.AgentPoolUpdate{AgentType: okta.PtrString("LDAP")}},
			{"agent of another pool", okta.AgentPoolUpdate{Agents: []okta.Agent{{Id: okta.PtrString(otherAgents[0].ID)}}}},
		} {
			t.Run("create/"+tc.name, func(t *testing.T) {
				_, resp, err := manage.api.CreateAgentPoolsUpdate(ctx, p.ID).AgentPoolUpdate(tc.body).Execute()
				wantStatus(t, resp, http.StatusBadRequest)
				checkError(t, sdkModel(t, err), wire.CodeValidation, true)
			})
			t.Run("update/"+tc.name, func(t *testing.T) {
				_, resp, err := manage.api.UpdateAgentPoolsUpdate(ctx, p.ID, u.GetId()).AgentPoolUpdate(tc.body).Execute()
				wantStatus(t, resp, http.StatusBadRequest)
				checkError(t, sdkModel(t, err), wire.CodeValidation, true)
			})
		}
	})

	t.Run("401 bad token", func(t *testing.T) {
		for _, tc := range []struct {
			name, token string
			opts        []okta.ConfigSetter
		}{
			{"unknown SSWS token", "00" + strings.Repeat("x", 40), nil},
			{"unknown Bearer token", "00" + strings.Repeat("y", 40), []okta.ConfigSetter{okta.WithAuthorizationMode("Bearer")}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := h.client(tc.token, tc.opts...)
				for name, op := range map[string]call{
					"ListAgentPools": func(c okta.AgentPoolsAPI) (*okta.APIResponse, error) {
						return drop(c.ListAgentPools(ctx).Execute())
					},
					"GetAgentPoolsUpdateSettings": readOps(p.ID, "")["GetAgentPoolsUpdateSettings"],
					"StopAgentPoolsUpdate":        manageOps(p.ID, u.GetId())["stop"],
				} {
					resp, err := op(c.api)
					wantStatus(t, resp, http.StatusUnauthorized)
					if ge := sdkError(t, err); ge.Error() != "401 Unauthorized" {
						t.Errorf("%s: error = %q", name, ge.Error())
					}
					// No operation declares 401: the body is kept, the model is nil.
					checkError(t, bodyModel(t, err), wire.CodeInvalidToken, false)
					if resp.Header.Get("WWW-Authenticate") == "" {
						t.Errorf("%s: 401 without WWW-Authenticate", name)
					}
				}
			})
		}
	})

	t.Run("Bearer scheme with a good token", func(t *testing.T) {
		c := h.client(h.read, okta.WithAuthorizationMode("Bearer"))
		got, resp, err := c.api.ListAgentPools(ctx).Execute()
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, resp, http.StatusOK)
		if len(got) != 2 {
			t.Errorf("pools = %v", poolIDs(got))
		}
		if a := c.rec.since(0)[0].reqHeader.Get("Authorization"); !strings.HasPrefix(a, "Bearer ") {
			t.Errorf("Authorization = %q, want the Bearer scheme", a)
		}
	})
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	// checkLimited checks a 429 on the wire: Okta's error object and headers.
	checkLimited := func(t *testing.T, x exchange, limit int) {
		t.Helper()
		if x.status != http.StatusTooManyRequests {
			t.Fatalf("status = %d, want 429", x.status)
		}
		var e okta.Error
		if err := e.UnmarshalJSON(x.body); err != nil {
			t.Fatalf("429 body does not decode into okta.Error: %v: %s", err, x.body)
		}
		checkError(t, e, wire.CodeRateLimit, false)
		if got := x.header.Get("X-Rate-Limit-Limit"); got != strconv.Itoa(limit) {
			t.Errorf("X-Rate-Limit-Limit = %q, want %d", got, limit)
		}
		if got := x.header.Get("X-Rate-Limit-Remaining"); got != "0" {
			t.Errorf("X-Rate-Limit-Remaining = %q, want 0", got)
		}
		date, err := http.ParseTime(x.header.Get("Date"))
		if err != nil {
			t.Errorf("Date header %q: %v (the SDK needs it to compute its back-off)", x.header.Get("Date"), err)
		}
		reset, err := strconv.ParseInt(x.header.Get("X-Rate-Limit-Reset"), 10, 64)
		if err != nil || reset < date.Unix() {
			t.Errorf("X-Rate-Limit-Reset = %q, want epoch seconds not before Date %s", x.header.Get("X-Rate-Limit-Reset"), date)
		}
		if ra, err := strconv.Atoi(x.header.Get("Retry-After")); err != nil || ra < 1 {
			t.Errorf("Retry-After = %q, want a positive number of seconds", x.header.Get("Retry-After"))
		}
	}

	t.Run("429 surfaces without retries", func(t *testing.T) {
		t.Parallel()
		const limit = 2
		h := newHarness(t, func(c *controlplane.Config) {
			c.RateLimit.RequestsPerWindow = limit
			c.RateLimit.Window = controlplane.Duration{Duration: time.Hour}
		})
		p, _ := h.pool(wire.AgentTypeAD, "ad")
		c := h.client(h.manage, okta.WithRateLimitMaxRetries(0))
		// Bounded: even if a window boundary passes, a 429 comes within
		// two windows' worth of requests.
		for i := 0; i <= 2*limit; i++ {
			n := c.rec.count()
			_, _, err := c.api.GetAgentPoolsUpdateSettings(ctx, p.ID).Execute()
			if err == nil {
				continue
			}
			// The SDK drains a 429's body and reports a bare error.
			if ge := sdkError(t, err); !strings.Contains(ge.Error(), "too many requests") {
				t.Fatalf("error = %q, want the SDK's rate-limit error", ge.Error())
			}
			sent := c.rec.since(n)
			if len(sent) != 1 {
				t.Fatalf("the SDK sent %d requests with retries off, want 1", len(sent))
			}
			checkLimited(t, sent[0], limit)
			return
		}
		t.Fatalf("no 429 after %d requests with a limit of %d", 2*limit+1, limit)
	})

	t.Run("the SDK's retry succeeds after the window resets", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, func(c *controlplane.Config) {
			c.RateLimit.RequestsPerWindow = 1
			c.RateLimit.Window = controlplane.Duration{Duration: time.Second}
		})
		p, _ := h.pool(wire.AgentTypeAD, "ad")
		// The SDK waits X-Rate-Limit-Reset - Date + 1 seconds (capped).
		c := h.client(h.manage, okta.WithRateLimitMaxRetries(2), okta.WithRateLimitMaxBackOff(3))
		for attempt := 0; attempt < 4; attempt++ {
			n := c.rec.count()
			for range 2 { // the second call of a window is limited
				s, resp, err := c.api.GetAgentPoolsUpdateSettings(ctx, p.ID).Execute()
				if err != nil {
					t.Fatalf("call failed although the SDK may retry: %v", err)
				}
				wantStatus(t, resp, http.StatusOK)
				if s.GetPoolId() != p.ID {
					t.Fatalf("settings = %s", jsonOf(t, s))
				}
			}
			sent := c.rec.since(n)
			i := slices.IndexFunc(sent, func(x exchange) bool { return x.status == http.StatusTooManyRequests })
			if i < 0 {
				continue // both calls fell in different windows; try again
			}
			checkLimited(t, sent[i], 1)
			if i+1 >= len(sent) {
				t.Fatalf("the SDK did not retry after the 429 (%d exchanges)", len(sent))
			}
			retry := sent[i+1]
			if retry.status != http.StatusOK {
				t.Fatalf("retry status = %d, want 200", retry.status)
			}
			if got := retry.reqHeader.Get("X-Okta-Retry-Count"); got != "1" {
				t.Errorf("retry X-Okta-Retry-Count = %q, want 1", got)
			}
			return
		}
		t.Fatal("never rate limited: two calls never fell into one 1s window")
	})
}

// TestUpdateWithAgentsInProgress checks that the SDK decodes an update
// whose agents carry the progress and phase extension (docs/api.md) and
// keeps both in the agent's AdditionalProperties.
func TestUpdateWithAgentsInProgress(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	p, agents := h.pool(wire.AgentTypeAD, "ad", up("dc1"), up("dc2"), up("dc3"))
	now := time.Now().UTC()
	u := &store.Update{ID: store.NewID("upd"), PoolID: p.ID, AgentType: p.Type, Enabled: true, Status: wire.JobInProgress,
		TargetVersion: "3.20.0", AllAgents: true, CreatedAt: now, ModifiedAt: now, Agents: []store.UpdateAgent{
			{AgentID: agents[0].ID, Status: wire.InstanceInProgress, JobID: "job-dc1", JobSeq: 1, DispatchedAt: now, Progress: 40, Phase: "download", ModifiedAt: now},
			{AgentID: agents[1].ID, Position: 1, Status: wire.InstancePendingCompletion, JobID: "job-dc2", JobSeq: 2, DispatchedAt: now, Progress: 90, Phase: "swap", ModifiedAt: now},
			{AgentID: agents[2].ID, Position: 2, Status: wire.InstanceScheduled, ModifiedAt: now},
		}}
	if err := h.st.CreateUpdate(ctx, u); err != nil {
		t.Fatal(err)
	}
	c := h.client(h.read)
	got, resp, err := c.api.GetAgentPoolsUpdateInstance(ctx, p.ID, u.ID).Execute()
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, resp, http.StatusOK)
	checkUpdate(t, h, got, p.ID)
	listed, _, err := c.api.ListAgentPoolsUpdates(ctx, p.ID).Execute()
	if err != nil || len(listed) != 1 {
		t.Fatalf("list = %d updates, %v", len(listed), err)
	}
	for _, upd := range []*okta.AgentPoolUpdate{got, &listed[0]} {
		if len(upd.Agents) != 3 {
			t.Fatalf("agents = %v", agentIDs(upd.Agents))
		}
		for i, want := range []struct {
			status   string
			progress any // as encoding/json decodes it into AdditionalProperties
			phase    any
		}{
			{"InProgress", float64(40), "download"},
			{"PendingCompletion", float64(90), "swap"},
			{"Scheduled", nil, nil},
		} {
			a := upd.Agents[i]
			checkAgent(t, a, agents[i])
			if a.GetUpdateStatus() != want.status {
				t.Errorf("agent %d updateStatus = %q, want %s", i, a.GetUpdateStatus(), want.status)
			}
			if a.AdditionalProperties["progress"] != want.progress || a.AdditionalProperties["phase"] != want.phase {
				t.Errorf("agent %d AdditionalProperties = %v, want progress %v phase %v", i, a.AdditionalProperties, want.progress, want.phase)
			}
		}
	}
}
