package rollout

import (
	"slices"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
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

// ToResume marks a transition whose target is the status the update had
// when it was paused.
const ToResume okta.AgentUpdateJobStatus = "(status before pause)"

// ToSame marks a transition that keeps the status.
const ToSame okta.AgentUpdateJobStatus = "(unchanged)"

// Transition is one row of the update state machine.
type Transition struct {
	Action okta.UpdateAction
	From   []okta.AgentUpdateJobStatus
	// ScheduledOnly limits the row to updates with a schedule (flow 3).
	ScheduledOnly bool
	To            okta.AgentUpdateJobStatus
}

// Transitions is the update state machine: every legal (action, status)
// pair and where it leads. Anything not listed is refused with a 400 that
// names the current status. docs/lifecycle.md renders this table.
var Transitions = []Transition{
	{Action: okta.ActionActivate, From: []okta.AgentUpdateJobStatus{sched, running, paused}, To: ToSame},
	{Action: okta.ActionActivate, From: []okta.AgentUpdateJobStatus{success, failed, stopped}, ScheduledOnly: true, To: sched},
	{Action: okta.ActionDeactivate, From: []okta.AgentUpdateJobStatus{sched, running, paused}, To: ToSame},
	{Action: okta.ActionDeactivate, From: []okta.AgentUpdateJobStatus{success, failed, stopped}, ScheduledOnly: true, To: ToSame},
	{Action: okta.ActionPause, From: []okta.AgentUpdateJobStatus{sched, running}, To: paused},
	{Action: okta.ActionResume, From: []okta.AgentUpdateJobStatus{paused}, To: ToResume},
	{Action: okta.ActionStop, From: []okta.AgentUpdateJobStatus{sched, running, paused}, To: stopped},
	{Action: okta.ActionRetry, From: []okta.AgentUpdateJobStatus{failed, stopped}, To: running},
	{Action: okta.ActionDelete, From: []okta.AgentUpdateJobStatus{sched, paused, success, failed, stopped}, To: ToSame},
}

// FindTransition returns the row that allows action a on u, if any.
func FindTransition(u *store.Update, a okta.UpdateAction) (Transition, bool) {
	for _, t := range Transitions {
		if t.Action == a && slices.Contains(t.From, u.Status) && (!t.ScheduledOnly || u.Schedule != nil) {
			return t, true
		}
	}
	return Transition{}, false
}

// AllowedFrom lists the statuses from which action is legal, for the error.
func AllowedFrom(a okta.UpdateAction, scheduled bool) []string {
	var out []string
	for _, t := range Transitions {
		if t.Action != a || (t.ScheduledOnly && !scheduled) {
			continue
		}
		for _, s := range t.From {
			out = append(out, string(s))
		}
	}
	return out
}

// Apply moves u through the state machine and updates its agents; it
// reports false, changing nothing, when the status does not allow a.
func Apply(u *store.Update, a okta.UpdateAction, now time.Time) bool {
	t, ok := FindTransition(u, a)
	if !ok {
		return false
	}
	from := u.Status
	switch t.To {
	case ToSame:
	case ToResume:
		u.Status = u.ResumeStatus
		if u.Status == "" {
			u.Status = running
			if u.Schedule != nil {
				u.Status = sched
			}
		}
		u.ResumeStatus = ""
	default:
		u.Status = t.To
	}
	switch a {
	case okta.ActionActivate:
		u.Enabled = true
		if from != u.Status { // a finished scheduled update armed again
			ResetAgents(u, nil, now)
			clearRollback(u)
		}
	case okta.ActionDeactivate:
		u.Enabled = false
	case okta.ActionPause:
		u.ResumeStatus = from
		// Jobs handed out but not started are taken back; running ones
		// finish.
		for i := range u.Agents {
			revoke(&u.Agents[i], now)
		}
	case okta.ActionStop:
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
	case okta.ActionRetry:
		ResetAgents(u, []okta.AgentUpdateInstanceStatus{okta.InstanceFailed, okta.InstanceCancelled}, now)
		doc := ReadDoc(u)
		doc.State.Halted, doc.State.Rollback = "", nil
		WriteDoc(u, doc)
	case okta.ActionResume:
		// A wave held for promotion (manual, or after failures): resuming
		// promotes it.
		doc := ReadDoc(u)
		if doc.State.AwaitingPromotion {
			doc.State.Wave++
			doc.State.WaveDoneAt, doc.State.AwaitingPromotion = nil, false
			WriteDoc(u, doc)
		}
	}
	u.ModifiedAt = now
	return true
}

// ResetAgents schedules again the agents whose status is in which (all
// agents when which is nil).
func ResetAgents(u *store.Update, which []okta.AgentUpdateInstanceStatus, now time.Time) {
	for i := range u.Agents {
		if which == nil || slices.Contains(which, u.Agents[i].Status) {
			ua := &u.Agents[i]
			ua.Status, ua.Message, ua.ModifiedAt = okta.InstanceScheduled, "", now
			clearJob(ua)
		}
	}
}

// clearJob forgets the job an agent's share was handed.
func clearJob(ua *store.UpdateAgent) {
	ua.JobID, ua.JobSeq, ua.DispatchedAt, ua.Progress, ua.Phase = "", 0, time.Time{}, 0, ""
}

// revoke takes back a job that was handed out but not started.
func revoke(ua *store.UpdateAgent, now time.Time) bool {
	if ua.Status == okta.InstanceScheduled && ua.JobID != "" {
		clearJob(ua)
		ua.ModifiedAt = now
		return true
	}
	return false
}
