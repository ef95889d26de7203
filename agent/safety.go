package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/poolagent/poolagent/agent/config"
	"github.com/poolagent/poolagent/agent/state"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/internal/vercmp"
	"github.com/poolagent/poolagent/internal/version"
	"github.com/poolagent/poolagent/platform/disk"
	"github.com/poolagent/poolagent/platform/process"
	"github.com/poolagent/poolagent/updater"
)

// Precheck failure codes (updateMessage prefixes).
const (
	codePrecheckDisk    = "PRECHECK_DISK"
	codePrecheckVersion = "PRECHECK_VERSION"
	codePrecheckAgent   = "PRECHECK_AGENT"
)

// precheckError is a failed precheck: its code and a sentence for an
// operator. Nothing was downloaded or stopped.
type precheckError struct {
	code string
	msg  string
}

func (e *precheckError) Error() string { return e.msg }

// minFreeMargin is the least margin the default disk precheck adds.
const minFreeMargin = 16 << 20

// freeBytesNeeded is what the disk precheck requires when the job does not
// say: the artifact twice (the download and the rollback copy) plus 10%,
// at least 16 MiB (the server's own formula).
func freeBytesNeeded(size int64) int64 {
	return 2*size + max(size/10, minFreeMargin)
}

// freeSpace is the disk.Free the prechecks use; tests replace it.
var freeSpace = diskFree

var diskFree = disk.Free

// precheck checks a job's Precheck before anything is downloaded: the
// poolagent version, the installed version the update starts from, and
// free space in the state dir and beside the binary it replaces. A job
// without Precheck passes.
func (d *Daemon) precheck(j *state.Job, t updater.Target) error {
	pc := j.Spec.Precheck
	if pc == nil {
		return nil
	}
	if m := pc.MinPoolagentVersion; m != "" {
		v := version.String()
		if v != "dev" && vercmp.Valid(v) && vercmp.Compare(v, m) < 0 {
			return &precheckError{codePrecheckAgent, fmt.Sprintf("poolagent %s runs on this host, the job needs %s or newer: update poolagent first", v, m)}
		}
	}
	if from := pc.FromVersion; from != "" && t.Version != from && (!vercmp.Valid(t.Version) || vercmp.Compare(t.Version, from) != 0) {
		installed := t.Version
		if installed == "" {
			installed = "of an unknown version"
		} else {
			installed = "at " + installed
		}
		return &precheckError{codePrecheckVersion, fmt.Sprintf("%s is %s on this host, the update expected %s: the host changed since the server planned the job", j.Name, installed, from)}
	}
	need := pc.FreeBytes
	mp := j.Spec.ManagedProcessConfiguration[j.Name]
	if need <= 0 && mp.Artifact != nil {
		need = freeBytesNeeded(mp.Artifact.Size)
	}
	if need <= 0 {
		return nil
	}
	// What an earlier attempt already downloaded need not be free again.
	have := d.upd.Downloaded(updaterJob(j))
	dirs := []string{d.cfg.StateDir}
	if t.Path != "" {
		dirs = append(dirs, filepath.Dir(t.Path))
	}
	for i, dir := range dirs {
		free, err := freeSpace(dir)
		if err != nil {
			return &precheckError{codePrecheckDisk, fmt.Sprintf("cannot tell the free space in %s: %v", dir, err)}
		}
		want := need
		if i == 0 {
			want = max(need-have, 0)
		}
		if int64(free) < want {
			return &precheckError{codePrecheckDisk, fmt.Sprintf("%s free in %s, the update needs %s", mib(int64(free)), dir, mib(want))}
		}
	}
	return nil
}

// mib renders a size in MiB for a person.
func mib(n int64) string {
	if n < 1<<20 && n > 0 {
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d MiB", n>>20)
}

// startAfter parses a job's StartAfter; ok is false without one.
func startAfter(j *state.Job) (time.Time, bool, error) {
	if j.Spec.StartAfter == "" {
		return time.Time{}, false, nil
	}
	t, err := time.Parse(time.RFC3339, j.Spec.StartAfter)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("startAfter %q is not RFC 3339: %w", j.Spec.StartAfter, err)
	}
	return t, true, nil
}

// waitSplay holds a job PENDING (phase "splay") until its StartAfter has
// passed by the server's clock. It returns false when jctx ended first.
func (d *Daemon) waitSplay(jctx context.Context, j *state.Job, log *zap.Logger) bool {
	at, ok, err := startAfter(j)
	if err != nil {
		log.Warn("ignoring the job's splay", zap.Error(err))
		return true
	}
	if !ok {
		return true
	}
	announced := false
	for {
		d.mu.Lock()
		wait := at.Sub(d.serverNowLocked(time.Now()))
		wake := d.wake
		if wait > 0 && !announced {
			d.moveLocked(j, stepSplay, 0, "")
			d.saveLocked()
		}
		d.mu.Unlock()
		if wait <= 0 {
			return true
		}
		if !announced {
			announced = true
			log.Info("waiting for the job's start time (splay)", zap.Time("start_after", at), zap.Duration("wait", wait))
			d.kick()
		}
		tm := time.NewTimer(min(wait, time.Minute))
		select {
		case <-jctx.Done():
			tm.Stop()
			return false
		case <-wake: // a reply moved the server's clock
		case <-tm.C:
		}
		tm.Stop()
	}
}

