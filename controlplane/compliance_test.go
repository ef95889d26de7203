package controlplane_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
)

// mixedFleet is a pool (latest 1.2.0, minimalSupportedVersion 1.0.0) whose
// six hosts are in every compliance state: dc1 on latest, dc2 outdated, dc3
// below the minimum (so updating: the engine's minimalSupportedVersion
// update gives it a job), dc4 outdated and degraded, dc5 on latest but
// silent, dc6 holding a job of an operator's update.
func mixedFleet(t *testing.T) (*fleet, map[string]string) {
	t.Helper()
	f := newFleet(t)
	f.publish("1.1.0")
	f.publish("1.2.0")
	f.settings(`{"minimalSupportedVersion":"1.0.0","maxUnavailable":10}`)
	hosts := []*host{f.host("dc1", "1.2.0"), f.host("dc2", "1.1.0"), f.host("dc3", "0.9.0"), f.host("dc4", "1.1.0"),
		f.host("dc5", "1.2.0"), f.host("dc6", "1.1.0")}
	hosts[3].status = sailpoint.StatusWarning // DEGRADED
	f.clock.Advance(2 * time.Minute)          // dc5 stays silent: INACTIVE after 3 x 30 s
	for i, h := range hosts {
		if i != 4 {
			f.beat(h)
		}
	}
	var pools []okta.AgentPool
	f.do("GET", "/api/v1/agentPools", f.read, "").decode(t, &pools)
	ids := map[string]string{}
	for _, a := range pools[0].Agents {
		ids[a.Name] = a.ID
	}
	f.createUpdate(f.pool.ID, fmt.Sprintf(`{"targetVersion":"1.2.0","agents":[{"id":%q}]}`, ids["dc6"]))
	f.tick()
	if rep := f.beat(hosts[5]); len(rep.Body.Jobs) != 1 {
		t.Fatalf("dc6 got %d jobs, want 1", len(rep.Body.Jobs))
	}
	return f, ids
}

// TestPoolComplianceAPI reads a pool's compliance: the counts of hosts on
// several versions and in several states, the non-compliant hosts page by
// page, and its errors.
func TestPoolComplianceAPI(t *testing.T) {
	f, ids := mixedFleet(t)
	path := "/api/v1/agentPools/" + f.pool.ID + "/compliance"
	r := f.do("GET", path, f.read, "")
	if r.status != http.StatusOK {
		t.Fatalf("GET compliance: %d %s", r.status, r.body)
	}
	var c okta.PoolCompliance
	r.decode(t, &c)
	want := okta.ComplianceCounts{Latest: 2, Updating: 2, Outdated: 2, BelowMinimum: 1, Unreachable: 1, Degraded: 1, Total: 6, NonCompliant: 5}
	if c.Counts != want {
		t.Errorf("counts %+v, want %+v", c.Counts, want)
	}
	if c.PoolID != f.pool.ID || c.LatestVersion != "1.2.0" || c.MinimalSupportedVersion != "1.0.0" || c.AgentType != okta.AgentTypeAD {
		t.Errorf("pool fields: %+v", c)
	}
	wantList := []string{
		"dc2 1.1.0 OPERATIONAL [outdated]",
		"dc3 0.9.0 OPERATIONAL [updating belowMinimum]",
		"dc4 1.1.0 DEGRADED [outdated degraded]",
		"dc5 1.2.0 INACTIVE [latest unreachable]",
		"dc6 1.1.0 OPERATIONAL [updating]",
	}
	var got []string
	for _, a := range c.NonCompliant {
		got = append(got, fmt.Sprintf("%s %s %s %v", a.Name, a.Version, a.OperationalStatus, a.States))
		if a.ID != ids[a.Name] {
			t.Errorf("%s: id %s, want %s", a.Name, a.ID, ids[a.Name])
		}
	}
	if strings.Join(got, "\n") != strings.Join(wantList, "\n") {
		t.Errorf("non-compliant:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantList, "\n"))
	}

	// Pages of two follow the Link header; the counts are on every page.
	var paged []string
	next := path + "?limit=2"
	pages := 0
	for next != "" {
		r := f.do("GET", next, f.read, "")
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", next, r.status, r.body)
		}
		var p okta.PoolCompliance
		r.decode(t, &p)
		if p.Counts != want {
			t.Errorf("page %d counts %+v", pages, p.Counts)
		}
		for _, a := range p.NonCompliant {
			paged = append(paged, a.Name)
		}
		pages++
		next = ""
		for _, l := range r.header.Values("Link") {
			if strings.HasSuffix(l, `rel="next"`) {
				next = strings.TrimPrefix(l[strings.Index(l, "<")+1:strings.Index(l, ">")], f.env.srv.URL)
			}
		}
		if pages > 5 {
			t.Fatal("the pages do not end")
		}
	}
	if pages != 3 || strings.Join(paged, ",") != "dc2,dc3,dc4,dc5,dc6" {
		t.Errorf("%d pages of %v, want 3 pages of dc2..dc6", pages, paged)
	}

	for _, e := range []struct {
		method, path, auth string
		status             int
		code               string
	}{
		{"GET", "/api/v1/agentPools/nope/compliance", f.read, http.StatusNotFound, okta.CodeNotFound},
		{"GET", path + "?limit=0", f.read, http.StatusBadRequest, okta.CodeValidation},
		{"GET", path + "?limit=x&after=-1", f.read, http.StatusBadRequest, okta.CodeValidation},
		{"GET", path, "", http.StatusUnauthorized, okta.CodeAuthentication},
		{"POST", path, f.manage, http.StatusMethodNotAllowed, okta.CodeMethodNotAllowed},
	} {
		r := f.do(e.method, e.path, e.auth, "")
		if r.status != e.status || r.okta(t).ErrorCode != e.code {
			t.Errorf("%s %s: %d %s, want %d %s", e.method, e.path, r.status, r.body, e.status, e.code)
		}
	}
}

// TestPoolHostsMetrics: /metrics carries each pool's compliance counts.
func TestPoolHostsMetrics(t *testing.T) {
	f, _ := mixedFleet(t)
	resp, err := http.Get(f.env.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	for st, n := range map[string]int{"latest": 2, "updating": 2, "outdated": 2, "unknown": 0, "belowMinimum": 1,
		"unreachable": 1, "degraded": 1, "total": 6} {
		want := fmt.Sprintf(`poolserver_pool_hosts{pool=%q,state=%q} %d`, f.pool.ID, st, n)
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", grepPoolserver(body))
	}
}
