package controlplane_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/poolagent/poolagent/api"
	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/controlplane"
)

// jobOf returns the UUID of the one job in a heartbeat reply.
func jobOf(t *testing.T, body []byte) string {
	t.Helper()
	var rep sailpoint.StatusReply
	if err := json.Unmarshal(body, &rep); err != nil || len(rep.Body.Jobs) != 1 {
		t.Fatalf("want one job (%v): %s", err, body)
	}
	return rep.Body.Jobs[0].UUID
}

func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatalf("load api/openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("api/openapi.yaml is not valid OpenAPI 3.0: %v", err)
	}
	return doc
}

// TestOpenAPIListsEveryRoute checks that the router and the document list
// the same routes, and that the server serves the document.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	var inDoc, served []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			inDoc = append(inDoc, method+" "+path)
		}
	}
	for _, rt := range controlplane.Routes() {
		served = append(served, rt.Method+" "+rt.Path)
	}
	slices.Sort(inDoc)
	slices.Sort(served)
	for _, r := range served {
		if !slices.Contains(inDoc, r) {
			t.Errorf("served but not in api/openapi.yaml: %s", r)
		}
	}
	for _, r := range inDoc {
		if !slices.Contains(served, r) {
			t.Errorf("in api/openapi.yaml but not served: %s", r)
		}
	}
	if len(served) < 20 {
		t.Errorf("Routes() lists only %d routes: %v", len(served), served)
	}

	e := newEnv(t)
	resp, err := http.Get(e.srv.URL + "/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, api.OpenAPI) || resp.Header.Get("Content-Type") != "application/yaml" {
		t.Errorf("GET /openapi.yaml: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
}

// TestOpenAPISchemasMatchReplies validates real payloads against the
// document's schemas: an update reply, an error object, a heartbeat
// request and its reply (with a job), and an audit log page.
func TestOpenAPISchemasMatchReplies(t *testing.T) {
	doc := loadOpenAPI(t)
	f := newFleet(t)
	f.publish("1.1.0")
	h := f.host("dc1", "1.0.0")
	f.host("dc2", "1.0.0")
	upd := f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates", f.manage,
		`{"targetVersion":"1.1.0"}`)
	if upd.status != http.StatusCreated {
		t.Fatalf("create update: %d %s", upd.status, upd.body)
	}
	f.tick()
	hbReq := f.body(h)
	hb := f.beatRaw(h.secret, h.id, hbReq)
	if hb.status != http.StatusOK || !strings.Contains(string(hb.body), `"managedProcessConfiguration"`) {
		t.Fatalf("heartbeat: %d %s (want a job)", hb.status, hb.body)
	}
	running := jobOf(t, hb.body)
	h.jobs[running] = sailpoint.JobReport{UUID: running, State: sailpoint.JobRunning, Progress: 40, Phase: "download"}
	f.beat(h)
	var created okta.AgentPoolUpdate
	upd.decode(t, &created)
	inProgress := f.do("GET", "/api/v1/agentPools/"+f.pool.ID+"/updates/"+created.ID, f.read, "")
	if !strings.Contains(string(inProgress.body), `"progress":40`) {
		t.Fatalf("no progress in %s", inProgress.body)
	}
	page := f.do("GET", "/api/v1/agentPools/"+f.pool.ID+"/updates/"+created.ID+"?limit=1&agentStatus=InProgress,Scheduled", f.read, "")
	countsOnly := f.do("GET", "/api/v1/agentPools/"+f.pool.ID+"/updates?agents=none", f.read, "")
	scheduled := f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates", f.manage,
		`{"targetVersion":"1.1.0","schedule":{"cron":"0 2 15 * *","timezone":"Europe/Berlin","duration":120}}`)
	ramped := f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates", f.manage,
		`{"targetVersion":"1.1.0","enabled":false,"rollout":{"maxPerMinute":120,"ramp":{"startPerMinute":6,"factor":1.5,"successesToRaise":5}}}`)
	if !strings.Contains(string(ramped.body), `"currentPerMinute":6`) || !strings.Contains(string(inProgress.body), `"dispatchedAt":"`) {
		t.Fatalf("no currentPerMinute in %s or no dispatchedAt in %s", ramped.body, inProgress.body)
	}
	notFound := f.do("GET", "/api/v1/agentPools/nope/updates", f.read, "")
	invalid := f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates", f.manage, `{"targetVersion":"../x"}`)
	audit := f.do("GET", "/api/v1/auditLog", f.read, "")
	settings := f.do("GET", "/api/v1/agentPools/"+f.pool.ID+"/updates/settings", f.read, "")
	pools := f.do("GET", "/api/v1/agentPools", f.read, "")
	compliance := f.do("GET", "/api/v1/agentPools/"+f.pool.ID+"/compliance", f.read, "")

	cases := []struct {
		name, schema string
		array        bool
		body         []byte
	}{
		{"update reply", "AgentPoolUpdate", false, upd.body},
		{"scheduled update reply", "AgentPoolUpdate", false, scheduled.body},
		{"update with a ramp", "AgentPoolUpdate", false, ramped.body},
		{"update with an agent in progress", "AgentPoolUpdate", false, inProgress.body},
		{"a page of an update's agents", "AgentPoolUpdate", false, page.body},
		{"updates without agents", "AgentPoolUpdate", true, countsOnly.body},
		{"error 404", "Error", false, notFound.body},
		{"error 400", "Error", false, invalid.body},
		{"heartbeat request", "StatusRequest", false, []byte(hbReq)},
		{"heartbeat reply", "StatusReply", false, hb.body},
		{"audit log", "AuditEntry", true, audit.body},
		{"settings", "AgentPoolUpdateSetting", false, settings.body},
		{"pools", "AgentPool", true, pools.body},
		{"compliance", "PoolCompliance", false, compliance.body},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ref := doc.Components.Schemas[c.schema]
			if ref == nil || ref.Value == nil {
				t.Fatalf("no schema %s in api/openapi.yaml", c.schema)
			}
			var v any
			if err := json.Unmarshal(c.body, &v); err != nil {
				t.Fatalf("not JSON: %v: %s", err, c.body)
			}
			items := []any{v}
			if c.array {
				arr, ok := v.([]any)
				if !ok || len(arr) == 0 {
					t.Fatalf("want a non-empty array: %s", c.body)
				}
				items = arr
			}
			for _, it := range items {
				if err := ref.Value.VisitJSON(it); err != nil {
					t.Errorf("%s does not match schema %s: %v\n%s", c.name, c.schema, err, c.body)
				}
			}
		})
	}
	// The schemas are not vacuous: a wrong status is refused.
	var bad map[string]any
	_ = json.Unmarshal(upd.body, &bad)
	bad["status"] = "Sleeping"
	if err := doc.Components.Schemas["AgentPoolUpdate"].Value.VisitJSON(bad); err == nil {
		t.Error("an update with status Sleeping matches the schema")
	}
	_ = json.Unmarshal(upd.body, &bad)
	bad["agentCounts"] = map[string]any{"Sleeping": 1}
	if err := doc.Components.Schemas["AgentPoolUpdate"].Value.VisitJSON(bad); err == nil {
		t.Error("agentCounts with a status Sleeping matches the schema")
	}
	if err := doc.Components.Schemas["Error"].Value.VisitJSON(map[string]any{"errorCode": "E0000007"}); err == nil {
		t.Error("an error object without errorCauses matches the schema")
	}
}
