package controlplane_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
)

// statusCycle is the per-agent status of the i-th agent of readEnv's update.
var statusCycle = []okta.AgentUpdateInstanceStatus{
	okta.InstanceFailed, okta.InstanceFailed, okta.InstanceFailed, okta.InstanceInProgress, okta.InstanceInProgress,
	okta.InstancePendingCompletion, okta.InstanceSuccess, okta.InstanceSuccess, okta.InstanceCancelled,
	okta.InstanceScheduled, okta.InstanceScheduled, okta.InstanceScheduled,
}

// readEnv is an env with a pool of n agents and one Paused update (the
// engine leaves it alone) naming them all, the i-th in status
// statusCycle[i%12].
func readEnv(t *testing.T, n int) (*env, *store.Pool, *store.Update) {
	t.Helper()
	e := newEnv(t)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("dc%05d.example.com", i)
	}
	p, agents := e.pool(okta.AgentTypeAD, "ad", names...)
	now := e.clock.Now()
	u := &store.Update{ID: store.NewID("upd"), PoolID: p.ID, Name: "read", AgentType: okta.AgentTypeAD, Enabled: true,
		Status: okta.JobPaused, ResumeStatus: okta.JobInProgress, TargetVersion: "1.1.0", CreatedAt: now, ModifiedAt: now}
	for i, a := range agents {
		ua := store.UpdateAgent{AgentID: a.ID, Position: i, Status: statusCycle[i%len(statusCycle)], ModifiedAt: now}
		if ua.Status == okta.InstanceInProgress || ua.Status == okta.InstanceFailed {
			ua.JobID, ua.Progress, ua.Phase = store.NewID("job"), 40, "download"
		}
		if ua.Status == okta.InstanceFailed {
			ua.Message = "install failed: exit status 3"
		}
		u.Agents = append(u.Agents, ua)
	}
	if err := e.st.CreateUpdate(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return e, p, u
}

