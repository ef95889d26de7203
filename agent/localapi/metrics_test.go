package localapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestMetrics(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	s := Status{Connected: true, LastHeartbeat: now.Add(-12 * time.Second), HeartbeatsSent: 10, HeartbeatsFailed: 3,
		Agents: []Agent{{Name: "ad-agent", Type: "AD", Version: "1.1.0", UpdateStatus: "Success"}},
		Jobs:   []Job{{State: "RUNNING"}, {State: "FINISHED"}, {State: "FINISHED"}}}
	out := string(Metrics(s, now))
	for _, want := range []string{
		`poolagent_heartbeats_total{result="ok"} 7`,
		`poolagent_heartbeats_total{result="failed"} 3`,
		"poolagent_connected 1",
		"poolagent_last_heartbeat_age_seconds 12.000",
		`poolagent_jobs{state="FINISHED"} 2`,
		`poolagent_jobs{state="PENDING"} 0`,
		`poolagent_agent_info{name="ad-agent",type="AD",version="1.1.0",update_status="Success"} 1`,
		"# TYPE poolagent_heartbeats_total counter",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
	if out := string(Metrics(Status{}, now)); !strings.Contains(out, "poolagent_last_heartbeat_age_seconds -1.000\n") {
		t.Errorf("no heartbeat yet:\n%s", out)
	}
}

type metricsBackend struct{ Backend }

func (metricsBackend) Status() Status { return Status{HeartbeatsSent: 1} }

func TestMetricsRoute(t *testing.T) {
	h := Handler(metricsBackend{}, "", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") ||
		!strings.Contains(rec.Body.String(), `poolagent_heartbeats_total{result="ok"} 1`) {
		t.Errorf("GET /metrics: %d %q %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
	}
}
