package updater

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Outcome is how a job ended.
type Outcome string

// Outcomes of a job.
const (
	// OutcomeCommitted: the new version runs and the previous binary is gone.
	OutcomeCommitted Outcome = "committed"
	// OutcomeRolledBack: the previous version was restored; Result.Err says why.
	OutcomeRolledBack Outcome = "rolled-back"
	// OutcomeCancelled: the job stopped before the swap; nothing changed.
	OutcomeCancelled Outcome = "cancelled"
)

// Result reports a finished job.
type Result struct {
	JobID   string
	Name    string
	Outcome Outcome
	// Version installed now ("" when Recover could not tell).
	Version string
	// Err is why the job did not commit (nil when committed).
	Err error
	// Health is the health check's last result when it failed ("" when it
	// passed or did not run), e.g. "GET http://127.0.0.1:8089/healthz: no
	// success within 30s: last error: HTTP 503".
	Health string
	// PrevVersion and PrevSHA256 are, on a commit that replaced a binary,
	// the version (as the target said; "" if unknown) and SHA-256 (hex) of
	// the binary it replaced, from the journal. Empty when nothing was
	// replaced (the artifact was already installed) or nothing committed.
	PrevVersion string
	PrevSHA256  string
}

// rollbackTimeout bounds a rollback that runs after the job's context was
// cancelled: restoring the previous version must not be skipped.
const rollbackTimeout = 2 * time.Minute

// Apply installs a fetched artifact on t: stop, swap, start, health check,
// then commit or roll back. onPhase (nil: none) hears of each phase as it
// begins. On a rollback the returned error wraps the
// reason (ErrHealthCheck, ErrService, ...) and the previous version runs
// again; if the rollback itself fails the error also wraps ErrRollback.
func (u *Updater) Apply(ctx context.Context, f *Fetched, t Target, onPhase PhaseFunc) (Result, error) {
	a := f.Job.Artifact
	op := "install " + t.Name + " " + a.Version
	res := Result{JobID: f.Job.ID, Name: t.Name, Outcome: OutcomeCancelled, Version: t.Version}
	fail := func(err error) (Result, error) {
		res.Err = fmt.Errorf("%s: %w", op, err)
		return res, res.Err
	}
	if t.Name == "" || t.Path == "" {
		return fail(errors.New("target has no name or path"))
	}
	if e, err := u.jnl.get(t.Name); err != nil {
		return fail(err)
	} else if e != nil {
		return fail(fmt.Errorf("job %s is still in phase %s: %w", e.JobID, e.Phase, ErrBusy))
	}
	mode := t.Mode
	if mode == 0 {
		mode = 0o755
	}
	oldSum, err := HashFile(t.Path)
	if err != nil {
		return fail(fmt.Errorf("read installed binary: %w", err))
	}
	if oldSum == f.SHA256 {
		u.log.Info("artifact already installed", zap.String("target", t.Name), zap.String("version", a.Version))
		res.Outcome, res.Version = OutcomeCommitted, a.Version
		return res, nil
	}
	staged, prev := siblings(t.Path)
	e := &entry{
		JobID: f.Job.ID, Name: t.Name, Target: t.Path, Staged: staged, Prev: prev,
		From: t.Version, To: a.Version, OldSHA256: oldSum, NewSHA256: f.SHA256,
		onPhase: onPhase,
	}
	log := u.log.With(zap.String("job", e.JobID), zap.String("target", t.Name), zap.String("from", e.From), zap.String("to", e.To))

	if err := u.advance(e, PhaseStaging); err != nil {
		return fail(err)
	}
	if err := copyFileSync(f.Path, staged, mode); err != nil {
		return u.abort(ctx, e, t, fmt.Errorf("stage %s: %w", staged, err), false)
	}
	if err := syncDir(dirOf(staged)); err != nil {
		return u.abort(ctx, e, t, fmt.Errorf("stage %s: %w", staged, err), false)
	}

	if err := u.advance(e, PhaseStopping); err != nil {
		return u.abort(ctx, e, t, err, false)
	}
	if t.Service != nil {
		if err := t.Service.Stop(ctx); err != nil {
			return u.abort(ctx, e, t, fmt.Errorf("%w: stop: %w", ErrService, err), true)
		}
	}

	if err := u.advance(e, PhaseSwapping); err != nil {
		return u.abort(ctx, e, t, err, true)
	}
	if err := swap(t.Path, staged, prev, u.hook); err != nil {
		return u.rollback(ctx, e, t, fmt.Errorf("swap: %w", err))
	}
	if err := u.advance(e, PhaseSwapped); err != nil {
		return u.rollback(ctx, e, t, err)
	}
	log.Info("binary swapped; starting the new version")
	return u.finishForward(ctx, e, t)
}

