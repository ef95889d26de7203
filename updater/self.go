package updater

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/minio/selfupdate"
	"go.uber.org/zap"
)

// SelfName keys poolagent's own entry in the journal.
const SelfName = "poolagent-self"

// SelfState is what RecoverSelf found.
type SelfState struct {
	// Pending: this binary was swapped in and must call ConfirmSelf
	// before ConfirmBy, or the next start restores the previous one.
	Pending   bool
	Version   string
	ConfirmBy time.Time
	Attempts  int
	// RolledBack: an earlier self-update did not confirm and the previous
	// binary runs; Reason says why.
	RolledBack bool
	Reason     string
}

// selfRenameAside selects minio/selfupdate's commit, which renames the
// running executable aside before moving the new one in. Windows needs it:
// a running .exe cannot be replaced, only renamed. Elsewhere rename(2)
// over the running binary is atomic, so the path never goes missing.
var selfRenameAside = runtime.GOOS == "windows"

// ApplySelf installs a fetched poolagent binary over exe (the running
// executable when exe is ""). It reads the artifact whole (minio/selfupdate
// does), which is fine for poolagent's own binary and nothing else. After
// it returns nil the daemon must restart into the new binary; that binary
// must call ConfirmSelf once healthy.
func (u *Updater) ApplySelf(ctx context.Context, f *Fetched, exe string) error {
	op := "self-update to " + f.Job.Artifact.Version
	exe, err := resolveExe(exe)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if e, err := u.jnl.get(SelfName); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	} else if e != nil {
		return fmt.Errorf("%s: self-update %s is still in phase %s: %w", op, e.JobID, e.Phase, ErrBusy)
	}
	oldSum, err := HashFile(exe)
	if err != nil {
		return fmt.Errorf("%s: read running binary: %w", op, err)
	}
	if oldSum == f.SHA256 {
		return nil
	}
	want, err := hex.DecodeString(f.SHA256)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	_, prev := siblings(exe)
	e := &entry{
		JobID: f.Job.ID, Name: SelfName, Target: exe, Staged: selfNewPath(exe), Prev: prev, Self: true,
		To: f.Job.Artifact.Version, OldSHA256: oldSum, NewSHA256: f.SHA256,
	}
	if err := u.advance(e, PhaseSelfSwapping); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := u.selfSwap(f.Path, exe, prev, want); err != nil {
		_ = os.Remove(e.Staged)
		if !exists(exe) && exists(prev) {
			_ = renameSync(prev, exe)
		}
		_ = os.Remove(prev)
		_ = u.jnl.del(SelfName)
		return fmt.Errorf("%s: %w", op, err)
	}
	e.Deadline = u.now().Add(u.cfg.SelfConfirmTimeout).UTC()
	if err := u.advance(e, PhaseSelfUnconfirmed); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	u.log.Info("self-update swapped; restart to run it and confirm", zap.String("version", e.To), zap.Time("confirm_by", e.Deadline))
	return nil
}

// selfSwap stages the new binary with minio/selfupdate (checksum checked
// again on the bytes it writes) and moves it over exe.
func (u *Updater) selfSwap(src, exe, prev string, sum []byte) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	mode := os.FileMode(0o755)
	if st, err := os.Stat(exe); err == nil {
		mode = st.Mode().Perm()
	}
	opts := selfupdate.Options{TargetPath: exe, TargetMode: mode, Checksum: sum, OldSavePath: prev}
	if err := selfupdate.PrepareAndCheckBinary(in, opts); err != nil {
		return fmt.Errorf("stage new binary: %w", err)
	}
	// selfupdate does not fsync what it wrote.
	if err := fsyncPath(selfNewPath(exe)); err != nil {
		return fmt.Errorf("stage new binary: %w", err)
	}
	if err := syncDir(filepath.Dir(exe)); err != nil {
		return err
	}
	_ = os.Remove(prev)
	if selfRenameAside {
		if err := selfupdate.CommitBinary(opts); err != nil {
			if rerr := selfupdate.RollbackError(err); rerr != nil {
				return fmt.Errorf("replace binary: %w; restoring it also failed: %w: %w", err, rerr, ErrRollback)
			}
			return fmt.Errorf("replace binary: %w", err)
		}
		return syncDir(filepath.Dir(exe))
	}
	return swap(exe, selfNewPath(exe), prev, u.hook)
}

