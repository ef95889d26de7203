package controlplane_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/controlplane"
)

// TestAuthzMatrix sends every route every kind of credential and checks
// exactly the expected status.
func TestAuthzMatrix(t *testing.T) {
	f := newFleet(t)
	f.publish("1.1.0")
	h := f.host("dc1", "1.0.0")
	ctx := context.Background()
	expired, _, _ := controlplane.CreateToken(ctx, f.st, "old", nil, time.Minute, f.clock.Now().Add(-time.Hour))
	enroll := func() string {
		tok, err := controlplane.CreateEnrollToken(ctx, f.st, f.pool.ID, time.Hour, f.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	pool := "/api/v1/agentPools/" + f.pool.ID
	// A fresh update per manage call, so each lifecycle call is legal.
	newUpdate := func() string {
		return f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0","schedule":{"cron":"0 2 15 * *"}}`).ID
	}

	creds := []string{"none", "bad", "expired", "read", "manage", "client", "enroll"}
	auth := func(kind string) string {
		switch kind {
		case "bad":
			return "SSWS 00notatoken"
		case "expired":
			return "SSWS " + expired
		case "read":
			return "SSWS " + f.read
		case "manage":
			return "SSWS " + f.manage
		case "client":
			return "Bearer " + h.secret
		case "enroll":
			return "Bearer " + enroll()
		}
		return ""
	}
	type route struct {
		name   string
		method string
		path   func() string
		body   string
		want   map[string]int // by credential; missing: 401
	}
	readOK := map[string]int{"read": 200, "manage": 200}
	manageOK := func(code int) map[string]int { return map[string]int{"read": 403, "manage": code} }
	routes := []route{
		{"list pools", "GET", func() string { return "/api/v1/agentPools" }, "", readOK},
		{"list updates", "GET", func() string { return pool + "/updates" }, "", readOK},
		{"get settings", "GET", func() string { return pool + "/updates/settings" }, "", readOK},
		{"compliance", "GET", func() string { return pool + "/compliance" }, "", readOK},
		{"get update", "GET", func() string { return pool + "/updates/" + newUpdate() }, "", readOK},
		{"list releases", "GET", func() string { return "/api/v1/releases" }, "", readOK},
		{"audit log", "GET", func() string { return "/api/v1/auditLog" }, "", readOK},
		{"create update", "POST", func() string { return pool + "/updates" }, `{"targetVersion":"1.1.0"}`, manageOK(201)},
		{"set settings", "POST", func() string { return pool + "/updates/settings" }, `{"continueOnError":true}`, manageOK(201)},
		{"modify update", "POST", func() string { return pool + "/updates/" + newUpdate() }, `{"name":"x"}`, manageOK(201)},
		{"delete update", "DELETE", func() string { return pool + "/updates/" + newUpdate() }, "", manageOK(204)},
		{"pause", "POST", func() string { return pool + "/updates/" + newUpdate() + "/pause" }, "", manageOK(201)},
		{"stop", "POST", func() string { return pool + "/updates/" + newUpdate() + "/stop" }, "", manageOK(201)},
		{"deactivate", "POST", func() string { return pool + "/updates/" + newUpdate() + "/deactivate" }, "", manageOK(201)},
		{"activate", "POST", func() string { return pool + "/updates/" + newUpdate() + "/activate" }, "", manageOK(201)},
		{"heartbeat", "POST", func() string { return "/beta/managed-clients/" + h.id + "/status" }, `{"status":"NORMAL","body":{}}`, map[string]int{"client": 200}},
		{"enroll", "POST", func() string { return "/beta/managed-clients" }, `{"hostname":"new"}`, map[string]int{"enroll": 201}},
		{"artifact", "GET", func() string { return "/artifacts/AD/1.1.0/linux/amd64" }, "", map[string]int{"read": 200, "manage": 200, "client": 200}},
	}
	for _, rt := range routes {
		for _, c := range creds {
			t.Run(rt.name+"/"+c, func(t *testing.T) {
				want, ok := rt.want[c]
				if !ok {
					want = 401
				}
				r := f.do(rt.method, rt.path(), auth(c), rt.body)
				if r.status != want {
					t.Errorf("%s %s with %s: status %d, want %d: %s", rt.method, rt.name, c, r.status, want, r.body)
				}
				if r.status == 401 && strings.HasPrefix(rt.path(), "/api/v1") && !strings.Contains(string(r.body), "errorCode") {
					t.Errorf("401 on the Okta API is not Okta's error object: %s", r.body)
				}
			})
		}
	}

	// A client can never read or write another client's status or jobs.
	other := f.host("dc2", "1.0.0")
	if r := f.beatRaw(h.secret, other.id, f.body(h)); r.status != 403 {
		t.Errorf("posting another client's status: %d", r.status)
	}
	// A job report for another client's job is ignored.
	u := f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0","agents":[]}`)
	f.tick()
	var job string
	var owner, thief *host
	for _, hh := range []*host{h, other} {
		if jobs := f.beat(hh).Body.Jobs; len(jobs) > 0 {
			job, owner = jobs[0].UUID, hh
		}
	}
	if job == "" {
		t.Fatal("no job handed out")
	}
	thief = h
	if owner == h {
		thief = other
	}
	thief.jobs[job] = sailpointFinished(job)
	f.beat(thief)
	f.tick()
	for _, a := range f.update(u.ID).Agents {
		if a.UpdateStatus == "Success" {
			t.Errorf("a report by another client finished the job: %+v", a)
		}
	}
}