// agentIDsOf returns the ids of the agents array of an update reply, and
// whether the reply has that array at all.
func agentIDsOf(t *testing.T, body []byte) ([]string, bool) {
	t.Helper()
	var v struct {
		Agents *[]okta.Agent `json:"agents"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if v.Agents == nil {
		return nil, false
	}
	ids := []string{}
	for _, a := range *v.Agents {
		ids = append(ids, a.ID)
	}
	return ids, true
}

var nextLink = regexp.MustCompile(`<([^>]+)>; rel="next"`)

// next returns the path and query of a reply's Link rel="next", or "".
func next(t *testing.T, r reply) string {
	t.Helper()
	for _, l := range r.header.Values("Link") {
		if m := nextLink.FindStringSubmatch(l); m != nil {
			u, err := url.Parse(m[1])
			if err != nil || !u.IsAbs() {
				t.Fatalf("rel=next %q is not an absolute URL", m[1])
			}
			return u.RequestURI()
		}
	}
	return ""
}

func TestGetUpdateAgentsQuery(t *testing.T) {
	e, p, u := readEnv(t, 12)
	id := func(i int) string { return u.Agents[i].AgentID }
	ids := func(is ...int) []string {
		out := []string{}
		for _, i := range is {
			out = append(out, id(i))
		}
		return out
	}
	base := "/api/v1/agentPools/" + p.ID + "/updates/" + u.ID
	wantCounts := map[okta.AgentUpdateInstanceStatus]int{"Failed": 3, "InProgress": 2, "PendingCompletion": 1, "Success": 2, "Cancelled": 1, "Scheduled": 3}
	for _, tt := range []struct {
		name, query string
		want        []string // nil: no agents array
		next        string   // query of rel="next", "" for none
	}{
		{"no parameters: every agent", "", ids(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11), ""},
		{"agents=all", "agents=all", ids(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11), ""},
		{"counts only", "agents=none", nil, ""},
		{"one status", "agentStatus=Failed", ids(0, 1, 2), ""},
		{"statuses comma-separated", "agentStatus=Failed,Cancelled", ids(0, 1, 2, 8), ""},
		{"statuses repeated", "agentStatus=Success&agentStatus=Scheduled", ids(6, 7, 9, 10, 11), ""},
		{"a status no agent has", "agentStatus=PendingCompletion&agentStatus=Cancelled", ids(5, 8), ""},
		{"first page", "limit=5", ids(0, 1, 2, 3, 4), "after=" + id(4) + "&limit=5"},
		{"second page", "limit=5&after=" + id(4), ids(5, 6, 7, 8, 9), "after=" + id(9) + "&limit=5"},
		{"last page", "limit=5&after=" + id(9), ids(10, 11), ""},
		{"a page that fits exactly", "limit=12", ids(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11), ""},
		{"after the last agent", "limit=3&after=" + id(11), ids(), ""},
		{"after without limit", "after=" + id(8), ids(9, 10, 11), ""},
		{"filtered page", "agentStatus=Scheduled,Failed&limit=2", ids(0, 1), "after=" + id(1) + "&agentStatus=Scheduled%2CFailed&limit=2"},
		{"filtered page after an agent of another status", "agentStatus=Scheduled&limit=2&after=" + id(6), ids(9, 10), "after=" + id(10) + "&agentStatus=Scheduled&limit=2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := base
			if tt.query != "" {
				path += "?" + tt.query
			}
			r := e.do("GET", path, e.read, "")
			if r.status != http.StatusOK {
				t.Fatalf("GET %s: %d %s", path, r.status, r.body)
			}
			got, has := agentIDsOf(t, r.body)
			if tt.want == nil {
				if has {
					t.Errorf("agents=none: the reply has an agents array: %s", r.body)
				}
			} else if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("agents = %v, want %v", got, tt.want)
			}
			var v okta.AgentPoolUpdate
			r.decode(t, &v)
			if !reflect.DeepEqual(v.AgentCounts, wantCounts) {
				t.Errorf("agentCounts = %v, want %v (the whole update's, whatever the page)", v.AgentCounts, wantCounts)
			}
			if v.ID != u.ID || v.Status != okta.JobPaused || v.Links == nil {
				t.Errorf("the update's own fields are missing: %s", r.body)
			}
			wantNext := ""
			if tt.next != "" {
				wantNext = base + "?" + tt.next
			}
			if n := next(t, r); n != wantNext {
				t.Errorf("rel=next = %q, want %q", n, wantNext)
			}
			if strings.Contains(tt.query, "limit") && !strings.Contains(strings.Join(r.header.Values("Link"), "\n"), `rel="self"`) {
				t.Errorf("a page without rel=self: %v", r.header.Values("Link"))
			}
			if r.header.Get("ETag") == "" || !strings.Contains(r.header.Get("Vary"), "User-Agent") {
				t.Errorf("ETag %q, Vary %q", r.header.Get("ETag"), r.header.Get("Vary"))
			}
		})
	}

	// Following rel="next" walks every matching agent once, in order.
	for _, q := range []string{"limit=1", "limit=5", "agentStatus=Failed,Scheduled&limit=2"} {
		var got []string
		path := base + "?" + q
		for pages := 0; path != ""; pages++ {
			if pages > 20 {
				t.Fatalf("%s: no end to the pages", q)
			}
			r := e.do("GET", path, e.read, "")
			page, _ := agentIDsOf(t, r.body)
			got = append(got, page...)
			path = next(t, r)
		}
		all, _ := url.ParseQuery(q)
		r := e.do("GET", base+"?"+url.Values{"agentStatus": all["agentStatus"]}.Encode(), e.read, "")
		want, _ := agentIDsOf(t, r.body)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("pages of %s = %v, want %v", q, got, want)
		}
	}

	// The list: agents=none leaves out every update's agents, not its counts.
	r := e.do("GET", "/api/v1/agentPools/"+p.ID+"/updates?agents=none", e.read, "")
	var list []map[string]json.RawMessage
	r.decode(t, &list)
	if r.status != 200 || len(list) != 1 || list[0]["agents"] != nil || list[0]["agentCounts"] == nil {
		t.Errorf("list with agents=none: %d %s", r.status, r.body)
	}
}

// TestStreamedRepliesEqualMarshalled compares the streamed GETs with what
// a write (marshalled whole) returns for the same update.
func TestStreamedRepliesEqualMarshalled(t *testing.T) {
	e, p, u := readEnv(t, 12)
	base := "/api/v1/agentPools/" + p.ID + "/updates"
	for _, ua := range []string{uaGo, uaPython} {
		// A modify replies with the marshalled view of the update.
		mod := e.doUA("POST", base+"/"+u.ID, ua, `{"name":"renamed `+ua+`"}`)
		if mod.status != http.StatusCreated {
			t.Fatalf("modify: %d %s", mod.status, mod.body)
		}
		got := e.doUA("GET", base+"/"+u.ID, ua, "")
		list := e.doUA("GET", base, ua, "")
		if ua == uaGo && !bytes.Equal(got.body, mod.body) {
			t.Errorf("GET differs from the marshalled reply:\n got %s\nwant %s", got.body, mod.body)
		}
		var a, b any
		var l []any
		_ = json.Unmarshal(mod.body, &a)
		_ = json.Unmarshal(got.body, &b)
		if err := json.Unmarshal(list.body, &l); err != nil || len(l) != 1 {
			t.Fatalf("list: %v %s", err, list.body)
		}
		if !reflect.DeepEqual(a, b) || !reflect.DeepEqual(a, l[0]) {
			t.Errorf("%s: GET or list decodes differently from the marshalled reply:\n%s\n%s\n%s", ua, mod.body, got.body, list.body)
		}
	}
}

func TestGetUpdateBadQuery(t *testing.T) {
	e, p, u := readEnv(t, 3)
	one := "/api/v1/agentPools/" + p.ID + "/updates/" + u.ID
	list := "/api/v1/agentPools/" + p.ID + "/updates"
	for _, tt := range []struct {
		name, path, cause string
	}{
		{"unknown agents value", one + "?agents=some", `agents: must be "all" or "none"`},
		{"unknown status", one + "?agentStatus=Sleeping", `agentStatus: unknown per-agent status "Sleeping"`},
		{"one bad status among good ones", one + "?agentStatus=Failed,failed", `agentStatus: unknown per-agent status "failed"`},
		{"limit 0", one + "?limit=0", "limit: must be an integer from 1 to 10000"},
		{"limit too big", one + "?limit=10001", "limit: must be an integer from 1 to 10000"},
		{"limit not a number", one + "?limit=ten", `got "ten"`},
		{"empty after", one + "?limit=2&after=", "after: empty"},
		{"after an agent not in the update", one + "?limit=2&after=agtnope", `after: agent "agtnope" is not in update`},
		{"agents=none with a page", one + "?agents=none&limit=2", "agents: none lists no agents"},
		{"agents=none with a status", one + "?agents=none&agentStatus=Failed", "agents: none lists no agents"},
		{"paging the list", list + "?limit=2", "limit: only on GET of one update"},
		{"filtering the list", list + "?agentStatus=Failed", "agentStatus: only on GET of one update"},
		{"unknown agents value on the list", list + "?agents=x", `agents: must be "all" or "none"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("GET", tt.path, e.read, "")
			if r.status != http.StatusBadRequest {
				t.Fatalf("GET %s: %d %s", tt.path, r.status, r.body)
			}
			oe := r.okta(t)
			if oe.ErrorCode != okta.CodeValidation || len(oe.ErrorCauses) == 0 {
				t.Fatalf("error %+v", oe)
			}
			found := false
			for _, c := range oe.ErrorCauses {
				found = found || strings.Contains(c.ErrorSummary, tt.cause)
			}
			if !found {
				t.Errorf("causes %+v do not say %q", oe.ErrorCauses, tt.cause)
			}
			if r.header.Get("ETag") != "" {
				t.Errorf("an error with ETag %q", r.header.Get("ETag"))
			}
		})
	}
	// An unknown pool or update is still a 404, parameters or not.
	if r := e.do("GET", "/api/v1/agentPools/nope/updates/"+u.ID+"?limit=0", e.read, ""); r.status != http.StatusNotFound {
		t.Errorf("unknown pool: %d", r.status)
	}
	if r := e.do("GET", list+"/updnope?limit=2", e.read, ""); r.status != http.StatusNotFound {
		t.Errorf("unknown update: %d", r.status)
	}
}

