package e2e_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
)

// TestRampSpacesTheStarts: five real hosts, room for all of them at once
// (maxUnavailable 5), and a ramp from 6 to 12 hosts a minute. The server's
// own dispatchedAt times show the spacing: one start per 10 s until two
// hosts succeeded, never more than two in any 10 s after.
func TestRampSpacesTheStarts(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 5)
	f.api("POST", "/api/v1/agentPools/"+f.pool+"/updates/settings", `{"maxUnavailable":5}`, nil)
	id := f.create(`{"targetVersion":"1.1.0","rollout":{"maxPerMinute":12,"ramp":{"startPerMinute":6,"factor":2,"successesToRaise":2}}}`)
	sawWait := false
	var u okta.AgentPoolUpdate
	f.eventually(150*time.Second, "the ramped update succeeds", func() (bool, error) {
		u = f.update(id)
		for _, a := range u.Agents {
			if a.UpdateStatus == okta.InstanceScheduled && a.UpdateMessage == "waiting: the ramp's start rate is used up (see rollout.currentPerMinute)" {
				sawWait = true
			}
		}
		return u.Status == okta.JobSuccess, nil
	})
	if !sawWait {
		t.Error(`no waiting host said "waiting: the ramp's start rate is used up (see rollout.currentPerMinute)"`)
	}
	var view struct {
		CurrentPerMinute int `json:"currentPerMinute"`
	}
	if err := json.Unmarshal(u.Rollout, &view); err != nil || view.CurrentPerMinute != 12 {
		t.Errorf("after 5 successes the rollout view is %s, want currentPerMinute 12", u.Rollout)
	}
	var starts []time.Time
	for _, a := range u.Agents {
		if a.DispatchedAt == nil {
			t.Fatalf("agent %s succeeded without a dispatchedAt", a.Name)
		}
		starts = append(starts, *a.DispatchedAt)
	}
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	var offsets []string
	for _, s := range starts {
		offsets = append(offsets, s.Sub(starts[0]).Round(100*time.Millisecond).String())
	}
	t.Logf("hosts started at %s", strings.Join(offsets, ", "))
	// Before any success the rate is 6 a minute: one host per 10 s.
	if gap := starts[1].Sub(starts[0]); gap < 10*time.Second {
		t.Errorf("the second host started %s after the first, want at least 10 s at 6 a minute (starts %v)", gap, starts)
	}
	// At most 12 a minute: at most two in any 10 s.
	for i := range starts {
		n := 0
		for _, s := range starts[:i+1] {
			if starts[i].Sub(s) < 10*time.Second {
				n++
			}
		}
		if n > 2 {
			t.Errorf("%d hosts started within 10 s up to %s (starts %v)", n, starts[i], starts)
		}
	}
	if got := strings.Join(f.versions(), ","); got != "1.1.0,1.1.0,1.1.0,1.1.0,1.1.0" {
		t.Errorf("installed = %s", got)
	}
}
