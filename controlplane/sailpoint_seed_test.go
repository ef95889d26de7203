package controlplane_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/controlplane/store"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// TestSeedExampleRequestIsTaken posts the SailPoint seed's own example
// request verbatim (dated 2020-01-01, years from the server's clock): it
// is taken, and the host's clock skew shows in the Agent Pools API and in
// /metrics.
func TestSeedExampleRequestIsTaken(t *testing.T) {
	f := newFleet(t)
	h := f.host("dc1", "1.0.0") // registers ad-agent
	example, err := os.ReadFile(filepath.Join("testdata", "sailpoint-status-request.json"))
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	r := f.beatRaw(h.secret, h.id, string(example))
	if r.status != 200 {
		t.Fatalf("the seed's example request: %d %s", r.status, r.body)
	}
	var rep sailpoint.StatusReply
	r.decode(t, &rep)
	if rep.Status != sailpoint.StatusNormal || rep.Type == nil || *rep.Type != sailpoint.TypeCCG {
		t.Errorf("reply status %q type %v", rep.Status, rep.Type)
	}

	want := f.clock.Now().Sub(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)).Seconds()
	var pools []okta.AgentPool
	f.do("GET", "/api/v1/agentPools", f.read, "").decode(t, &pools)
	if len(pools) != 1 || len(pools[0].Agents) != 1 {
		t.Fatalf("pools = %+v", pools)
	}
	if got := pools[0].Agents[0].ClockSkewSeconds; got == nil || math.Abs(*got-want) > 0.001 {
		t.Errorf("clockSkewSeconds = %v, want %.0f", got, want)
	}
	if !strings.Contains(string(f.do("GET", "/api/v1/agentPools", f.read, "").body), `"clockSkewSeconds":`) {
		t.Error("the agent view lacks clockSkewSeconds")
	}

	// A host on time: skew 0.
	f.clock.Advance(time.Minute)
	f.beat(h)
	pools = nil
	f.do("GET", "/api/v1/agentPools", f.read, "").decode(t, &pools)
	if got := pools[0].Agents[0].ClockSkewSeconds; got == nil || *got != 0 {
		t.Errorf("clockSkewSeconds of a host on time = %v, want 0", got)
	}

	resp, err := http.Get(f.env.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	for _, w := range []string{
		"poolserver_heartbeat_clock_skew_seconds_count 3",              // registration, the example, on time
		`poolserver_heartbeat_clock_skew_seconds_bucket{le="0.1"} 2`,   // registration and on time
		`poolserver_heartbeat_clock_skew_seconds_bucket{le="86400"} 2`, // not the example
		`poolserver_heartbeat_clock_skew_seconds_bucket{le="+Inf"} 3`,  // the example
		fmt.Sprintf("poolserver_hosts_clock_skew_max_seconds %d", 0),   // the host is on time now
	} {
		if !strings.Contains(body, w) {
			t.Errorf("/metrics lacks %q:\n%s", w, grepPoolserver(body))
		}
	}
}

