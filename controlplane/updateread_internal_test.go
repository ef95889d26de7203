package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/controlplane/store/sqlite"
)

// fillAll sets every field of the struct v points to a non-zero value, so
// a field added to okta.Agent and forgotten by appendAgent fails the test.
func fillAll(t *testing.T, v reflect.Value, seed int) {
	t.Helper()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(fmt.Sprintf("%s-%d", v.Type().Field(i).Name, seed))
		case reflect.Pointer:
			p := reflect.New(f.Type().Elem())
			switch e := p.Elem(); e.Kind() {
			case reflect.Bool:
				e.SetBool(true)
			case reflect.Int:
				e.SetInt(int64(40 + seed))
			case reflect.Float64:
				e.SetFloat(1.25 + float64(seed))
			case reflect.Struct:
				if e.Type() == reflect.TypeOf(time.Time{}) {
					e.Set(reflect.ValueOf(time.Date(2026, 3, 2, 10, 0, seed, 123456789, time.UTC)))
				} else {
					fillAll(t, e, seed)
				}
			default:
				t.Fatalf("fillAll: no value for %s", f.Type())
			}
			f.Set(p)
		default:
			t.Fatalf("fillAll: field %s of kind %s: teach fillAll and appendAgent about it", v.Type().Field(i).Name, f.Kind())
		}
	}
}

func TestAppendAgentMatchesJSON(t *testing.T) {
	var full okta.Agent
	fillAll(t, reflect.ValueOf(&full).Elem(), 7)
	f := func(x float64) *float64 { return &x }
	ts := func(tt time.Time) *time.Time { return &tt }
	cases := []okta.Agent{
		{},
		full,
		{ID: "agt1", Name: `a "quoted" <b>&amp; \ name`, UpdateMessage: "tab\there\nnew line \x01 \u2028 é 漢字 \xff"},
		{ID: "agt2", ClockSkewSeconds: f(1e-7)},
		{ID: "agt3", ClockSkewSeconds: f(-2.5e21)},
		{ID: "agt4", ClockSkewSeconds: f(-0.001), Progress: new(int)},
		{ID: "agt5", LastConnection: ts(time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)))},
		{ID: "agt6", LastConnection: ts(time.Time{})},
	}
	for i, a := range cases {
		want, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendAgent(nil, &a, false); !bytes.Equal(got, want) {
			t.Errorf("case %d:\n got %s\nwant %s", i, got, want)
		}
		// Unix milliseconds: the bytes differ in order from msAgent's
		// (encoding/json puts the shallower field last); the values agree.
		ms := msAgents([]okta.Agent{a})[0]
		wantMS, _ := json.Marshal(ms)
		var g, w map[string]any
		if err := json.Unmarshal(appendAgent(nil, &a, true), &g); err != nil {
			t.Fatalf("case %d millis: %v", i, err)
		}
		_ = json.Unmarshal(wantMS, &w)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("case %d millis:\n got %v\nwant %v", i, g, w)
		}
	}
}

// newBareServer is a Server over an empty SQLite store.
func newBareServer(t *testing.T) *Server {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	s := New(DefaultConfig(), st, nil)
	t.Cleanup(s.Close)
	return s
}

// memUpdate is an update of n agents, in memory only.
func memUpdate(n int) (*store.Update, map[string]*store.Agent) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	u := &store.Update{ID: "upd1", PoolID: "pol1", Name: "big", AgentType: okta.AgentTypeAD, Enabled: true,
		Status: okta.JobInProgress, TargetVersion: "1.1.0"}
	agents := make(map[string]*store.Agent, n)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("agt%017d", i)
		agents[id] = &store.Agent{ID: id, PoolID: "pol1", ClientID: "cli" + id[3:], Name: fmt.Sprintf("dc%06d.example.com", i),
			Type: okta.AgentTypeAD, Version: "1.0.0", LastConnection: now, OperationalStatus: okta.OperationalStatusOperational}
		ua := store.UpdateAgent{AgentID: id, Position: i, Status: okta.InstanceScheduled}
		if i%10 == 0 {
			ua.Status, ua.Message, ua.JobID, ua.Progress, ua.Phase = okta.InstanceFailed, "install failed", "job"+id[3:], 30, "swap"
		}
		u.Agents = append(u.Agents, ua)
	}
	return u, agents
}

// TestStreamedUpdateAllocatesLittle renders a 50,000-agent update as the
// GET does and checks that it allocates a small fraction of the JSON it
// writes: the reply is never held whole, and an agent costs no more than
// its few pointer fields. (The old handler built every okta.Agent, then
// the marshalled body, then withETag's copy of it: several times the
// body.)
func TestStreamedUpdateAllocatesLittle(t *testing.T) {
	s := newBareServer(t)
	u, agents := memUpdate(50_000)
	r := httptest.NewRequest("GET", "/api/v1/agentPools/pol1/updates/upd1", nil)
	sel, err := selectAgents(u, agentsQuery{})
	if err != nil {
		t.Fatal(err)
	}
	ur := s.newUpdateRender(r, agents)
	var out countingWriter
	render := func() {
		ur.start(&out)
		ur.update(u, &sel)
		ur.flush(true)
	}
	render() // warm up: the render's buffer, the catalog
	out.n = 0
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	render()
	runtime.ReadMemStats(&after)
	if ur.err != nil {
		t.Fatal(ur.err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d agents: %d bytes of JSON, %d bytes allocated (%.1f per agent)", len(u.Agents), out.n, alloc, float64(alloc)/float64(len(u.Agents)))
	if out.n < 200*int64(len(u.Agents)) {
		t.Fatalf("only %d bytes of JSON for %d agents", out.n, len(u.Agents))
	}
	if alloc > uint64(out.n)/4 {
		t.Errorf("rendering allocated %d bytes for %d bytes of JSON; want under a quarter", alloc, out.n)
	}
	// The same bytes as the marshalled view, a few agents being enough.
	small, smallAgents := memUpdate(30)
	sel, _ = selectAgents(small, agentsQuery{})
	var buf bytes.Buffer
	ur = s.newUpdateRender(r, smallAgents)
	ur.start(&buf)
	ur.update(small, &sel)
	ur.flush(true)
	want, _ := json.Marshal(s.updateView(r, small, smallAgents))
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("streamed update differs from the marshalled view:\n got %s\nwant %s", buf.Bytes(), want)
	}
}

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

var _ io.Writer = (*countingWriter)(nil)
