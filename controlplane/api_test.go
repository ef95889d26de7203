package controlplane_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/controlplane/store"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t       *testing.T
	srv     *httptest.Server
	st      store.Store
	clock   *fakeClock
	manage  string // token with okta.agentPools.manage
	read    string // token with okta.agentPools.read
	expired string
}

func newEnv(t *testing.T, mutate ...func(*controlplane.Config)) *env {
	t.Helper()
	ctx := context.Background()
	st, err := openTestStore(ctx, t, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := controlplane.DefaultConfig()
	for _, m := range mutate {
		m(&cfg)
	}
	clock := &fakeClock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
	srv := httptest.NewServer(controlplane.New(cfg, st, nil, controlplane.WithClock(clock)).Handler())
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, st: st, clock: clock}
	e.manage, _, err = controlplane.CreateToken(ctx, st, "manage", []store.Scope{store.ScopeManage}, 0, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	e.read, _, _ = controlplane.CreateToken(ctx, st, "read", []store.Scope{store.ScopeRead}, 0, clock.Now())
	e.expired, _, _ = controlplane.CreateToken(ctx, st, "old", []store.Scope{store.ScopeManage}, time.Minute, clock.Now().Add(-time.Hour))
	return e
}

func (e *env) pool(typ okta.AgentType, name string, agents ...string) (*store.Pool, []*store.Agent) {
	e.t.Helper()
	ctx := context.Background()
	p := &store.Pool{ID: store.NewID("pol"), Name: name, Type: typ, CreatedAt: e.clock.Now()}
	if err := e.st.CreatePool(ctx, p); err != nil {
		e.t.Fatal(err)
	}
	var out []*store.Agent
	for _, n := range agents {
		a := &store.Agent{ID: store.NewID("agt"), PoolID: p.ID, Name: n, Type: typ, Version: "1.0.0",
			LastConnection: e.clock.Now(), OperationalStatus: okta.OperationalStatusOperational, CreatedAt: e.clock.Now()}
		if err := e.st.CreateAgent(ctx, a); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, a)
	}
	return p, out
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) okta(t *testing.T) okta.Error {
	t.Helper()
	var e okta.Error
	if err := json.Unmarshal(r.body, &e); err != nil || e.ErrorCode == "" {
		t.Fatalf("not an Okta error object (%v): %s", err, r.body)
	}
	if !strings.Contains(string(r.body), `"errorCauses":[`) {
		t.Errorf("errorCauses is not an array: %s", r.body)
	}
	return e
}

