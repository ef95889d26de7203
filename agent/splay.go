package agent

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/poolagent/poolagent/agent/state"
)

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
			d.kickSoon()
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