// TestBigUpdateWeakETag: a reply over 2000 agents is streamed under a weak
// ETag computed before the body; If-None-Match still gets a 304, and a
// change still changes the tag.
func TestBigUpdateWeakETag(t *testing.T) {
	e, p, u := readEnv(t, 2001)
	one := "/api/v1/agentPools/" + p.ID + "/updates/" + u.ID
	list := "/api/v1/agentPools/" + p.ID + "/updates"
	for i, path := range []string{one, list} {
		r := e.get(path, e.read, "")
		tag := r.header.Get("ETag")
		if r.status != 200 || !strings.HasPrefix(tag, `W/"`) || r.header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("GET %s: %d ETag %q", path, r.status, tag)
		}
		body := r.body
		if path == list {
			var l []json.RawMessage
			if err := json.Unmarshal(body, &l); err != nil || len(l) != 1 {
				t.Fatalf("list: %v", err)
			}
			body = l[0]
		}
		if ids, _ := agentIDsOf(t, body); len(ids) != 2001 {
			t.Fatalf("GET %s: %d agents", path, len(ids))
		}
		for _, inm := range []string{tag, strings.TrimPrefix(tag, "W/"), `"x", ` + tag} {
			r := e.get(path, e.read, inm)
			if r.status != http.StatusNotModified || len(r.body) != 0 || r.header.Get("ETag") != tag || r.header.Get("X-Rate-Limit-Remaining") == "" {
				t.Errorf("GET %s If-None-Match %s: %d %v", path, inm, r.status, r.header)
			}
		}
		// A small page of the same update is buffered: a strong tag.
		if r := e.get(one+"?limit=100", e.read, ""); !strings.HasPrefix(r.header.Get("ETag"), `"`) {
			t.Errorf("page of 100: ETag %q", r.header.Get("ETag"))
		}
		_, err := e.st.ModifyUpdate(context.Background(), p.ID, u.ID, func(u *store.Update) error {
			u.Agents[len(u.Agents)-1-i].Status = okta.InstanceFailed // was Cancelled, then Success
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if r := e.get(path, e.read, tag); r.status != 200 || r.header.Get("ETag") == tag {
			t.Errorf("GET %s after a change: %d ETag %q", path, r.status, r.header.Get("ETag"))
		}
	}
}

// TestWriteRepliesWithoutAgents: create, modify and a lifecycle action
// take agents=none for a reply of the update's fields and agentCounts (a
// script creating an update of 300,000 agents need not read them all
// back); a bad parameter is refused before anything is written.
func TestWriteRepliesWithoutAgents(t *testing.T) {
	e := newEnv(t)
	p, agents := e.pool(okta.AgentTypeAD, "ad", "dc1.example.com", "dc2.example.com", "dc3.example.com")
	base := "/api/v1/agentPools/" + p.ID + "/updates"
	counts := func(r reply) map[string]int {
		t.Helper()
		var v struct {
			Agents      *json.RawMessage `json:"agents"`
			AgentCounts map[string]int   `json:"agentCounts"`
			ID          string           `json:"id"`
		}
		r.decode(t, &v)
		if v.Agents != nil {
			t.Errorf("agents=none: the reply has an agents array: %s", r.body)
		}
		return v.AgentCounts
	}

	for _, bad := range []string{"agents=some", "agents=none&limit=1", "agentStatus=Failed"} {
		r := e.do("POST", base+"?"+bad, e.manage, `{"name":"u","targetVersion":"1.1.0"}`)
		if r.status != http.StatusBadRequest || r.okta(t).ErrorCode != "E0000001" {
			t.Errorf("create ?%s: %d %s, want 400 E0000001", bad, r.status, r.body)
		}
	}
	if list, _ := e.st.ListUpdates(context.Background(), p.ID, nil); len(list) != 0 {
		t.Fatalf("a refused create wrote %d updates", len(list))
	}

	r := e.do("POST", base+"?agents=none", e.manage, `{"name":"u","targetVersion":"1.1.0","schedule":{"cron":"0 2 15 * *","duration":120,"timezone":"UTC"}}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create ?agents=none: %d %s", r.status, r.body)
	}
	if c := counts(r); c["Scheduled"] != len(agents) {
		t.Errorf("create ?agents=none: agentCounts = %v, want %d Scheduled", c, len(agents))
	}
	var created struct{ ID string }
	r.decode(t, &created)
	full := e.do("GET", base+"/"+created.ID, e.read, "")
	if ids, ok := agentIDsOf(t, full.body); !ok || len(ids) != len(agents) {
		t.Errorf("GET after create ?agents=none lists %v, want the %d agents", ids, len(agents))
	}

	r = e.do("POST", base+"/"+created.ID+"?agents=none", e.manage, `{"name":"renamed"}`)
	if r.status != http.StatusCreated || counts(r)["Scheduled"] != len(agents) {
		t.Errorf("modify ?agents=none: %d %s", r.status, r.body)
	}
	r = e.do("POST", base+"/"+created.ID+"/deactivate?agents=none", e.manage, "")
	if r.status != http.StatusCreated || counts(r)["Scheduled"] != len(agents) {
		t.Errorf("deactivate ?agents=none: %d %s", r.status, r.body)
	}
	// Without the parameter the replies are what they always were.
	r = e.do("POST", base+"/"+created.ID+"/activate", e.manage, "")
	if ids, ok := agentIDsOf(t, r.body); r.status != http.StatusCreated || !ok || len(ids) != len(agents) {
		t.Errorf("activate: %d %s", r.status, r.body)
	}
}
