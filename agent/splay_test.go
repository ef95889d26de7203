package agent

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/poolagent/poolagent/agent/state"
	"github.com/poolagent/poolagent/api/sailpoint"
)

func TestSplayFollowsTheServersClock(t *testing.T) {
	d := testDaemon(t)
	// The server's clock is an hour ahead of the host's.
	now := time.Now()
	d.st.ServerTime, d.serverRecv = now.Add(time.Hour), now
	j := &state.Job{UUID: "j1", State: sailpoint.JobPending}
	log := zap.NewNop()

	// Passed by the server's clock (though an hour ahead by the host's).
	j.Spec.StartAfter = now.Add(30 * time.Minute).UTC().Format(time.RFC3339)
	if !d.waitSplay(t.Context(), j, log) || j.Phase == "splay" {
		t.Fatalf("a start time past by the server's clock was waited for (phase %q)", j.Phase)
	}
	// Ahead by the server's clock, though past by the host's: the job
	// waits PENDING in phase splay until its context ends.
	j.Spec.StartAfter = now.Add(time.Hour + 10*time.Minute).UTC().Format(time.RFC3339)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan bool)
	go func() { done <- d.waitSplay(ctx, j, log) }()
	deadline := time.After(10 * time.Second)
	for {
		d.mu.Lock()
		phase := j.Phase
		d.mu.Unlock()
		if phase == "splay" {
			break
		}
		select {
		case ok := <-done:
			t.Fatalf("waitSplay returned %v before the start time", ok)
		case <-deadline:
			t.Fatal("the job never entered phase splay")
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	if <-done {
		t.Error("waitSplay reported the start time reached after its context ended")
	}
	if j.State != sailpoint.JobPending {
		t.Errorf("state %s during the splay; want PENDING", j.State)
	}
}
