package controlplane

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
)

// Action is an operator's action on an update.
type Action string

// The lifecycle actions of the Agent Pools API.
const (
	ActionActivate   Action = "activate"
	ActionDeactivate Action = "deactivate"
	ActionPause      Action = "pause"
	ActionResume     Action = "resume"
	ActionStop       Action = "stop"
	ActionRetry      Action = "retry"
	ActionDelete     Action = "delete"
)

// Shorthands for the table below.
const (
	sched   = okta.JobScheduled
	running = okta.JobInProgress
	paused  = okta.JobPaused
	success = okta.JobSuccess
	failed  = okta.JobFailed
	stopped = okta.JobCancelled
)

// toResume marks a transition whose target is the status the update had
// when it was paused.
const toResume okta.AgentUpdateJobStatus = "(status before pause)"

// toSame marks a transition that keeps the status.
const toSame okta.AgentUpdateJobStatus = "(unchanged)"

// transition is one row of the update state machine.
type transition struct {
	action Action
	from   []okta.AgentUpdateJobStatus
	// scheduledOnly limits the row to updates with a schedule (flow 3).
	scheduledOnly bool
	to            okta.AgentUpdateJobStatus
}

// Transitions is the update state machine: every legal (action, status)
// pair and where it leads. Anything not listed is refused with a 400 that
// names the current status. docs/lifecycle.md renders this table.
var Transitions = []transition{
	{action: ActionActivate, from: []okta.AgentUpdateJobStatus{sched, running, paused}, to: toSame},
	{action: ActionActivate, from: []okta.AgentUpdateJobStatus{success, failed, stopped}, scheduledOnly: true, to: sched},
	{action: ActionDeactivate, from: []okta.AgentUpdateJobStatus{sched, running, paused}, to: toSame},
	{action: ActionDeactivate, from: []okta.AgentUpdateJobStatus{success, failed, stopped}, scheduledOnly: true, to: toSame},
	{action: ActionPause, from: []okta.AgentUpdateJobStatus{sched, running}, to: paused},
	{action: ActionResume, from: []okta.AgentUpdateJobStatus{paused}, to: toResume},
	{action: ActionStop, from: []okta.AgentUpdateJobStatus{sched, running, paused}, to: stopped},
	{action: ActionRetry, from: []okta.AgentUpdateJobStatus{failed, stopped}, to: running},
	{action: ActionDelete, from: []okta.AgentUpdateJobStatus{sched, paused, success, failed, stopped}, to: toSame},
}

// findTransition returns the row that allows action on u, if any.
func findTransition(u *store.Update, a Action) (transition, bool) {
	for _, t := range Transitions {
		if t.action == a && slices.Contains(t.from, u.Status) && (!t.scheduledOnly || u.Schedule != nil) {
			return t, true
		}
	}
	return transition{}, false
}

// allowedFrom lists the statuses from which action is legal, for the error.
func allowedFrom(a Action, scheduled bool) []string {
	var out []string
	for _, t := range Transitions {
		if t.action != a || (t.scheduledOnly && !scheduled) {
			continue
		}
		for _, s := range t.from {
			out = append(out, string(s))
		}
	}
	return out
}

// illegal is the 400 for an action the current status does not allow.
func illegal(u *store.Update, a Action) *oktaError {
	return newOktaError(http.StatusBadRequest, okta.CodeValidation,
		fmt.Sprintf("Api validation failed: cannot %s update %s while its status is %s", a, u.ID, u.Status),
		fmt.Sprintf("status: %s is allowed only when the status is one of %s; the update's status is %s",
			a, strings.Join(allowedFrom(a, u.Schedule != nil), ", "), u.Status))
}

// applyAction moves u through the state machine and updates its agents.
func applyAction(u *store.Update, a Action, now time.Time) error {
	t, ok := findTransition(u, a)
	if !ok {
		return illegal(u, a)
	}
	from := u.Status
	switch t.to {
	case toSame:
	case toResume:
		u.Status = u.ResumeStatus
		if u.Status == "" {
			u.Status = running
			if u.Schedule != nil {
				u.Status = sched
			}
		}
		u.ResumeStatus = ""
	default:
		u.Status = t.to
	}
	switch a {
	case ActionActivate:
		u.Enabled = true
		if from != u.Status { // a finished scheduled update armed again
			resetAgents(u, nil, now)
		}
	case ActionDeactivate:
		u.Enabled = false
	case ActionPause:
		u.ResumeStatus = from
		// Jobs handed out but not started are taken back; running ones
		// finish.
		for i := range u.Agents {
			ua := &u.Agents[i]
			if ua.Status == okta.InstanceScheduled && ua.JobID != "" {
				ua.JobID, ua.JobSeq, ua.DispatchedAt, ua.Progress, ua.Phase = "", 0, time.Time{}, 0, ""
				ua.ModifiedAt = now
			}
		}
	case ActionStop:
		// Agents not yet handed a job are cancelled here; agents already
		// running one report Cancelled themselves (or finish, if they are
		// past the swap).
		for i := range u.Agents {
			if u.Agents[i].Status == okta.InstanceScheduled {
				u.Agents[i].Status = okta.InstanceCancelled
				u.Agents[i].Message = "stopped by an operator before it started"
				u.Agents[i].ModifiedAt = now
			}
		}
	case ActionRetry:
		resetAgents(u, []okta.AgentUpdateInstanceStatus{okta.InstanceFailed, okta.InstanceCancelled}, now)
		doc := readRollout(u)
		doc.State.Halted = ""
		writeRollout(u, doc)
	case ActionResume:
		// A wave held for promotion (manual, or after failures): resuming
		// promotes it.
		doc := readRollout(u)
		if doc.State.AwaitingPromotion {
			doc.State.Wave++
			doc.State.WaveDoneAt, doc.State.AwaitingPromotion = nil, false
			writeRollout(u, doc)
		}
	}
	u.ModifiedAt = now
	return nil
}

// resetAgents schedules again the agents whose status is in which (all
// agents when which is nil).
func resetAgents(u *store.Update, which []okta.AgentUpdateInstanceStatus, now time.Time) {
	for i := range u.Agents {
		if which == nil || slices.Contains(which, u.Agents[i].Status) {
			ua := &u.Agents[i]
			ua.Status, ua.Message, ua.ModifiedAt = okta.InstanceScheduled, "", now
			ua.JobID, ua.JobSeq, ua.DispatchedAt, ua.Progress, ua.Phase = "", 0, time.Time{}, 0, ""
		}
	}
}