// finishForward starts the swapped-in version, checks it and commits or
// rolls back. Apply and Recover share it.
func (u *Updater) finishForward(ctx context.Context, e *entry, t Target) (Result, error) {
	if err := u.advance(e, PhaseHealth); err != nil {
		return u.rollback(ctx, e, t, err)
	}
	if t.Service != nil {
		if err := t.Service.Start(ctx); err != nil {
			return u.rollback(ctx, e, t, fmt.Errorf("%w: start new version: %w", ErrService, err))
		}
	}
	if err := u.healthCheck(ctx, t.Service, t.Health); err != nil {
		res, rerr := u.rollback(ctx, e, t, err)
		res.Health = strings.TrimPrefix(err.Error(), ErrHealthCheck.Error()+": ")
		return res, rerr
	}
	if err := u.advance(e, PhaseCommitting); err != nil {
		return u.rollback(ctx, e, t, err)
	}
	return u.commit(e)
}

func (u *Updater) commit(e *entry) (Result, error) {
	res := Result{JobID: e.JobID, Name: e.Name, Outcome: OutcomeCommitted, Version: e.To, PrevVersion: e.From, PrevSHA256: e.OldSHA256}
	u.keepPrevious(e) // for a revert without a download (kept.go)
	if err := removeSync(e.Prev); err != nil {
		// The new version runs; a leftover file is only disk space.
		u.log.Warn("remove previous binary", zap.String("path", e.Prev), zap.Error(err))
	}
	_ = os.Remove(e.Staged)
	if err := u.jnl.del(e.Name); err != nil {
		return res, err
	}
	u.log.Info("update committed", zap.String("job", e.JobID), zap.String("target", e.Name), zap.String("version", e.To))
	return res, nil
}

// abort ends a job that failed before the swap: the target was never
// touched; drop the staged copy and restart the service if it was stopped.
func (u *Updater) abort(ctx context.Context, e *entry, t Target, why error, restart bool) (Result, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	op := "install " + e.Name + " " + e.To
	res := Result{JobID: e.JobID, Name: e.Name, Outcome: OutcomeCancelled, Version: e.From}
	_ = removeSync(e.Staged)
	_ = os.Remove(e.Prev)
	var errs []error
	if restart && t.Service != nil {
		if err := t.Service.Start(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%w: restart the installed version: %w", ErrRollback, err))
		}
	}
	if err := u.jnl.del(e.Name); err != nil {
		errs = append(errs, err)
	}
	res.Err = fmt.Errorf("%s: %w", op, errors.Join(append([]error{why}, errs...)...))
	u.log.Warn("update abandoned before the swap", zap.String("job", e.JobID), zap.String("target", e.Name), zap.Error(res.Err))
	return res, res.Err
}

// rollback restores the previous binary after a failure past the swap.
func (u *Updater) rollback(ctx context.Context, e *entry, t Target, why error) (Result, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	op := "install " + e.Name + " " + e.To
	e.Reason, e.Code = why.Error(), Code(why)
	if err := u.advance(e, PhaseRollingBack); err != nil {
		u.log.Error("journal the rollback", zap.Error(err))
	}
	res := Result{JobID: e.JobID, Name: e.Name, Outcome: OutcomeRolledBack, Version: e.From}
	var errs []error
	if t.Service != nil {
		if err := t.Service.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop the new version: %w", err))
		}
	}
	if exists(e.Prev) {
		if err := renameSync(e.Prev, e.Target); err != nil {
			errs = append(errs, fmt.Errorf("restore %s from %s: %w", e.Target, e.Prev, err))
		}
	}
	_ = removeSync(e.Staged)
	if t.Service != nil {
		if err := t.Service.Start(ctx); err != nil {
			errs = append(errs, fmt.Errorf("start the restored version: %w", err))
		}
	}
	if len(errs) > 0 {
		// Keep the journal: the next Recover tries again.
		res.Err = fmt.Errorf("%s: %w (rolling back: %w: %w)", op, why, ErrRollback, errors.Join(errs...))
		u.log.Error("rollback failed; the host needs an operator", zap.String("job", e.JobID), zap.String("target", e.Name), zap.Error(res.Err))
		return res, res.Err
	}
	if err := u.jnl.del(e.Name); err != nil {
		u.log.Error("clear journal after rollback", zap.Error(err))
	}
	res.Err = fmt.Errorf("%s: %w (rolled back to %s)", op, why, versionOr(e.From))
	u.log.Warn("update rolled back", zap.String("job", e.JobID), zap.String("target", e.Name), zap.Error(res.Err))
	return res, res.Err
}

// advance records phase p durably, then tells Apply's caller and runs the
// test hook.
func (u *Updater) advance(e *entry, p Phase) error {
	e.Phase = p
	if err := u.jnl.put(e); err != nil {
		return err
	}
	if e.onPhase != nil {
		e.onPhase(p)
	}
	u.hook(p)
	return nil
}

