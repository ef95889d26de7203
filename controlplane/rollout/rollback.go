package rollout

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/controlplane/store"
)

// A fleet rollback takes every host an update moved back to the version it
// ran before, after the update halted (rollout.rollbackOnHalt) or an
// operator stopped it with ?rollback=true. docs/rollout.md ("Fleet
// rollback") describes the rules.

// The states of a fleet rollback (State.Rollback.State).
const (
	RollbackInProgress = "InProgress"
	RollbackDone       = "Done"
)

// RevertJobPrefix starts the id of a revert job: an agent's share of an
// update whose job id has it is being (or was) taken back to its
// FromVersion. The id is the only mark, so no column is added.
const RevertJobPrefix = "revert-"

// Codes of the updateMessage of an agent in a rollback.
const (
	// CodeRollingBack: a revert job is handed out or running.
	CodeRollingBack = "ROLLING_BACK"
	// CodeRolledBack: the host reported the revert finished.
	CodeRolledBack = "ROLLED_BACK"
	// CodeRollbackSkipped: the host was moved but cannot be reverted by
	// the server (no version known from before, or no release of it).
	CodeRollbackSkipped = "ROLLBACK_SKIPPED"
)

// Rollback is a fleet rollback's progress, kept in the update's rollout
// document (so it survives a restart) and shown as rollout.rollback.
type Rollback struct {
	// State is RollbackInProgress or RollbackDone.
	State string `json:"state"`
	// Reason is the halt the rollback follows (rollout.halted).
	Reason string `json:"reason,omitempty"`
	// ToRevert counts the hosts the update moved (found so far: hosts
	// whose jobs were in flight at the halt are counted when they end).
	ToRevert int `json:"toRevert"`
	// Reverting counts revert jobs handed out and not finished.
	Reverting int `json:"reverting"`
	// Reverted counts hosts that reported the revert finished.
	Reverted int `json:"reverted"`
	// Failed counts hosts whose revert failed or was refused, or that
	// cannot be reverted (ROLLBACK_SKIPPED).
	Failed int `json:"failed"`
}

// IsRevertJob reports whether an agent's share holds a revert job.
func IsRevertJob(ua *store.UpdateAgent) bool { return strings.HasPrefix(ua.JobID, RevertJobPrefix) }

// RollbackActive reports whether u has a fleet rollback in progress: the
// engine keeps such an update (even Cancelled) until it is done.
func RollbackActive(u *store.Update) bool {
	if u.Rollout == "" || !strings.Contains(u.Rollout, `"rollback"`) {
		return false
	}
	rb := ReadDoc(u).State.Rollback
	return rb != nil && rb.State == RollbackInProgress
}

// StartRollback starts a fleet rollback of u for reason (an operator's
// stop with ?rollback=true, or an update already Failed); it keeps
// rollout.halted, setting it to reason when empty. It reports false when a
// rollback is already in progress.
func StartRollback(u *store.Update, reason string) bool {
	doc := ReadDoc(u)
	if rb := doc.State.Rollback; rb != nil && rb.State == RollbackInProgress {
		return false
	}
	if doc.State.Halted == "" {
		doc.State.Halted = reason
	}
	doc.State.Rollback = &Rollback{State: RollbackInProgress, Reason: doc.State.Halted}
	WriteDoc(u, doc)
	return true
}

// clearRollback forgets a finished rollback (the update runs again).
func clearRollback(u *store.Update) {
	if doc := ReadDoc(u); doc.State.Rollback != nil {
		doc.State.Rollback = nil
		WriteDoc(u, doc)
	}
}

// haltedOnFailure is rollout.halted of an update without an error budget
// that a failure halted (continueOnError off), when it rolls back.
func haltedOnFailure(failed, total int) string {
	return fmt.Sprintf("FAILED: %d of %d hosts failed and the pool does not continue on error", failed, total)
}

// tracked reports whether the engine keeps u in memory: an active status,
// or a rollback in progress.
func tracked(u *store.Update) bool { return isActive(u.Status) || RollbackActive(u) }

