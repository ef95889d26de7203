package windows_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestSelfUpdateUnderWine: poolagent.exe 1.0.0 installs a signed
// poolagent.exe 2.0.0 over itself and exits with 10; the test, as the
// supervisor docs/agent.md describes (Wine's SCM runs no recovery
// actions), runs `poolagent.exe run` again; the new binary confirms, and
// the self-update job ends FINISHED on the host.
func TestSelfUpdateUnderWine(t *testing.T) {
	needWine(t)
	s := newServer(t)
	h := s.newHost("winself", "")
	h.start(t)
	s.waitHeartbeats("winself")

	v2 := filepath.Join(tempDir(t), "poolagent.exe")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := buildAgent(ctx, v2, "2.0.0"); err != nil {
		t.Fatal(err)
	}
	if err := s.srv.Publish(s.ctx, s.keys, "poolagent", "2.0.0", "windows", "amd64", v2, "GA"); err != nil {
		t.Fatal(err)
	}
	s.eventually(3*time.Minute, "poolagent 2.0.0 connected", func() (bool, error) {
		st := h.status(t)
		return st != nil && st.Version == "2.0.0" && st.Connected, nil
	})
	var state, outcome string
	s.eventually(2*time.Minute, "the self-update job FINISHED", func() (bool, error) {
		st := h.status(t)
		if st == nil {
			return false, nil // restarting
		}
		for _, j := range st.Jobs {
			if j.Name == "poolagent" {
				state, outcome = j.State, fmt.Sprintf("%s/%s %s (version %s)", j.State, j.UpdateStatus, j.UpdateMessage, j.Version)
			}
		}
		if state == "FAILED" {
			return false, fmt.Errorf("the self-update job ended %s", outcome)
		}
		return state == "FINISHED", nil
	})
	if v := h.installedVersion(t); v != "1.0.0" {
		t.Errorf("the managed agent is %q after poolagent's self-update, want 1.0.0 untouched", v)
	}
}