// swap replaces target with staged, keeping the old binary as prev. The
// hard link means the rename frees no blocks (fast, and nothing to lose if
// the power fails), and prev is the rollback copy. hook (nil: none) runs
// between the link and the rename.
func swap(target, staged, prev string, hook func(Phase)) error {
	if err := os.Remove(prev); err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := os.Link(target, prev); err != nil {
		return fmt.Errorf("keep previous binary: %w", err)
	}
	if hook != nil {
		hook(phaseLinked)
	}
	if err := os.Rename(staged, target); err != nil {
		_ = os.Remove(prev)
		return err
	}
	return syncDir(dirOf(target))
}

// phaseLinked is a test-only boundary inside PhaseSwapping.
const phaseLinked Phase = "swapping/linked"

// Recover finishes or rolls back every job the journal shows unfinished
// (poolagent's own binary excepted: see RecoverSelf). lookup maps a target
// name to its service and health check; a name it does not know is
// rolled back without service control. Call it once at start, before any
// new job.
func (u *Updater) Recover(ctx context.Context, lookup func(name string) (Target, bool)) ([]Result, error) {
	names, err := u.jnl.names()
	if err != nil {
		return nil, fmt.Errorf("recover: %w", err)
	}
	var results []Result
	var errs []error
	for _, n := range names {
		e, err := u.jnl.get(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("recover: %w", err))
			continue
		}
		if e == nil || e.Self {
			continue
		}
		t, ok := lookup(e.Name)
		if !ok {
			u.log.Warn("journal names an unknown target; restoring files only", zap.String("target", e.Name))
			t = Target{Name: e.Name, Path: e.Target}
		}
		t.Path = e.Target // the journal knows which file it touched
		r, err := u.recoverOne(ctx, e, t)
		results = append(results, r)
		if err != nil && errors.Is(err, ErrRollback) {
			errs = append(errs, err)
		}
	}
	return results, errors.Join(errs...)
}

func (u *Updater) recoverOne(ctx context.Context, e *entry, t Target) (Result, error) {
	u.log.Info("recovering unfinished job", zap.String("job", e.JobID), zap.String("target", e.Name), zap.String("phase", string(e.Phase)))
	interrupted := fmt.Errorf("interrupted in phase %s (agent restarted)", e.Phase)
	switch e.Phase {
	case PhaseStaging:
		return u.abort(ctx, e, t, interrupted, false)
	case PhaseStopping:
		return u.abort(ctx, e, t, interrupted, true)
	case PhaseSwapping:
		sum, err := HashFile(e.Target)
		if err == nil && sum == e.NewSHA256 && exists(e.Prev) {
			// The rename happened; the crash hit before the journal said so.
			if err := syncDir(dirOf(e.Target)); err != nil {
				return u.rollback(ctx, e, t, err)
			}
			return u.finishForward(ctx, e, t)
		}
		return u.abort(ctx, e, t, interrupted, true)
	case PhaseSwapped, PhaseHealth:
		// The new binary is in place but unproven: start and check it.
		return u.finishForward(ctx, e, t)
	case PhaseCommitting:
		if t.Service != nil {
			if err := t.Service.Start(ctx); err != nil {
				u.log.Warn("start committed version", zap.Error(err))
			}
		}
		return u.commit(e)
	case PhaseRollingBack:
		return u.rollback(ctx, e, t, reasonError(e))
	}
	return u.rollback(ctx, e, t, fmt.Errorf("unknown journal phase %q", e.Phase))
}

// Code maps an error to a stable failure code for the control plane:
// "signature", "untrusted-key", "metadata", "hash", "size", "too-large",
// "stalled", "download", "downgrade-refused", "patch", "service", "health-check",
// "rollback", "busy", or "internal".
func Code(err error) string {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return "internal"
}

// codes is ordered: the most specific first (a failed rollback matters
// more than why it started).
var codes = []struct {
	code string
	err  error
}{
	{"rollback", ErrRollback},
	{"self-rolled-back", ErrSelfRolledBack},
	{"untrusted-key", ErrUntrustedKey},
	{"metadata", ErrMetadata},
	{"signature", ErrSignature},
	{"hash", ErrHash},
	{"size", ErrSize},
	{"disk-full", ErrDiskFull},
	{"too-large", ErrTooLarge},
	{"stalled", ErrStalled},
	{"downgrade-refused", ErrDowngrade},
	{"patch", ErrPatch},
	{"health-check", ErrHealthCheck},
	{"service", ErrService},
	{"busy", ErrBusy},
	{"download", ErrDownload},
}

// reasonError rebuilds a journalled rollback reason, keeping its class.
func reasonError(e *entry) error {
	for _, c := range codes {
		if c.code == e.Code {
			return fmt.Errorf("%s: %w", strings.TrimSpace(e.Reason), c.err)
		}
	}
	if e.Reason == "" {
		return errors.New("rollback interrupted (agent restarted)")
	}
	return errors.New(e.Reason)
}

func versionOr(v string) string {
	if v == "" {
		return "the previous version"
	}
	return v
}