func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends one request; auth is "SSWS <tok>" unless it already has a
// scheme (with or without a space after it).
func (e *env) do(method, path, auth, body string) reply {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if auth != "" {
		if !hasScheme.MatchString(auth) {
			auth = "SSWS " + auth
		}
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if len(b) > 0 && !strings.HasPrefix(path, "/artifacts/") && resp.Header.Get("Content-Type") != "application/json" {
		e.t.Errorf("%s %s: Content-Type %q for a body", method, path, resp.Header.Get("Content-Type"))
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

var hasScheme = regexp.MustCompile(`(?i)^(SSWS|Bearer|Basic)|\s`)

func (e *env) createUpdate(poolID, body string) okta.AgentPoolUpdate {
	e.t.Helper()
	r := e.do("POST", "/api/v1/agentPools/"+poolID+"/updates", e.manage, body)
	if r.status != http.StatusCreated {
		e.t.Fatalf("create update: %d %s", r.status, r.body)
	}
	var u okta.AgentPoolUpdate
	r.decode(e.t, &u)
	return u
}

func TestListPoolsPagination(t *testing.T) {
	e := newEnv(t)
	var ad []string
	for i := range 7 {
		p, _ := e.pool(okta.AgentTypeAD, fmt.Sprintf("ad-%d", i), "dc1")
		ad = append(ad, p.ID)
	}
	ldap, _ := e.pool(okta.AgentTypeLDAP, "ldap", "ldap1", "ldap2")

	r := e.do("GET", "/api/v1/agentPools", e.read, "")
	if r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	var page []okta.AgentPool
	r.decode(t, &page)
	// Default limitPerPoolType is 5: five AD pools and the LDAP pool.
	if len(page) != 6 || page[0].ID != ad[0] || page[4].ID != ad[4] || page[5].ID != ldap.ID {
		t.Fatalf("first page = %+v", page)
	}
	if len(page[5].Agents) != 2 || page[5].Agents[0].Name != "ldap1" || page[5].OperationalStatus != okta.OperationalStatusOperational {
		t.Errorf("LDAP pool = %+v", page[5])
	}
	links := r.header.Values("Link")
	if len(links) != 2 {
		t.Fatalf("Link headers = %q, want self and next", links)
	}
	next := regexp.MustCompile(`^<([^>]+)>; rel="next"$`).FindStringSubmatch(links[1])
	if next == nil || !strings.HasPrefix(next[1], e.srv.URL+"/api/v1/agentPools?") || !strings.HasPrefix(links[0], "<"+e.srv.URL) {
		t.Fatalf("Link headers = %q", links)
	}
	u, _ := url.Parse(next[1])
	r = e.do("GET", u.RequestURI(), e.read, "")
	r.decode(t, &page)
	if len(page) != 2 || page[0].ID != ad[5] || page[1].ID != ad[6] {
		t.Fatalf("second page = %+v", page)
	}
	if len(r.header.Values("Link")) != 1 {
		t.Errorf("last page has a next link: %q", r.header.Values("Link"))
	}

	r = e.do("GET", "/api/v1/agentPools?poolType=LDAP&limitPerPoolType=1", e.read, "")
	r.decode(t, &page)
	if len(page) != 1 || page[0].ID != ldap.ID {
		t.Errorf("poolType=LDAP = %+v", page)
	}
	r = e.do("GET", "/api/v1/agentPools?poolType=Radius", e.read, "")
	if r.status != 200 || string(r.body) != "[]\n" {
		t.Errorf("empty type = %d %s", r.status, r.body)
	}

	for _, q := range []string{"limitPerPoolType=0", "limitPerPoolType=abc", "poolType=NOPE", "after=garbage!"} {
		r := e.do("GET", "/api/v1/agentPools?"+q, e.read, "")
		if r.status != 400 {
			t.Errorf("%s: status %d", q, r.status)
			continue
		}
		if oe := r.okta(t); oe.ErrorCode != okta.CodeValidation || len(oe.ErrorCauses) == 0 {
			t.Errorf("%s: %+v", q, oe)
		}
	}
}

func TestUpdateCRUD(t *testing.T) {
	e := newEnv(t)
	p, agents := e.pool(okta.AgentTypeAD, "ad", "dc1", "dc2", "dc3")
	base := "/api/v1/agentPools/" + p.ID + "/updates"

	// Flow 2: no schedule, starts at once, every agent of the pool.
	adhoc := e.createUpdate(p.ID, `{"name":"now","targetVersion":"1.1.0","agentType":"AD","notifyAdmin":true,"reason":"CVE fix"}`)
	if adhoc.Status != okta.JobInProgress || !adhoc.Enabled || adhoc.Schedule != nil || len(adhoc.Agents) != 3 ||
		adhoc.Agents[0].UpdateStatus != okta.InstanceScheduled || adhoc.Agents[0].Name != "dc1" || !adhoc.NotifyAdmin {
		t.Errorf("ad-hoc update = %+v", adhoc)
	}
	if want := e.srv.URL + base + "/" + adhoc.ID; adhoc.Links == nil || adhoc.Links.Self.Href != want {
		t.Errorf("_links = %+v, want self %s", adhoc.Links, want)
	}
	if adhoc.Agents[0].LastConnection == nil || !adhoc.Agents[0].LastConnection.Equal(e.clock.Now()) {
		t.Errorf("lastConnection = %v", adhoc.Agents[0].LastConnection)
	}

	// Flow 3: a schedule, named agents in the given order.
	sched := e.createUpdate(p.ID, fmt.Sprintf(`{"name":"monthly","targetVersion":"1.2.0","enabled":false,"sortOrder":3,
		"agents":[{"id":%q},{"id":%q}],
		"schedule":{"cron":"0 2 15 * *","timezone":"America/New_York","delay":2,"duration":90}}`, agents[2].ID, agents[0].ID))
	if sched.Status != okta.JobScheduled || sched.Enabled || sched.SortOrder != 3 || len(sched.Agents) != 2 ||
		sched.Agents[0].ID != agents[2].ID || sched.Schedule == nil || *sched.Schedule.Delay != 2 || *sched.Schedule.Duration != 90 ||
		sched.Schedule.Timezone != "America/New_York" || sched.Schedule.LastUpdated != nil {
		t.Errorf("scheduled update = %+v", sched)
	}
	// The seed's request sample sends duration 0: that means the default window.
	def := e.createUpdate(p.ID, `{"targetVersion":"1.2.0","schedule":{"cron":"0 2 * * 2#1","delay":0,"duration":0}}`)
	if *def.Schedule.Duration != controlplane.DefaultWindowMinutes || def.Schedule.Timezone != "UTC" {
		t.Errorf("defaults = %+v", def.Schedule)
	}

	var list []okta.AgentPoolUpdate
	e.do("GET", base, e.read, "").decode(t, &list)
	if len(list) != 3 || list[0].ID != adhoc.ID || list[1].ID != sched.ID {
		t.Errorf("list = %d updates", len(list))
	}
	e.do("GET", base+"?scheduled=true", e.read, "").decode(t, &list)
	if len(list) != 2 || list[0].ID != sched.ID {
		t.Errorf("scheduled=true = %+v", list)
	}
	e.do("GET", base+"?scheduled=false", e.read, "").decode(t, &list)
	if len(list) != 1 || list[0].ID != adhoc.ID {
		t.Errorf("scheduled=false = %+v", list)
	}
	if r := e.do("GET", base+"?scheduled=maybe", e.read, ""); r.status != 400 {
		t.Errorf("scheduled=maybe: %d", r.status)
	}

	var got okta.AgentPoolUpdate
	e.do("GET", base+"/"+sched.ID, e.read, "").decode(t, &got)
	if got.ID != sched.ID || got.Name != "monthly" {
		t.Errorf("get = %+v", got)
	}

	// Modify: a partial body keeps the other fields.
	r := e.do("POST", base+"/"+sched.ID, e.manage, `{"name":"renamed"}`)
	r.decode(t, &got)
	if r.status != 201 || got.Name != "renamed" || got.TargetVersion != "1.2.0" || len(got.Agents) != 2 || got.Schedule.Cron != "0 2 15 * *" {
		t.Errorf("partial modify = %d %+v", r.status, got)
	}
	// Sending back the whole object (id, _links, status included) works.
	got.Reason = "round trip"
	whole, _ := json.Marshal(got)
	r = e.do("POST", base+"/"+sched.ID, e.manage, string(whole))
	var again okta.AgentPoolUpdate
	r.decode(t, &again)
	if r.status != 201 || again.Reason != "round trip" || again.Status != okta.JobScheduled || len(again.Agents) != 2 {
		t.Errorf("whole-object modify = %d %s", r.status, r.body)
	}
	// Removing the schedule of an update that has not started makes it ad hoc.
	r = e.do("POST", base+"/"+def.ID, e.manage, `{"schedule":null}`)
	var cleared okta.AgentPoolUpdate
	r.decode(t, &cleared)
	if cleared.Schedule != nil || cleared.Status != okta.JobInProgress {
		t.Errorf("schedule removed: %+v", cleared)
	}

	// Delete: refused while InProgress, allowed otherwise.
	r = e.do("DELETE", base+"/"+adhoc.ID, e.manage, "")
	if r.status != 400 || !strings.Contains(r.okta(t).ErrorSummary, "InProgress") {
		t.Errorf("delete InProgress = %d %s", r.status, r.body)
	}
	r = e.do("DELETE", base+"/"+sched.ID, e.manage, "")
	if r.status != 204 || len(r.body) != 0 {
		t.Errorf("delete = %d %q", r.status, r.body)
	}
	if r := e.do("GET", base+"/"+sched.ID, e.read, ""); r.status != 404 || r.okta(t).ErrorCode != okta.CodeNotFound {
		t.Errorf("get deleted = %d", r.status)
	}
	if r := e.do("DELETE", base+"/"+sched.ID, e.manage, ""); r.status != 404 {
		t.Errorf("delete twice = %d", r.status)
	}
}

func TestValidation(t *testing.T) {
	e := newEnv(t)
	p, _ := e.pool(okta.AgentTypeAD, "ad", "dc1")
	other, otherAgents := e.pool(okta.AgentTypeAD, "other", "x1")
	_ = other
	base := "/api/v1/agentPools/" + p.ID + "/updates"
	tests := []struct {
		name, body string
		code       string
		cause      string // a substring of one errorCauses entry
	}{
		{"empty body", ``, okta.CodeMalformedBody, "empty"},
		{"malformed JSON", `{"name":`, okta.CodeMalformedBody, ""},
		{"not an object", `[1,2]`, okta.CodeMalformedBody, "JSON object"},
		{"trailing data", `{"name":"a"} {"x":1}`, okta.CodeMalformedBody, "after the JSON object"},
		{"invalid UTF-8", "{\"name\":\"\xff\xfe\"}", okta.CodeMalformedBody, "UTF-8"},
		{"wrong type", `{"name":5}`, okta.CodeValidation, "name"},
		{"wrong type sortOrder", `{"sortOrder":"first"}`, okta.CodeValidation, "sortOrder"},
		{"wrong type nested", `{"schedule":{"cron":"0 2 15 * *","delay":"x"}}`, okta.CodeValidation, "schedule.delay"},
		{"unknown agentType", `{"agentType":"SAML"}`, okta.CodeValidation, "agentType"},
		{"agentType of another pool", `{"agentType":"LDAP"}`, okta.CodeValidation, "holds AD agents"},
		{"unknown status", `{"status":"Done"}`, okta.CodeValidation, "status"},
		{"unknown agent updateStatus", `{"agents":[{"id":"x","updateStatus":"Meh"}]}`, okta.CodeValidation, "agents[0].updateStatus"},
		{"agent without id", `{"agents":[{"name":"dc1"}]}`, okta.CodeValidation, "agents[0].id"},
		{"agent of another pool", fmt.Sprintf(`{"agents":[{"id":%q}]}`, otherAgents[0].ID), okta.CodeValidation, "not in agent pool"},
		{"cron with step", `{"schedule":{"cron":"*/5 2 * * *"}}`, okta.CodeValidation, "schedule.cron"},
		{"cron with both forms", `{"schedule":{"cron":"0 2 15 * 2#1"}}`, okta.CodeValidation, "schedule.cron"},
		{"cron six fields", `{"schedule":{"cron":"0 0 2 15 * *"}}`, okta.CodeValidation, "schedule.cron"},
		{"schedule without cron", `{"schedule":{"timezone":"UTC","duration":60}}`, okta.CodeValidation, "schedule.cron"},
		{"unknown timezone", `{"schedule":{"cron":"0 2 15 * *","timezone":"Mars/Olympus"}}`, okta.CodeValidation, "Mars/Olympus"},
		{"negative delay", `{"schedule":{"cron":"0 2 15 * *","delay":-1}}`, okta.CodeValidation, "schedule.delay"},
		{"negative duration", `{"schedule":{"cron":"0 2 15 * *","duration":-30}}`, okta.CodeValidation, "schedule.duration"},
		{"path in version", `{"targetVersion":"../../etc/passwd"}`, okta.CodeValidation, "targetVersion"},
		{"body over 1 MiB", `{"name":"` + strings.Repeat("a", controlplane.MaxBodyBytes) + `"}`, okta.CodeMalformedBody, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("POST", base, e.manage, tt.body)
			if r.status != 400 {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
			oe := r.okta(t)
			if oe.ErrorCode != tt.code || oe.ErrorLink != tt.code || oe.ErrorID == "" {
				t.Errorf("error = %+v, want code %s", oe, tt.code)
			}
			if tt.cause != "" {
				found := false
				for _, c := range oe.ErrorCauses {
					found = found || strings.Contains(c.ErrorSummary, tt.cause)
				}
				if !found {
					t.Errorf("no cause mentions %q: %+v", tt.cause, oe.ErrorCauses)
				}
			}
		})
	}
	// Every bad field is listed, not just the first.
	r := e.do("POST", base, e.manage, `{"agentType":"SAML","schedule":{"cron":"bad","timezone":"Nowhere/X","delay":-2}}`)
	if oe := r.okta(t); len(oe.ErrorCauses) != 4 {
		t.Errorf("causes = %+v, want 4", oe.ErrorCauses)
	}
	// Nothing was created by the refused requests.
	var list []okta.AgentPoolUpdate
	e.do("GET", base, e.read, "").decode(t, &list)
	if len(list) != 0 {
		t.Errorf("refused requests created %d updates", len(list))
	}
	// Unknown pool.
	if r := e.do("POST", "/api/v1/agentPools/nope/updates", e.manage, `{}`); r.status != 404 || r.okta(t).ErrorCode != okta.CodeNotFound {
		t.Errorf("unknown pool = %d %s", r.status, r.body)
	}
}

func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	p, _ := e.pool(okta.AgentTypeAD, "ad", "dc1", "dc2")
	base := "/api/v1/agentPools/" + p.ID + "/updates/"
	action := func(id, a string) reply { return e.do("POST", base+id+"/"+a, e.manage, "") }
	status := func(r reply) okta.AgentUpdateJobStatus {
		var u okta.AgentPoolUpdate
		r.decode(t, &u)
		return u.Status
	}

	// A walk through the table for an ad-hoc update.
	u := e.createUpdate(p.ID, `{"targetVersion":"1.1.0"}`)
	steps := []struct {
		action string
		code   int
		want   okta.AgentUpdateJobStatus
	}{
		{"resume", 400, ""},
		{"retry", 400, ""},
		{"pause", 201, okta.JobPaused},
		{"pause", 400, ""},
		{"deactivate", 201, okta.JobPaused},
		{"activate", 201, okta.JobPaused},
		{"resume", 201, okta.JobInProgress},
		{"stop", 201, okta.JobCancelled},
		{"stop", 400, ""},
		{"activate", 400, ""}, // ad hoc and finished: retry is the way
		{"retry", 201, okta.JobInProgress},
	}
	for i, s := range steps {
		r := action(u.ID, s.action)
		if r.status != s.code {
			t.Fatalf("step %d %s: status %d, want %d: %s", i, s.action, r.status, s.code, r.body)
		}
		if s.code == 400 {
			oe := r.okta(t)
			if oe.ErrorCode != okta.CodeValidation || !strings.Contains(oe.ErrorSummary, "status is") || len(oe.ErrorCauses) != 1 {
				t.Errorf("step %d %s: error %+v does not name the status", i, s.action, oe)
			}
			continue
		}
		if got := status(r); got != s.want {
			t.Errorf("step %d %s: status %s, want %s", i, s.action, got, s.want)
		}
	}

	// Stop cancels agents not yet started; retry schedules them again.
	var got okta.AgentPoolUpdate
	action(u.ID, "stop").decode(t, &got)
	for _, a := range got.Agents {
		if a.UpdateStatus != okta.InstanceCancelled || a.UpdateMessage == "" {
			t.Errorf("after stop: agent %+v", a)
		}
	}
	action(u.ID, "retry").decode(t, &got)
	for _, a := range got.Agents {
		if a.UpdateStatus != okta.InstanceScheduled {
			t.Errorf("after retry: agent %+v", a)
		}
	}

	// A scheduled update resumes to Scheduled and can be re-armed.
	s := e.createUpdate(p.ID, `{"targetVersion":"1.1.0","schedule":{"cron":"0 3 L * *"}}`)
	if st := status(action(s.ID, "pause")); st != okta.JobPaused {
		t.Errorf("pause scheduled: %s", st)
	}
	if st := status(action(s.ID, "resume")); st != okta.JobScheduled {
		t.Errorf("resume scheduled: %s", st)
	}
	action(s.ID, "deactivate").decode(t, &got)
	if got.Enabled || got.Status != okta.JobScheduled {
		t.Errorf("deactivate: %+v", got)
	}
	action(s.ID, "stop")
	action(s.ID, "activate").decode(t, &got)
	if !got.Enabled || got.Status != okta.JobScheduled || got.Agents[0].UpdateStatus != okta.InstanceScheduled {
		t.Errorf("activate a stopped scheduled update: %+v", got)
	}

	for _, a := range []string{"pause", "nope"} {
		if r := e.do("POST", base+"missing/"+a, e.manage, ""); r.status != 404 {
			t.Errorf("%s on a missing update: %d", a, r.status)
		}
	}
	// Lifecycle POSTs arrive with no body and no Content-Type; a body is ignored.
	if r := e.do("POST", base+s.ID+"/pause", e.manage, `{"junk":`); r.status != 201 {
		t.Errorf("pause with a stray body: %d %s", r.status, r.body)
	}
}

func TestSettings(t *testing.T) {
	e := newEnv(t)
	p, _ := e.pool(okta.AgentTypeLDAP, "ldap")
	path := "/api/v1/agentPools/" + p.ID + "/updates/settings"
	var s okta.AgentPoolUpdateSetting
	r := e.do("GET", path, e.read, "")
	r.decode(t, &s)
	want := okta.AgentPoolUpdateSetting{AgentType: okta.AgentTypeLDAP, PoolID: p.ID, PoolName: "ldap", ReleaseChannel: okta.ChannelGA, MaxUnavailable: 1, MinOperational: 2}
	if r.status != 200 || !reflect.DeepEqual(s, want) {
		t.Errorf("defaults = %d %+v", r.status, s)
	}
	r = e.do("POST", path, e.manage, `{"continueOnError":true,"releaseChannel":"EA","minimalSupportedVersion":"3.1.0"}`)
	r.decode(t, &s)
	want.ContinueOnError, want.ReleaseChannel, want.MinimalSupportedVersion = true, okta.ChannelEA, "3.1.0"
	if r.status != 201 || !reflect.DeepEqual(s, want) {
		t.Errorf("after POST = %d %+v", r.status, s)
	}
	// Only the fields sent change.
	r = e.do("POST", path, e.manage, `{"poolName":"ldap east","latestVersion":"3.2.0","maxUnavailable":25,"artifactMirrors":["https://m1.example.com/pa/","http://10.0.0.9:8080"]}`)
	s = okta.AgentPoolUpdateSetting{}
	r.decode(t, &s)
	want.PoolName, want.LatestVersion, want.MaxUnavailable = "ldap east", "3.2.0", 25
	want.ArtifactMirrors = []string{"https://m1.example.com/pa", "http://10.0.0.9:8080"}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("partial POST = %+v, want %+v", s, want)
	}
	s = okta.AgentPoolUpdateSetting{}
	e.do("GET", path, e.read, "").decode(t, &s)
	if !reflect.DeepEqual(s, want) {
		t.Errorf("GET after POST = %+v", s)
	}
	for _, body := range []string{`{"releaseChannel":"NIGHTLY"}`, `{"agentType":"AD"}`, `{"maxUnavailable":0}`, `{"continueOnError":"yes"}`, `{"poolName":""}`, `not json`,
		`{"artifactMirrors":["ftp://m.example.com"]}`, `{"artifactMirrors":["https://u:p@m.example.com"]}`, `{"artifactMirrors":["https://m.example.com/?x=1"]}`} {
		r := e.do("POST", path, e.manage, body)
		if r.status != 400 {
			t.Errorf("%s: %d", body, r.status)
			continue
		}
		r.okta(t)
	}
	if r := e.do("GET", "/api/v1/agentPools/nope/updates/settings", e.read, ""); r.status != 404 {
		t.Errorf("unknown pool: %d", r.status)
	}
}

func TestAuth(t *testing.T) {
	e := newEnv(t)
	p, _ := e.pool(okta.AgentTypeAD, "ad")
	list := "/api/v1/agentPools"
	create := "/api/v1/agentPools/" + p.ID + "/updates"
	tests := []struct {
		name, method, path, auth string
		status                   int
		code                     string
	}{
		{"no token", "GET", list, "", 401, okta.CodeAuthentication},
		{"unknown scheme", "GET", list, "Basic " + e.read, 401, okta.CodeAuthentication},
		{"bad token", "GET", list, "SSWS 00nope", 401, okta.CodeInvalidToken},
		{"expired token", "GET", list, e.expired, 401, okta.CodeInvalidToken},
		{"read token reads", "GET", list, e.read, 200, ""},
		{"Bearer works", "GET", list, "Bearer " + e.read, 200, ""},
		// The Python SDK joins prefix and token without a space.
		{"SSWS without a space", "GET", list, "SSWS" + e.read, 200, ""},
		{"Bearer without a space", "GET", list, "Bearer" + e.read, 200, ""},
		{"sswS without a space, any case", "GET", list, "sswS" + e.read, 200, ""},
		{"SSWS without a space manages", "POST", create, "SSWS" + e.manage, 201, ""},
		{"SSWS without a space, read token cannot manage", "POST", create, "SSWS" + e.read, 403, okta.CodeForbidden},
		{"SSWS without a space, bad token", "GET", list, "SSWS00nope", 401, okta.CodeInvalidToken},
		{"SSWS alone", "GET", list, "SSWS", 401, okta.CodeAuthentication},
		{"SSWS and spaces", "GET", list, "SSWS   ", 401, okta.CodeAuthentication},
		{"garbage", "GET", list, "Basicgarbage", 401, okta.CodeAuthentication},
		{"token without a scheme", "GET", list, " " + e.read, 401, okta.CodeAuthentication},
		{"another scheme ending in SSWS", "GET", list, "X-SSWS " + e.read, 401, okta.CodeAuthentication},
		{"read token cannot manage", "POST", create, e.read, 403, okta.CodeForbidden},
		{"manage implies read", "GET", list, e.manage, 200, ""},
		{"manage token manages", "POST", create, e.manage, 201, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := ""
			if tt.method == "POST" {
				body = `{"targetVersion":"1.0.1"}`
			}
			r := e.do(tt.method, tt.path, tt.auth, body)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.code != "" {
				if oe := r.okta(t); oe.ErrorCode != tt.code {
					t.Errorf("errorCode %s, want %s", oe.ErrorCode, tt.code)
				}
			}
		})
	}
	if r := e.do("PUT", list, e.manage, ""); r.status != 405 || r.okta(t).ErrorCode != okta.CodeMethodNotAllowed {
		t.Errorf("PUT: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/api/v1/nothing", e.manage, ""); r.status != 404 || r.okta(t).ErrorCode != okta.CodeNotFound {
		t.Errorf("unknown path: %d", r.status)
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, func(c *controlplane.Config) { c.RateLimit.RequestsPerWindow = 3 })
	for i := range 3 {
		r := e.do("GET", "/api/v1/agentPools", e.read, "")
		if r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
		if got := r.header.Get("X-Rate-Limit-Remaining"); got != strconv.Itoa(2-i) {
			t.Errorf("request %d: remaining %s", i, got)
		}
		if r.header.Get("X-Rate-Limit-Limit") != "3" {
			t.Errorf("limit header %q", r.header.Get("X-Rate-Limit-Limit"))
		}
	}
	r := e.do("GET", "/api/v1/agentPools", e.read, "")
	if r.status != 429 || r.okta(t).ErrorCode != okta.CodeRateLimit {
		t.Fatalf("4th request: %d %s", r.status, r.body)
	}
	reset, err := strconv.ParseInt(r.header.Get("X-Rate-Limit-Reset"), 10, 64)
	if err != nil || reset != e.clock.Now().Truncate(time.Minute).Add(time.Minute).Unix() {
		t.Errorf("X-Rate-Limit-Reset = %q", r.header.Get("X-Rate-Limit-Reset"))
	}
	if r.header.Get("Date") == "" || r.header.Get("Retry-After") == "" || r.header.Get("X-Rate-Limit-Remaining") != "0" {
		t.Errorf("429 headers = %v", r.header)
	}
	// Another token has its own budget.
	if r := e.do("GET", "/api/v1/agentPools", e.manage, ""); r.status != 200 {
		t.Errorf("other token: %d", r.status)
	}
	// The next window lets the first token in again.
	e.clock.Advance(time.Minute)
	if r := e.do("GET", "/api/v1/agentPools", e.read, ""); r.status != 200 {
		t.Errorf("after reset: %d", r.status)
	}
}

func TestConcurrentActionsOnOneUpdate(t *testing.T) {
	e := newEnv(t)
	p, _ := e.pool(okta.AgentTypeAD, "ad", "dc1")
	u := e.createUpdate(p.ID, `{"targetVersion":"1.1.0"}`)
	var wg sync.WaitGroup
	codes := make(chan int, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- e.do("POST", "/api/v1/agentPools/"+p.ID+"/updates/"+u.ID+"/pause", e.manage, "").status
		}()
	}
	wg.Wait()
	close(codes)
	ok := 0
	for c := range codes {
		switch c {
		case 201:
			ok++
		case 400:
		default:
			t.Errorf("status %d", c)
		}
	}
	if ok != 1 {
		t.Errorf("%d pauses succeeded, want exactly 1", ok)
	}
}

func httptestServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}
