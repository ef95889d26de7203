package agent

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/poolagent/poolagent/agent/config"
	"github.com/poolagent/poolagent/agent/state"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/internal/version"
	"github.com/poolagent/poolagent/updater"
)

// jobExec is one run of a job's goroutine through its phases.
type jobExec struct {
	d *Daemon
	j *state.Job
	r *jobRun
	// jctx ends when the server cancels the job or the daemon stops;
	// daemonCtx only with the daemon.
	jctx, daemonCtx context.Context
	log             *zap.Logger
	// lock serialises the jobs of j's target.
	lock    *sync.Mutex
	self    bool
	t       updater.Target
	job     updater.Job
	fetched *updater.Fetched
}

// runJob drives one job: prechecks and splay, download (early if
// allowed), wait for the window (and an operator's install under the
// manual policy), swap, check, commit or roll back. jctx ends when the
// server cancels the job or the daemon stops; the swap itself runs to its
// end either way.
func (d *Daemon) runJob(jctx, daemonCtx context.Context, j *state.Job, r *jobRun) {
	x := &jobExec{d: d, j: j, r: r, jctx: jctx, daemonCtx: daemonCtx, lock: d.locks[j.Name], self: j.Name == config.SelfName,
		log: d.log.With(zap.String("job", j.UUID), zap.String("agent", j.Name), zap.String("version", j.Version))}
	for _, phase := range []func() bool{x.target, x.precheck, x.fetchEarly, x.waitWindow, x.fetchInWindow, x.lastLook} {
		if !phase() {
			return
		}
	}
	if x.self {
		x.installSelf()
	} else {
		x.install()
	}
}

// target resolves the job's target; false when the agent is no longer
// configured.
func (x *jobExec) target() bool {
	d, j := x.d, x.j
	if x.self {
		x.t = d.selfTarget()
	} else {
		a, ok := d.cfg.Agent(j.Name)
		if !ok { // the config changed since the job was accepted
			x.fail(fmt.Errorf("%w: no managed agent %q is configured on this host any more", ErrJobRefused, j.Name))
			return false
		}
		d.mu.Lock()
		x.t = d.target(a)
		d.mu.Unlock()
	}
	x.job = d.updaterJobWithSources(j)
	p, err := d.patchOf(j)
	if err != nil {
		x.warnPatch(err)
	}
	x.job.Patch = p
	return true
}

// warnPatch records why the job's patch was not used: the job goes on
// with the full artifact, and its updateMessage says so (PATCH: ...) as
// it runs and once it succeeds.
func (x *jobExec) warnPatch(err error) {
	x.log.Warn("binary patch not used; downloading the full artifact", zap.Error(err))
	d := x.d
	d.mu.Lock()
	defer d.mu.Unlock()
	x.j.Warning = "PATCH: " + err.Error() + "; the full artifact was downloaded instead"
	x.j.UpdateMessage = x.j.Warning
	d.setAgentStatusLocked(x.j)
	d.saveLocked()
	d.kickSoon()
}

// precheck applies the host's downgrade policy, then the job's
// prechecks, before anything is downloaded or stopped; then the splay: no
// download starts before the job's start time. A job past its swap has
// nothing left to check.
func (x *jobExec) precheck() bool {
	allow, err := x.d.checkDowngrade(x.j, x.t, x.log)
	if err != nil {
		x.fail(err)
		return false
	}
	x.job.AllowDowngrade = allow
	if x.j.Swapped {
		return true
	}
	if err := x.d.precheck(x.j, x.t); err != nil {
		x.fail(err)
		return false
	}
	if !x.d.waitSplay(x.jctx, x.j, x.log) {
		x.stopped()
		return false
	}
	return true
}

// fetchEarly downloads and verifies before the window when the config
// allows it.
func (x *jobExec) fetchEarly() bool {
	d := x.d
	d.mu.Lock()
	early := d.cfg.Maintenance.DownloadEarly
	d.mu.Unlock()
	if !early || d.mayInstall(x.j) {
		return true
	}
	d.setStep(x.j, stepDownload)
	if !x.fetch() {
		return false
	}
	d.setStep(x.j, stepWaiting)
	return true
}

// waitWindow waits for the window (and the operator under the manual
// policy).
func (x *jobExec) waitWindow() bool {
	d := x.d
	for {
		d.mu.Lock()
		ok := d.mayInstallLocked(x.j)
		wake := d.wake
		next := d.windows[x.j.UUID].next(time.Now(), d.cfg.Maintenance.MinRemaining.Duration)
		d.mu.Unlock()
		if ok {
			return true
		}
		if next <= 0 || next > time.Minute {
			next = time.Minute
		}
		tm := time.NewTimer(next)
		select {
		case <-x.jctx.Done():
			tm.Stop()
			x.stopped()
			return false
		case <-wake:
		case <-tm.C:
		}
		tm.Stop()
	}
}

// fetchInWindow marks the job RUNNING and downloads what fetchEarly did
// not.
func (x *jobExec) fetchInWindow() bool {
	x.d.setStep(x.j, stepInstall)
	return x.fetched != nil || x.fetch()
}

