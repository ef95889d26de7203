package agent

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"github.com/poolagent/poolagent/agent/state"
	"github.com/poolagent/poolagent/api/appliance"
	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
)

// jobStep is a change in a job's life on this host. jobSteps says what
// each one reports; moveLocked is the only place a job's phase, state,
// update status, progress and message change.
type jobStep int

// The steps of a job, in the order a job usually takes them.
const (
	stepReceived  jobStep = iota // accepted from a reply, nothing done yet
	stepSplay                    // waiting for the job's startAfter
	stepDownload                 // fetching and verifying, before or inside the window
	stepWaiting                  // waiting for the window (fetched early, or the window closed before the swap)
	stepInstall                  // inside the window: fetching if not done yet, then installing
	stepSwap                     // past the point of no return: stopping the agent, swapping its binary
	stepHealth                   // the new version started, its health check
	stepRestart                  // poolagent swapped its own binary and restarts
	stepConfirm                  // the new poolagent binary waits for its first good heartbeat
	stepUnswapped                // Recover undid a swap that never happened: the job runs again
	stepFinished                 // committed
	stepFailed                   // failed, rolled back or refused
	stepCancelled                // cancelled by the server before the swap
)

// jobStepInfo is what a job reports once it took a step. An empty State or
// UpdateStatus keeps the job's own: the same step happens before the
// window (PENDING) and inside it (RUNNING).
type jobStepInfo struct {
	// Host says what happens on the host, for docs/agent.md.
	Host string
	// Phase is the job's phase on the wire ("" for none).
	Phase        string
	State        sailpoint.JobState
	UpdateStatus okta.AgentUpdateInstanceStatus
	// Progress is the least progress (percent) the job shows from this
	// step on; ProgressDoc overrides its rendering in docs/agent.md.
	Progress    int
	ProgressDoc string
	// Message is the updateMessage of a terminal step when the caller
	// gives none.
	Message string
}

// cancelledByServer is the updateMessage of a job the server cancelled.
const cancelledByServer = "CANCELLED_BY_SERVER: the server cancelled the job before the swap; nothing was changed"

// jobSteps is the host job's state table. docs/agent.md holds its
// rendering (TestDocsJobStateTable).
var jobSteps = [...]jobStepInfo{
	stepReceived: {Host: "received, not started", State: sailpoint.JobPending, UpdateStatus: okta.InstanceScheduled, ProgressDoc: "0"},
	stepSplay:    {Host: "waiting for its `startAfter` (splay)", Phase: "splay"},
	stepDownload: {Host: "downloading and verifying (before the window too, with `download_early`)", Phase: "download",
		ProgressDoc: "up to 50 (half the download's)"},
	stepWaiting: {Host: "waiting for the window (and, with `policy = \"manual\"`, the local install action)", Phase: "waiting"},
	stepInstall: {Host: "inside the window: downloading if not done yet, then installing", Phase: "download",
		State: sailpoint.JobRunning, UpdateStatus: okta.InstanceInProgress},
	stepSwap: {Host: "stopping the agent, swapping its binary (a cancel no longer stops the job)", Phase: "swap",
		State: sailpoint.JobRunning, UpdateStatus: okta.InstanceInProgress, Progress: 50},
	stepHealth: {Host: "new version started, health check", Phase: "health",
		State: sailpoint.JobRunning, UpdateStatus: okta.InstancePendingCompletion, Progress: 75},
	stepRestart: {Host: "poolagent swapped its own binary and restarts", Phase: "restart",
		State: sailpoint.JobRunning, UpdateStatus: okta.InstancePendingCompletion, Progress: 80},
	stepConfirm: {Host: "the new poolagent binary waits for its first good heartbeat", Phase: "confirm",
		State: sailpoint.JobRunning, UpdateStatus: okta.InstancePendingCompletion, Progress: 90},
	stepUnswapped: {Host: "a restart found the swap not begun: the job runs again"},
	stepFinished:  {Host: "committed", State: sailpoint.JobFinished, UpdateStatus: okta.InstanceSuccess, Progress: 100},
	stepFailed:    {Host: "failed, rolled back, or refused", State: sailpoint.JobFailed, UpdateStatus: okta.InstanceFailed, Progress: 100},
	stepCancelled: {Host: "cancelled by the server before the swap", State: sailpoint.JobCancelled, UpdateStatus: okta.InstanceCancelled,
		Message: cancelledByServer},
}

// taskStatus maps a job's state to its appliance API Task status.
var taskStatus = map[sailpoint.JobState]appliance.TaskStatus{
	sailpoint.JobPending:   appliance.TaskQueued,
	sailpoint.JobRunning:   appliance.TaskRunning,
	sailpoint.JobFinished:  appliance.TaskSuccess,
	sailpoint.JobFailed:    appliance.TaskFailed,
	sailpoint.JobCancelled: appliance.TaskCancelled,
}

// moveLocked makes j take step s: its phase, state, update status and
// progress (at least progress, which the download reports) as jobSteps
// says; a terminal step also sets the updateMessage (msg, else the step's)
// and the finish time. The agent's own report follows its job's status.
// It reports whether the job's state or update status changed.
func (d *Daemon) moveLocked(j *state.Job, s jobStep, progress int, msg string) bool {
	info := jobSteps[s]
	prevState, prevStatus, prevMsg := j.State, j.UpdateStatus, j.UpdateMessage
	j.Phase = info.Phase
	j.Progress = max(j.Progress, info.Progress, progress)
	if info.State != "" {
		if info.State == sailpoint.JobRunning && j.State == sailpoint.JobPending {
			j.Started = time.Now()
		}
		j.State = info.State
	}
	if info.UpdateStatus != "" {
		j.UpdateStatus = string(info.UpdateStatus)
	}
	switch s {
	case stepSwap:
		j.Swapped = true
	case stepUnswapped:
		j.Swapped = false
	}
	terminal := j.Terminal()
	if terminal {
		j.Finished, j.UpdateMessage = time.Now(), cmp.Or(msg, info.Message, j.Warning)
	}
	changed := j.State != prevState || j.UpdateStatus != prevStatus
	if changed || terminal || j.UpdateMessage != prevMsg {
		d.setAgentStatusLocked(j)
	}
	return changed
}

// jobStateTable renders jobSteps as docs/agent.md's Markdown table.
func jobStateTable() string {
	var b strings.Builder
	b.WriteString("| on the host | `phase` | job `state` | `updateStatus` | appliance Task | progress |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	code := func(s string) string {
		if s == "" {
			return "(as before)"
		}
		return "`" + s + "`"
	}
	for _, info := range jobSteps {
		phase := "`" + info.Phase + "`"
		if info.Phase == "" {
			phase = "-"
		}
		progress := cmp.Or(info.ProgressDoc, "(as before)")
		if info.Progress > 0 {
			progress = fmt.Sprint(info.Progress)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", info.Host, phase, code(string(info.State)),
			code(string(info.UpdateStatus)), code(string(taskStatus[info.State])), progress)
	}
	return b.String()
}