// RecoverSelf runs at start, before the daemon does anything else. When
// this binary is an unconfirmed self-update that used up its attempts or
// its deadline, it restores the previous binary and returns
// ErrSelfRolledBack: the daemon must then exit so its service manager
// starts the restored binary.
func (u *Updater) RecoverSelf(ctx context.Context, exe string) (SelfState, error) {
	exe, err := resolveExe(exe)
	if err != nil {
		return SelfState{}, fmt.Errorf("recover self-update: %w", err)
	}
	e, err := u.jnl.get(SelfName)
	if err != nil || e == nil {
		return SelfState{}, err
	}
	if e.Target != exe {
		u.log.Warn("self-update journal names another executable", zap.String("journal", e.Target), zap.String("running", exe))
		exe = e.Target
	}
	if !exists(exe) && exists(e.Prev) {
		// Killed between the two renames of the rename-aside commit.
		if err := renameSync(e.Prev, exe); err != nil {
			return SelfState{}, fmt.Errorf("recover self-update: restore %s: %w: %w", exe, err, ErrRollback)
		}
	}
	sum, err := HashFile(exe)
	if err != nil {
		return SelfState{}, fmt.Errorf("recover self-update: %w", err)
	}
	switch {
	case sum == e.OldSHA256:
		// The swap never happened or was undone: the old binary runs.
		_ = os.Remove(e.Staged)
		_ = os.Remove(e.Target + ".failed")
		_ = removeSync(e.Prev)
		reason := e.Reason
		if reason == "" {
			reason = fmt.Sprintf("interrupted in phase %s", e.Phase)
		}
		if err := u.jnl.del(SelfName); err != nil {
			return SelfState{}, err
		}
		return SelfState{RolledBack: true, Version: e.From, Reason: reason}, nil
	case sum != e.NewSHA256:
		return SelfState{}, fmt.Errorf("recover self-update: %s matches neither the old nor the new binary", exe)
	}
	if e.Phase == PhaseSelfSwapping {
		e.Deadline = u.now().Add(u.cfg.SelfConfirmTimeout).UTC()
	}
	e.Attempts++
	now := u.now()
	if e.Attempts > u.cfg.SelfMaxAttempts || now.After(e.Deadline) {
		why := fmt.Sprintf("version %s did not confirm within %d starts or by %s", e.To, u.cfg.SelfMaxAttempts, e.Deadline.Format(time.RFC3339))
		e.Reason = why
		if err := u.advance(e, PhaseRollingBack); err != nil {
			return SelfState{}, err
		}
		if err := u.restoreSelf(e); err != nil {
			return SelfState{}, fmt.Errorf("recover self-update: %s; restoring the previous binary failed: %w: %w", why, err, ErrRollback)
		}
		u.log.Error("self-update rolled back; exit so the previous binary starts", zap.String("reason", why))
		return SelfState{RolledBack: true, Reason: why}, fmt.Errorf("recover self-update: %s: %w", why, ErrSelfRolledBack)
	}
	if err := u.advance(e, PhaseSelfUnconfirmed); err != nil {
		return SelfState{}, err
	}
	return SelfState{Pending: true, Version: e.To, ConfirmBy: e.Deadline, Attempts: e.Attempts}, nil
}

// restoreSelf puts the previous binary back at the target path. The
// journal entry stays: the previous binary's RecoverSelf sees its own
// hash, clears it and reports the rollback.
func (u *Updater) restoreSelf(e *entry) error {
	if !exists(e.Prev) {
		return fmt.Errorf("previous binary %s is gone", e.Prev)
	}
	if selfRenameAside {
		// The running binary can only be moved aside, not overwritten.
		failed := e.Target + ".failed"
		_ = os.Remove(failed)
		if err := os.Rename(e.Target, failed); err != nil {
			return err
		}
		if err := renameSync(e.Prev, e.Target); err != nil {
			_ = os.Rename(failed, e.Target)
			return err
		}
		return nil
	}
	return renameSync(e.Prev, e.Target)
}

// ConfirmSelf commits a self-update: call it after the new binary's first
// good heartbeat. It is a no-op when no self-update is pending.
func (u *Updater) ConfirmSelf(ctx context.Context, exe string) error {
	exe, err := resolveExe(exe)
	if err != nil {
		return fmt.Errorf("confirm self-update: %w", err)
	}
	e, err := u.jnl.get(SelfName)
	if err != nil || e == nil {
		return err
	}
	if e.Phase != PhaseSelfUnconfirmed {
		return fmt.Errorf("confirm self-update: journal is in phase %s; run RecoverSelf first: %w", e.Phase, ErrBusy)
	}
	sum, err := HashFile(e.Target)
	if err != nil {
		return fmt.Errorf("confirm self-update: %w", err)
	}
	if sum != e.NewSHA256 {
		return errors.New("confirm self-update: the binary on disk is not the new version")
	}
	if err := removeSync(e.Prev); err != nil {
		u.log.Warn("remove previous binary", zap.Error(err))
	}
	_ = os.Remove(e.Target + ".failed")
	if err := u.jnl.del(SelfName); err != nil {
		return err
	}
	u.log.Info("self-update confirmed", zap.String("version", e.To), zap.String("exe", exe))
	return nil
}

func resolveExe(exe string) (string, error) {
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return "", err
		}
	}
	if p, err := filepath.EvalSymlinks(exe); err == nil {
		exe = p
	}
	return filepath.Abs(exe)
}

// selfNewPath is where minio/selfupdate stages the new binary.
func selfNewPath(exe string) string {
	return filepath.Join(filepath.Dir(exe), "."+filepath.Base(exe)+".new")
}

func fsyncPath(p string) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
