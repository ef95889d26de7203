package controlplane

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/rollout"
	"github.com/poolagent/poolagent/controlplane/store"
)

// renderTransitions renders the state machine as the markdown table that
// docs/lifecycle.md carries.
func renderTransitions() string {
	var b strings.Builder
	b.WriteString("| action | from | only for scheduled updates | to |\n|---|---|---|---|\n")
	for _, t := range rollout.Transitions {
		from := make([]string, len(t.From))
		for i, s := range t.From {
			from[i] = string(s)
		}
		only := ""
		if t.ScheduledOnly {
			only = "yes"
		}
		b.WriteString("| " + string(t.Action) + " | " + strings.Join(from, ", ") + " | " + only + " | " + string(t.To) + " |\n")
	}
	return b.String()
}

// TestLifecycleDocMatchesCode keeps docs/lifecycle.md true.
func TestLifecycleDocMatchesCode(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "lifecycle.md"))
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- transitions:begin -->\n", "<!-- transitions:end -->"
	s := string(doc)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("docs/lifecycle.md lacks the %q ... %q block", begin, end)
	}
	if got, want := s[i+len(begin):j], renderTransitions(); got != want {
		t.Errorf("docs/lifecycle.md's table is stale; replace it with:\n%s", want)
	}
}

// TestEveryActionFromEveryStatus checks the whole action x status matrix
// against the table: legal pairs move, illegal ones change nothing.
func TestEveryActionFromEveryStatus(t *testing.T) {
	running, failed := okta.JobInProgress, okta.JobFailed
	statuses := []okta.AgentUpdateJobStatus{okta.JobScheduled, running, okta.JobPaused, okta.JobSuccess, failed, okta.JobCancelled}
	actions := []okta.UpdateAction{okta.ActionActivate, okta.ActionDeactivate, okta.ActionPause, okta.ActionResume, okta.ActionStop, okta.ActionRetry, okta.ActionDelete}
	now := time.Unix(1700000000, 0)
	for _, scheduled := range []bool{false, true} {
		for _, st := range statuses {
			for _, a := range actions {
				u := &store.Update{ID: "u", Status: st, ResumeStatus: running,
					Agents: []store.UpdateAgent{{AgentID: "a", Status: okta.InstanceScheduled}, {AgentID: "b", Status: okta.InstanceFailed}}}
				if scheduled {
					u.Schedule = &store.Schedule{Cron: "0 2 15 * *"}
				}
				_, legal := rollout.FindTransition(u, a)
				err := applyAction(u, a, now)
				if legal != (err == nil) {
					t.Errorf("%s from %s (scheduled %v): legal %v but error %v", a, st, scheduled, legal, err)
				}
				if !legal && u.Status != st {
					t.Errorf("%s from %s: an illegal action changed the status to %s", a, st, u.Status)
				}
				if legal && !u.Status.Valid() {
					t.Errorf("%s from %s: led to an invalid status %q", a, st, u.Status)
				}
			}
		}
	}
	// Spot checks of the agents' side.
	u := &store.Update{Status: failed, Agents: []store.UpdateAgent{{Status: okta.InstanceFailed, Message: "x"}, {Status: okta.InstanceSuccess}}}
	if err := applyAction(u, okta.ActionRetry, now); err != nil {
		t.Fatal(err)
	}
	if u.Agents[0].Status != okta.InstanceScheduled || u.Agents[0].Message != "" || u.Agents[1].Status != okta.InstanceSuccess {
		t.Errorf("retry agents = %+v", u.Agents)
	}
}
