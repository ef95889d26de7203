package windows_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/internal/e2e"
)

// TestRolloutAndRollbackUnderWine: poolagent.exe enrolls, heartbeats,
// installs a signed windows/amd64 release of its supervised agent after a
// health check, rolls a failing release back, and answers `status` through
// the local API with the token file it wrote.
func TestRolloutAndRollbackUnderWine(t *testing.T) {
	needWine(t)
	s := newServer(t)
	h := s.newHost("win1", "")
	h.start(t)
	s.waitHeartbeats("win1")

	var st = h.status(t)
	s.eventually(60*time.Second, "status through the local API", func() (bool, error) {
		st = h.status(t)
		return st != nil && st.Connected, nil
	})
	if st.Version != "1.0.0" || agentVersion(st, "ad-agent") != "1.0.0" {
		t.Errorf("status: %+v", st)
	}
	tok, err := os.ReadFile(filepath.Join(h.stateDir, "localapi.token"))
	if err != nil || len(strings.TrimSpace(string(tok))) < 16 {
		t.Errorf("local API token file: %q %v", tok, err)
	}
	for _, f := range []string{"client.json", "localapi.token"} {
		if _, err := os.Stat(filepath.Join(h.stateDir, f)); err != nil {
			t.Errorf("state dir: %v", err)
		}
	}

	id := s.create(`{"targetVersion":"1.1.0"}`)
	u := s.waitStatus(id, okta.JobSuccess)
	if len(u.Agents) != 1 || u.Agents[0].UpdateStatus != okta.InstanceSuccess || u.Agents[0].Version != "1.1.0" {
		t.Errorf("after the rollout: %+v", u.Agents)
	}
	if v := h.installedVersion(t); v != "1.1.0" {
		t.Errorf("installed %q after the rollout, want 1.1.0", v)
	}

	// A release whose health check fails is rolled back.
	id = s.create(`{"targetVersion":"1.2.0"}`)
	u = s.waitStatus(id, okta.JobFailed)
	if len(u.Agents) != 1 || u.Agents[0].UpdateStatus != okta.InstanceFailed || !strings.Contains(u.Agents[0].UpdateMessage, "HEALTH") {
		t.Errorf("after the bad release: %+v", u.Agents)
	}
	if v := h.installedVersion(t); v != "1.1.0" {
		t.Errorf("installed %q after the bad release, want 1.1.0 (rolled back)", v)
	}
}

// agentVersion is the version `status` reports for the named agent.
func agentVersion(st *e2e.AgentStatus, name string) string {
	for _, a := range st.Agents {
		if a.Name == name {
			return a.Version
		}
	}
	return ""
}
