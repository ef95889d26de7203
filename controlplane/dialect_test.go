package controlplane_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
)

// Official clients' User-Agent headers.
const (
	uaPython = "OpenAPI-Generator/1.0.0/python" // okta 3.x, Okta's Python SDK
	uaGo     = "okta-sdk-golang/5.0.2 golang/go1.23.0 linux/amd64"
	uaJava   = "okta-sdk-java/20.0.0 java/21.0.2 Linux/6.8.0"
)

// doUA sends one request with a User-Agent and returns the reply.
func (e *env) doUA(method, path, ua, body string) reply {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "SSWS "+e.manage)
	req.Header.Set("User-Agent", ua)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// lastConnections collects every agent's raw lastConnection in a reply:
// a pool, an update, or a list of either.
func lastConnections(t *testing.T, body []byte) []json.RawMessage {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	var objs []any
	if list, ok := v.([]any); ok {
		objs = list
	} else {
		objs = []any{v}
	}
	var out []json.RawMessage
	for _, o := range objs {
		agents, _ := o.(map[string]any)["agents"].([]any)
		for _, a := range agents {
			lc, ok := a.(map[string]any)["lastConnection"]
			if !ok {
				t.Fatalf("an agent has no lastConnection: %s", body)
			}
			b, _ := json.Marshal(lc)
			out = append(out, b)
		}
	}
	return out
}

// TestLastConnectionPerClient checks that every route returning agents
// serves lastConnection as Unix milliseconds to the Python SDK and as an
// RFC 3339 date-time to everyone else (docs/api.md).
func TestLastConnectionPerClient(t *testing.T) {
	e := newEnv(t)
	p, agents := e.pool(okta.AgentTypeAD, "ad", "dc1", "dc2")
	seen := agents[0].LastConnection.UTC()
	wantMillis := seen.UnixMilli()

	u := e.createUpdate(p.ID, `{"targetVersion":"1.1.0"}`)
	base := "/api/v1/agentPools/" + p.ID + "/updates"
	routes := []struct{ name, method, path, body string }{
		{"list pools", "GET", "/api/v1/agentPools", ""},
		{"list pools of a type", "GET", "/api/v1/agentPools?poolType=AD", ""},
		{"list updates", "GET", base, ""},
		{"get update", "GET", base + "/" + u.ID, ""},
		{"create update", "POST", base, `{"targetVersion":"1.2.0"}`},
		{"modify update", "POST", base + "/" + u.ID, `{"name":"renamed"}`},
		{"pause", "POST", base + "/" + u.ID + "/pause", ""},
		{"resume", "POST", base + "/" + u.ID + "/resume", ""},
		{"deactivate", "POST", base + "/" + u.ID + "/deactivate", ""},
		{"activate", "POST", base + "/" + u.ID + "/activate", ""},
	}
	clients := []struct {
		name, ua string
		millis   bool
	}{
		{"python", uaPython, true},
		{"python, another generator version", "OpenAPI-Generator/3.4.1/python", true},
		{"python, lower case among other tokens", "my-script/2 openapi-generator/1.0.0/Python", true},
		{"go", uaGo, false},
		{"java", uaJava, false},
		{"Go's default", "Go-http-client/1.1", false},
		{"none", "", false},
		{"another generator language", "OpenAPI-Generator/1.0.0/go", false},
		{"generator without a version", "OpenAPI-Generator//python", false},
		{"python-like but not the generator", "python-requests/2.31.0", false},
	}
	for _, c := range clients {
		for _, rt := range routes {
			t.Run(c.name+"/"+rt.name, func(t *testing.T) {
				r := e.doUA(rt.method, rt.path, c.ua, rt.body)
				if r.status != 200 && r.status != 201 {
					t.Fatalf("%s %s: %d %s", rt.method, rt.path, r.status, r.body)
				}
				if !strings.Contains(r.header.Get("Vary"), "User-Agent") {
					t.Errorf("Vary = %q; the body depends on User-Agent", r.header.Get("Vary"))
				}
				lcs := lastConnections(t, r.body)
				if len(lcs) < 2 {
					t.Fatalf("want the pool's 2 agents, got %d: %s", len(lcs), r.body)
				}
				for _, lc := range lcs {
					if c.millis {
						var ms int64
						if err := json.Unmarshal(lc, &ms); err != nil || ms != wantMillis {
							t.Errorf("lastConnection = %s, want the integer %d", lc, wantMillis)
						}
						continue
					}
					var s string
					if err := json.Unmarshal(lc, &s); err != nil {
						t.Fatalf("lastConnection = %s, want an RFC 3339 string", lc)
					}
					if got, err := time.Parse(time.RFC3339, s); err != nil || !got.Equal(seen) || !strings.HasSuffix(s, "Z") {
						t.Errorf("lastConnection = %s, want %s in UTC", s, seen.Format(time.RFC3339Nano))
					}
				}
			})
		}
	}
	// The Python form keeps every other field: the same reply decodes to
	// the same update apart from lastConnection.
	py, def := e.doUA("GET", base+"/"+u.ID, uaPython, ""), e.doUA("GET", base+"/"+u.ID, uaGo, "")
	var a, b map[string]any
	json.Unmarshal(py.body, &a)
	json.Unmarshal(def.body, &b)
	for _, m := range []map[string]any{a, b} {
		for _, ag := range m["agents"].([]any) {
			delete(ag.(map[string]any), "lastConnection")
		}
	}
	if ja, jb := mustJSON(t, a), mustJSON(t, b); ja != jb {
		t.Errorf("the Python form differs beyond lastConnection:\n%s\n%s", ja, jb)
	}
	if py.header.Get("ETag") == def.header.Get("ETag") {
		t.Errorf("both forms carry ETag %s", py.header.Get("ETag"))
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