// lastLook is the last look before the point of no return: a job still
// wanted and still inside its window is marked swapped; past it a cancel
// no longer stops the job. When the window closed meanwhile the job waits
// again (the server takes it back, CANCELLED, or re-opens the window).
func (x *jobExec) lastLook() bool {
	d, j := x.d, x.j
	d.mu.Lock()
	if x.jctx.Err() != nil || !d.mayInstallLocked(j) {
		d.mu.Unlock()
		if x.jctx.Err() != nil {
			x.stopped()
		} else {
			d.setStep(j, stepWaiting)
			d.runJob(x.jctx, x.daemonCtx, j, x.r)
		}
		return false
	}
	d.moveLocked(j, stepSwap, 0, "")
	d.saveLocked()
	d.mu.Unlock()
	d.kickSoon()
	x.log.Info("installing inside the maintenance window")
	return true
}

// installSelf swaps poolagent's own binary and stops the daemon for its
// restart; the new binary confirms the job (handleReply).
func (x *jobExec) installSelf() {
	d, j := x.d, x.j
	actx := context.WithoutCancel(x.daemonCtx)
	x.lock.Lock()
	defer x.lock.Unlock()
	// What runs now becomes poolagent's previous release once the new
	// binary confirms.
	fromSHA, err := updater.HashFile(d.exe)
	if err != nil {
		x.log.Warn("hash the running poolagent binary; no revert to it will be possible", zap.Error(err))
	}
	if err := d.upd.ApplySelf(actx, x.fetched, d.exe); err != nil {
		x.fail(err)
		return
	}
	d.mu.Lock()
	j.FromVersion, j.FromSHA256 = version.String(), fromSHA
	d.moveLocked(j, stepRestart, 0, "")
	d.restart = true
	d.saveLocked()
	d.mu.Unlock()
	x.log.Info("poolagent replaced its binary; restarting", zap.Int("exit_code", ExitRestart))
	d.stop()
}

// install swaps a managed agent's binary, checks the new version and
// commits or rolls back; a failure carries the failed version's
// diagnostics.
func (x *jobExec) install() {
	d, j, t := x.d, x.j, x.t
	actx := context.WithoutCancel(x.daemonCtx)
	x.lock.Lock()
	defer x.lock.Unlock()
	out, _ := t.Service.(*outputService)
	if out != nil {
		out.arm(true)
		defer out.arm(false)
	}
	onPhase := func(p updater.Phase) {
		if t.Service == nil || (p != updater.PhaseHealth && p != updater.PhaseRollingBack) {
			return // without a service nothing starts: no health phase
		}
		if p == updater.PhaseHealth && out != nil {
			out.newVersionStarts()
		}
		// A rollback restarts the restored version: the job shows the
		// health phase until it ends.
		d.mu.Lock()
		d.moveLocked(j, stepHealth, 0, "")
		d.saveLocked()
		d.mu.Unlock()
		d.kickSoon()
	}
	res, err := d.upd.Apply(actx, x.fetched, t, onPhase)
	if err == nil && res.Outcome != updater.OutcomeCommitted {
		err = fmt.Errorf("install %s %s: %s", j.Name, j.Version, res.Outcome)
	}
	if err != nil && res.Outcome == updater.OutcomeRolledBack {
		err = rolledBack{err}
	}
	var diag *sailpoint.Diagnostics
	if err != nil {
		// The new version ran, or tried to: what it printed goes with
		// the FAILED report (gathered before the report can be sent).
		diag = d.diagnostics(actx, j.Name, res, err)
	}
	d.mu.Lock()
	if res.Outcome == updater.OutcomeCommitted {
		d.setAgentVersion(j.Name, res.Version)
		d.rememberPreviousLocked(j.Name, res.PrevVersion, res.PrevSHA256)
		x.log.Info("job succeeded")
	} else if res.Version != "" {
		d.setAgentVersion(j.Name, res.Version)
	}
	if res.Outcome == updater.OutcomeCommitted || res.Outcome == updater.OutcomeRolledBack {
		// Another version runs now: its watch starts afresh.
		d.watchInstalledLocked(j.Name, res.Outcome == updater.OutcomeCommitted, time.Now())
	}
	if err != nil {
		x.log.Error("job failed", zap.Error(err), zap.String("outcome", string(res.Outcome)))
	}
	d.finishLocked(j, err)
	j.Diagnostics = diag
	d.saveLocked()
	d.mu.Unlock()
	d.kick()
}

// fetch downloads and verifies the artifact under the target's lock; the
// download is the first half of the job's progress.
func (x *jobExec) fetch() bool {
	progress := func(p updater.Progress) {
		x.d.mu.Lock()
		x.d.moveLocked(x.j, stepDownload, p.Percent/2, "")
		x.d.mu.Unlock()
	}
	x.lock.Lock()
	f, err := x.d.upd.Fetch(x.jctx, x.job, x.t, progress)
	x.lock.Unlock()
	if err != nil {
		if x.jctx.Err() != nil {
			x.stopped()
		} else {
			x.fail(err)
		}
		return false
	}
	x.fetched = f
	if f.PatchErr != nil {
		x.warnPatch(f.PatchErr)
	}
	return true
}

// stopped ends the goroutine after jctx ended: a server's cancel is
// reported, a shutdown leaves the job to resume at the next start.
func (x *jobExec) stopped() {
	d := x.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if x.r.byServer {
		d.cancelLocked(x.j)
		d.saveLocked()
		d.kick()
	} else {
		x.log.Info("job suspended by shutdown; it resumes at the next start", zap.String("phase", x.j.Phase))
	}
}

// fail ends the job FAILED with err and reports it at once.
func (x *jobExec) fail(err error) {
	x.log.Error("job failed", zap.Error(err))
	d := x.d
	d.mu.Lock()
	d.finishLocked(x.j, err)
	d.saveLocked()
	d.mu.Unlock()
	d.kick()
}
