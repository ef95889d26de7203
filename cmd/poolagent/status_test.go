package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/agent/localapi"
)

// TestPrintStatusShowsWarnings: the server's warnings and the pool type
// are shown to the operator.
func TestPrintStatusShowsWarnings(t *testing.T) {
	now := time.Now()
	var b bytes.Buffer
	printStatus(&b, localapi.Status{Version: "1.0.0", StartedAt: now, ClientID: "mcl1", ClusterID: "pol1", PoolType: "Radius",
		Warnings: []string{"TYPE_MISMATCH: managed agent \"r\" has type \"RADIUS\", which is not its pool's type \"Radius\""}}, now)
	out := b.String()
	for _, want := range []string{"pool pol1 (Radius)", "WARNING:         TYPE_MISMATCH: managed agent \"r\""} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}

// TestPrintStatusShowsHealth: the health watch's last result is shown per
// agent, and a failing one's reason in full.
func TestPrintStatusShowsHealth(t *testing.T) {
	now := time.Now()
	two := 2
	var b bytes.Buffer
	printStatus(&b, localapi.Status{Version: "1.0.0", StartedAt: now, Agents: []localapi.Agent{
		{Name: "ad", Type: "AD", Version: "1.1.0", Health: &localapi.Health{OK: false, CheckedAt: now.Add(-20 * time.Second), Every: time.Minute,
			Reason: "health check failed: GET http://127.0.0.1:8089/healthz: HTTP 503 Service Unavailable", Restarts: &two}},
		{Name: "ldap", Type: "LDAP", Version: "2.0.0", Health: &localapi.Health{OK: true, CheckedAt: now.Add(-5 * time.Second), Every: time.Minute}},
		{Name: "poolagent", Type: "poolagent", Version: "1.0.0"},
	}}, now)
	out := b.String()
	for _, want := range []string{"FAILING 20s ago, 2 restarts", "ok 5s ago",
		"UNHEALTHY:       ad: health check failed: GET http://127.0.0.1:8089/healthz: HTTP 503 Service Unavailable (checked 20s ago, every 1m0s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}