// TestReplyHasEverySeedField decodes real replies (with a job and
// without) and checks every field of the seed's response example
// (testdata/sailpoint-status-response.json) is present with the seed's
// JSON type, clusterType keeps the seed's meaning, and the pool type is
// under poolType.
func TestReplyHasEverySeedField(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "sailpoint-status-response.json"))
	if err != nil {
		t.Fatal(err)
	}
	var seed any
	if err := json.Unmarshal(raw, &seed); err != nil {
		t.Fatal(err)
	}
	f := newFleet(t)
	f.publish("1.1.0")
	h := f.host("dc1", "1.0.0")
	idle := f.beatRaw(h.secret, h.id, f.body(h))
	if r := f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates", f.manage, `{"targetVersion":"1.1.0"}`); r.status != 201 {
		t.Fatalf("create update: %d %s", r.status, r.body)
	}
	f.tick()
	busy := f.beatRaw(h.secret, h.id, f.body(h))
	for name, r := range map[string]reply{"without a job": idle, "with a job": busy} {
		t.Run(name, func(t *testing.T) {
			if r.status != 200 {
				t.Fatalf("heartbeat: %d %s", r.status, r.body)
			}
			var got any
			dec := json.NewDecoder(bytes.NewReader(r.body))
			dec.UseNumber()
			if err := dec.Decode(&got); err != nil {
				t.Fatal(err)
			}
			for _, p := range sameShape("", seed, got) {
				t.Error(p)
			}
			var rep sailpoint.StatusReply
			r.decode(t, &rep)
			cfg := rep.Body.Configuration
			if cfg[sailpoint.ConfigPoolType] != "AD" || cfg[sailpoint.ConfigClusterType] == "AD" {
				t.Errorf("poolType %q, clusterType %q: want the pool type under poolType only", cfg[sailpoint.ConfigPoolType], cfg[sailpoint.ConfigClusterType])
			}
			if rep.Body.Warnings == nil || len(rep.Body.Warnings) != 0 {
				t.Errorf("warnings = %#v, want an empty array", rep.Body.Warnings)
			}
			if rep.Body.ClusterJobCount != len(rep.Body.Jobs) {
				t.Errorf("clusterJobCount %d for %d jobs", rep.Body.ClusterJobCount, len(rep.Body.Jobs))
			}
		})
	}
	if !strings.Contains(string(busy.body), `"managedProcessConfiguration"`) {
		t.Fatalf("the second reply carries no job: %s", busy.body)
	}
}

// mapKeys are objects of the seed whose keys are names (a managed
// process each), not fields: each value is checked against the seed's first.
var mapKeys = []string{"managedProcessConfiguration"}

// nullable are the fields the seed allows to be null though its example
// has a value: the client type ("CCG, VA, INTERNAL, IIQ_HARVESTER, null").
var nullable = []string{".type"}

// sameShape lists where got lacks a field of want or has it with another
// JSON type. A null in want matches anything; an array in want matches
// any array whose items have the shape of want's first item.
func sameShape(path string, want, got any) []string {
	if want == nil || got == nil && slices.Contains(nullable, path) {
		return nil
	}
	kind := func(v any) string {
		switch v.(type) {
		case nil:
			return "null"
		case string:
			return "string"
		case json.Number, float64:
			return "number"
		case bool:
			return "boolean"
		case []any:
			return "array"
		case map[string]any:
			return "object"
		}
		return fmt.Sprintf("%T", v)
	}
	if kind(want) != kind(got) {
		return []string{fmt.Sprintf("%s: %s, want %s", path, kind(got), kind(want))}
	}
	var out []string
	switch w := want.(type) {
	case map[string]any:
		g := got.(map[string]any)
		if slices.Contains(mapKeys, path[strings.LastIndex(path, ".")+1:]) {
			var first any
			for _, v := range w {
				first = v
				break
			}
			for k, v := range g {
				out = append(out, sameShape(path+"."+k, first, v)...)
			}
			return out
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				out = append(out, fmt.Sprintf("%s.%s: missing", path, k))
				continue
			}
			out = append(out, sameShape(path+"."+k, wv, gv)...)
		}
	case []any:
		if len(w) == 0 {
			return nil
		}
		for i, gv := range got.([]any) {
			out = append(out, sameShape(fmt.Sprintf("%s[%d]", path, i), w[0], gv)...)
		}
	}
	return out
}