// planRollback runs an update's fleet rollback: it starts one when the
// update halted and its policy asks for it, hands out revert jobs, turns
// the hosts' reports into ROLLED_BACK, and counts. The pass over the rows
// runs only when a row or an agent's version changed, a slot freed while
// hosts wait for one, or a host it waits for connected.
//
// Which hosts: every agent whose share holds a job of this update that
// ended with the agent on another version than its FromVersion (a host
// that reported Success; one that failed or cancelled after the swap and
// still runs the new version). Jobs in flight at the halt finish first
// (the halt lets them, as always) and are judged when they end. Revert
// jobs ignore waves, the error budget, the maintenance window and the
// pool's minOperational and requireAllConnected: the hosts already run the
// release that halted the update. They are bounded by maxUnavailable,
// counting the pool's jobs in flight only (unhealthy hosts do not use up
// slots: they are most likely the hosts the rollback is for).
func (e *Engine) planRollback(ctx context.Context, us *updState, doc *Doc, changed bool, now time.Time) error {
	u := us.u
	rb := doc.State.Rollback
	if rb == nil {
		if u.Status != okta.JobFailed || doc.State.Halted == "" || doc.Policy == nil || !doc.Policy.RollbackOnHalt {
			return nil
		}
		rb = &Rollback{State: RollbackInProgress, Reason: doc.State.Halted}
		doc.State.Rollback = rb
		changed = true
	}
	if rb.State != RollbackInProgress {
		return nil
	}
	ps := us.pool
	room := max(ps.p.Settings.MaxUnavailable, 1) - ps.h.Live
	if !changed && (us.rbPending == 0 || room <= 0) {
		return nil
	}
	var c Rollback
	inflight, offline := 0, 0
	var ready []int // moved hosts that may get their revert now
	for i := range u.Agents {
		ua := &u.Agents[i]
		if ua.JobID == "" {
			continue // never handed a job by this update: not moved
		}
		if IsRevertJob(ua) {
			switch {
			case live(ua):
				c.Reverting++
			case ua.Status == okta.InstanceSuccess:
				msg := fmt.Sprintf("%s: back on %s after %s", CodeRolledBack, ua.FromVersion, rb.Reason)
				e.mutate(us, i, func(ua *store.UpdateAgent) { setAgent(ua, okta.InstanceFailed, msg, now) })
				c.Reverted++
			case ua.Status == okta.InstanceFailed && strings.HasPrefix(ua.Message, CodeRolledBack+":"):
				c.Reverted++
			default:
				c.Failed++ // refused (DOWNGRADE_REFUSED), failed or cancelled
			}
			continue
		}
		if live(ua) {
			inflight++
			continue
		}
		as := e.agents[ua.AgentID]
		moved := false
		switch ua.Status {
		case okta.InstanceSuccess:
			moved = true
		case okta.InstanceFailed, okta.InstanceCancelled:
			// Failed after the swap (a regression) or past it when
			// cancelled: the agent reports another version than before.
			moved = as != nil && as.a.Version != "" && ua.FromVersion != "" && as.a.Version != ua.FromVersion
		}
		if !moved {
			continue
		}
		if ua.FromVersion == "" || as == nil || as.client == nil {
			why := "the version it ran before the update is not known"
			if ua.FromVersion != "" {
				why = "the agent has no host to run the job"
			}
			msg := fmt.Sprintf("%s: %s; %s", CodeRollbackSkipped, why, ua.Message)
			if !strings.HasPrefix(ua.Message, CodeRollbackSkipped+":") {
				e.mutate(us, i, func(ua *store.UpdateAgent) { ua.Message, ua.ModifiedAt = msg, now })
			}
			c.Failed++
			continue
		}
		cs := as.client
		if e.cat == nil || e.cat.Get(string(as.a.Type), ua.FromVersion, cs.c.OS, cs.c.Arch) == nil {
			msg := fmt.Sprintf("%s: no release %s %s for %s/%s in the catalog to go back to", CodeRollbackSkipped, as.a.Type, ua.FromVersion, cs.c.OS, cs.c.Arch)
			if ua.Message != msg {
				e.mutate(us, i, func(ua *store.UpdateAgent) { ua.Message, ua.ModifiedAt = msg, now })
			}
			c.Failed++
			continue
		}
		if !cs.connected {
			offline++ // its reconnection triggers a pass (reclass)
			continue
		}
		ready = append(ready, i)
	}
	// Revert jobs for as many as the pool has slots, in the pool's order.
	n := min(max(room, 0), len(ready))
	if n > 0 {
		if err := e.reserveSeqs(ctx, n); err != nil {
			return err
		}
	}
	for _, i := range ready[:n] {
		seq := e.seqNext
		e.seqNext++
		e.mutate(us, i, func(ua *store.UpdateAgent) {
			ua.JobID, ua.JobSeq, ua.DispatchedAt = RevertJobPrefix+newJobID(), seq, now
			ua.Progress, ua.Phase = 0, ""
			ua.Status, ua.Message, ua.ModifiedAt = okta.InstanceScheduled, CodeRollingBack+": to "+ua.FromVersion+" after "+rb.Reason, now
		})
	}
	c.Reverting += n
	pending := len(ready) - n
	us.rbPending, us.rbOffline = pending, offline
	pending += offline
	c.ToRevert = pending + c.Reverting + c.Reverted + c.Failed
	c.State, c.Reason = RollbackInProgress, rb.Reason
	if inflight == 0 && pending == 0 && c.Reverting == 0 {
		c.State = RollbackDone
	}
	*rb = c
	if c.State == RollbackDone {
		us.hdrDirty = true
	}
	return nil
}

// revertJob is the job of a fleet rollback: back to the version the host
// ran before (allowDowngrade, which the host grants only under its own
// artifacts.allow_revert or allow_downgrade), now, whatever the update's
// window, without splay. It has no precheck.fromVersion: the host's
// revert rule already pins the exact release it may go back to.
func revertJob(clientID string, s *jobSnap, now time.Time, installed []sailpoint.AgentReport) sailpoint.Job {
	in := s.info
	state := sailpoint.JobPending
	if s.running {
		state = sailpoint.JobRunning
	}
	mp := sailpoint.ManagedProcess{Version: s.version, Path: s.typ + "/" + s.agentName, Type: s.typ}
	job := sailpoint.Job{
		UUID: s.id, Cookbook: s.id, State: state, Type: sailpoint.JobTypeUpgrade, TargetID: clientID,
		UpdateID: in.updateID, PoolID: in.poolID, AllowDowngrade: true, Sequence: s.seq,
		Maintenance: &sailpoint.Maintenance{Window: "true", WindowStartTime: now.UTC().Format(time.RFC3339)},
		Precheck:    &sailpoint.Precheck{},
	}
	if s.rel != nil {
		mp.Artifact = artifactOf(s.rel, reportOf(installed, s.agentName))
		size := mp.Artifact.Size
		job.Precheck.FreeBytes = 2*size + max(size/10, 16<<20)
	}
	if in.policy != nil {
		job.DownloadRateLimit = in.policy.DownloadRateLimit
	}
	job.ManagedProcessConfiguration = map[string]sailpoint.ManagedProcess{s.agentName: mp}
	return job
}
