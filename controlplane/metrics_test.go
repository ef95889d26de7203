package controlplane_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/poolagent/poolagent/api/sailpoint"
)

// TestMetricsAfterARollout: a rollout where one host succeeds and the next
// fails and rolls back shows in /metrics: jobs by outcome (each counted
// once though hosts repeat their reports), hosts by status and version,
// updates by status, heartbeats and API requests by route.
func TestMetricsAfterARollout(t *testing.T) {
	f := newFleet(t)
	f.publish("1.1.0")
	h1, h2 := f.host("dc1", "1.0.0"), f.host("dc2", "1.0.0")
	u := f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0"}`)
	f.tick()
	r1 := f.beat(h1)
	if len(r1.Body.Jobs) != 1 {
		t.Fatalf("host 1 got %d jobs", len(r1.Body.Jobs))
	}
	f.run(h1, r1.Body.Jobs[0], true)
	f.beat(h1) // repeats its FINISHED report
	r2 := f.beat(h2)
	if len(r2.Body.Jobs) != 1 {
		t.Fatalf("host 2 got %d jobs", len(r2.Body.Jobs))
	}
	j := r2.Body.Jobs[0]
	h2.jobs[j.UUID] = sailpoint.JobReport{UUID: j.UUID, State: sailpoint.JobFailed, Progress: 100, UpdateStatus: "Failed",
		UpdateMessage: "HEALTH_CHECK: no success within 5s (rolled back to 1.0.0)"}
	f.beat(h2)
	f.tick()
	f.beat(h2)
	if got := f.update(u.ID).Status; got != "Failed" {
		t.Fatalf("update %s, want Failed", got)
	}
	resp, err := http.Get(f.env.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	body := string(b)
	for _, want := range []string{
		`poolserver_jobs_dispatched_total 2`,
		`poolserver_jobs_finished_total{outcome="succeeded"} 1`,
		`poolserver_jobs_finished_total{outcome="failed"} 1`,
		`poolserver_jobs_finished_total{outcome="cancelled"} 0`,
		`poolserver_jobs_rolled_back_total 1`,
		`poolserver_hosts{operational_status="OPERATIONAL",version="1.1.0"} 1`,
		`poolserver_hosts{operational_status="OPERATIONAL",version="1.0.0"} 1`,
		`poolserver_updates{status="Failed"} 1`,
		`poolserver_updates{status="InProgress"} 0`,
		`poolserver_http_requests_total{code="201",route="POST /api/v1/agentPools/{poolId}/updates"} 1`,
		`poolserver_heartbeats_total{status="200"} `,
		`poolserver_heartbeat_duration_seconds_count `,
		`poolserver_rate_limited_total{limiter="api"} 0`,
		`poolserver_store_duration_seconds_count{op="ApplyHeartbeats"} `,
		`poolserver_fleet_scrape_error 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", grepPoolserver(body))
	}
}

func grepPoolserver(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "poolserver_") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