// syncBuffer is a log sink tests read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTypeMismatchIsNotSilent: a host in a Radius pool reports an agent
// typed "RADIUS" (and one typed LDAP). The reply warns, the server logs
// it once however many heartbeats, and the pool lists the agents with
// TYPE_MISMATCH without counting them as the pool's.
func TestTypeMismatchIsNotSilent(t *testing.T) {
	var logs syncBuffer
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&logs), zap.InfoLevel))
	f := newFleetLog(t, log)
	ctx := context.Background()
	radius := &store.Pool{ID: store.NewID("pol"), Name: "radius", Type: okta.AgentTypeRadius, CreatedAt: f.clock.Now()}
	if err := f.st.CreatePool(ctx, radius); err != nil {
		t.Fatal(err)
	}
	secret, c, err := controlplane.CreateClient(ctx, f.st, radius.ID, "", f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	body := func(agents ...sailpoint.AgentReport) string {
		req := sailpoint.StatusRequest{Status: sailpoint.StatusNormal, Timestamp: f.clock.Now().Format(time.RFC3339Nano),
			Body: sailpoint.ClientBody{Hostname: "rad1", OS: "linux", Arch: "amd64",
				Agents: append(agents, sailpoint.AgentReport{Name: "poolagent", Type: "poolagent", Version: "0.3.0"})}}
		b, _ := json.Marshal(req)
		return string(b)
	}
	wrong := body(sailpoint.AgentReport{Name: "radius-agent", Type: "RADIUS", Version: "2.0.0"},
		sailpoint.AgentReport{Name: "ldap-agent", Type: "LDAP", Version: "1.0.0"})
	for i := range 3 {
		f.clock.Advance(30 * time.Second)
		r := f.beatRaw(secret, c.ID, wrong)
		if r.status != 200 {
			t.Fatalf("heartbeat %d: %d %s", i, r.status, r.body)
		}
		var rep sailpoint.StatusReply
		r.decode(t, &rep)
		if len(rep.Body.Warnings) != 2 || !strings.HasPrefix(rep.Body.Warnings[0], "TYPE_MISMATCH: ") ||
			!strings.Contains(rep.Body.Warnings[0], `"RADIUS"`) || !strings.Contains(rep.Body.Warnings[0], `"Radius"`) ||
			!strings.Contains(rep.Body.Warnings[1], `"LDAP"`) {
			t.Fatalf("heartbeat %d: warnings = %q", i, rep.Body.Warnings)
		}
	}
	if n := strings.Count(logs.String(), "is not its pool's type"); n != 2 {
		t.Errorf("mismatch logged %d times over 3 heartbeats, want once per agent (2):\n%s", n, logs.String())
	}

	var pools []okta.AgentPool
	f.do("GET", "/api/v1/agentPools?poolType=Radius", f.read, "").decode(t, &pools)
	if len(pools) != 1 || len(pools[0].Agents) != 2 {
		t.Fatalf("Radius pools = %+v", pools)
	}
	a := pools[0].Agents[0]
	if a.Name != "rad1/radius-agent" || a.Type != okta.AgentTypeRadius || a.ReportedType != "RADIUS" || a.Version != "2.0.0" ||
		a.UpdateMessage != "TYPE_MISMATCH: agent type RADIUS is not the pool's type Radius" || a.ID == "" || a.ClockSkewSeconds == nil {
		t.Errorf("mismatched agent = %+v", a)
	}
	if b := pools[0].Agents[1]; b.Type != okta.AgentTypeLDAP || b.UpdateMessage != "TYPE_MISMATCH: agent type LDAP is not the pool's type Radius" {
		t.Errorf("second mismatched agent = %+v", b)
	}
	if pools[0].OperationalStatus != okta.OperationalStatusInactive {
		t.Errorf("pool status %s: mismatched agents must not count", pools[0].OperationalStatus)
	}
	// No update can name it.
	if r := f.do("POST", "/api/v1/agentPools/"+radius.ID+"/updates", f.manage,
		`{"targetVersion":"2.1.0","agents":[{"id":"`+a.ID+`"}]}`); r.status < 400 {
		t.Errorf("an update naming the mismatched entry: %d %s", r.status, r.body)
	}

	// Fixed: the warning and the entry go, and the agent is the pool's.
	f.clock.Advance(30 * time.Second)
	r := f.beatRaw(secret, c.ID, body(sailpoint.AgentReport{Name: "radius-agent", Type: "Radius", Version: "2.0.0"}))
	var rep sailpoint.StatusReply
	r.decode(t, &rep)
	if r.status != 200 || rep.Body.Warnings == nil || len(rep.Body.Warnings) != 0 {
		t.Fatalf("after the fix: %d warnings %q", r.status, rep.Body.Warnings)
	}
	pools = nil
	f.do("GET", "/api/v1/agentPools?poolType=Radius", f.read, "").decode(t, &pools)
	if len(pools[0].Agents) != 1 || pools[0].Agents[0].Name != "rad1" || pools[0].Agents[0].UpdateMessage != "" ||
		pools[0].OperationalStatus != okta.OperationalStatusOperational {
		t.Errorf("after the fix: %+v", pools[0])
	}
}