// errRolledBack marks a job rolled back for a reason without its own code.
var errRolledBack = errors.New("rolled back")

// rolledBack marks err as a rolled-back job's (errors.Is errRolledBack)
// without changing its message.
type rolledBack struct{ error }

func (r rolledBack) Is(target error) bool { return target == errRolledBack }
func (r rolledBack) Unwrap() error        { return r.error }

// diagnostics gathers what the failed version printed and its health
// check's last result, for the FAILED report.
func (d *Daemon) diagnostics(ctx context.Context, name string, res updater.Result, err error) *sailpoint.Diagnostics {
	diag := &sailpoint.Diagnostics{Health: res.Health}
	if diag.Health == "" && errors.Is(err, updater.ErrHealthCheck) {
		diag.Health = err.Error()
	}
	if hs := d.svcs[name]; hs != nil {
		diag.Output = hs.failedOutput(ctx)
	}
	diag.Output = tail(diag.Output, sailpoint.MaxDiagnosticsOutput)
	diag.Health = tail(diag.Health, 4<<10)
	if diag.Output == "" && diag.Health == "" {
		return nil
	}
	return diag
}

// tail returns the last n bytes of s as valid UTF-8, cut at a rune start.
func tail(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	for len(s) > 0 && !utf8.RuneStart(s[0]) {
		s = s[1:]
	}
	return s
}

// outputRingSize is how much of a supervised agent's output is kept.
const outputRingSize = sailpoint.MaxDiagnosticsOutput

// hookedService wraps a managed agent's service so the daemon sees the
// swap: a Start after a Stop within a job means the new binary is in place
// and being checked (PendingCompletion). It also keeps what the new
// version printed until the job ends, for diagnostics.
type hookedService struct {
	updater.Service
	// ring holds a supervised agent's recent stdout and stderr (nil for
	// a system service).
	ring *process.Ring

	mu      sync.Mutex
	stopped bool
	onStart func()
	// newAt: when the job started the new version (zero before);
	// failed: the ring's content when the new version was stopped again.
	newAt  time.Time
	failed []byte
	saved  bool
}

// Stop stops the program.
func (h *hookedService) Stop(ctx context.Context) error {
	err := h.Service.Stop(ctx)
	h.mu.Lock()
	h.stopped = err == nil
	if h.onStart != nil && !h.newAt.IsZero() && !h.saved && h.ring != nil {
		// Stopping the new version (a rollback): keep its last words.
		h.failed, h.saved = h.ring.Bytes(), true
	}
	h.mu.Unlock()
	return err
}

// Start starts the program.
func (h *hookedService) Start(ctx context.Context) error {
	h.mu.Lock()
	f := h.onStart
	if !h.stopped {
		f = nil
	}
	if f != nil && h.newAt.IsZero() {
		// The new version's first start in this job.
		h.newAt = time.Now()
		if h.ring != nil {
			h.ring.Reset()
		}
	}
	h.stopped = false
	h.mu.Unlock()
	if f != nil {
		f()
	}
	return h.Service.Start(ctx)
}

// setHook arms (f non-nil) or disarms the swap hook for one job.
func (h *hookedService) setHook(f func()) {
	h.mu.Lock()
	h.onStart, h.stopped = f, false
	if f != nil {
		h.newAt, h.failed, h.saved = time.Time{}, nil, false
	}
	h.mu.Unlock()
}

// failedOutput is what the new version printed: its supervised output,
// or a system service's journal since it was started.
func (h *hookedService) failedOutput(ctx context.Context) string {
	h.mu.Lock()
	newAt, failed, saved := h.newAt, h.failed, h.saved
	h.mu.Unlock()
	if newAt.IsZero() {
		return ""
	}
	if h.ring != nil {
		if !saved {
			failed = h.ring.Bytes()
		}
		return string(failed)
	}
	if s, ok := h.Service.(*process.SystemService); ok {
		out, err := s.Logs(ctx, newAt.Add(-time.Second), 500)
		if err != nil {
			return ""
		}
		return out
	}
	return ""
}

// selfTarget is poolagent's own target.
func (d *Daemon) selfTarget() updater.Target {
	return updater.Target{Name: config.SelfName, Path: d.exe, Version: version.String()}
}
