package agent

import (
	"context"
	"sync"
	"time"

	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/platform/process"
	"github.com/poolagent/poolagent/updater"
)

// outputRingSize is how much of a supervised agent's output is kept.
const outputRingSize = sailpoint.MaxDiagnosticsOutput

// outputService is a managed agent's service that keeps, during a job,
// what the new version printed, for the diagnostics of a failed update:
// newVersionStarts (the health phase) marks where its output begins, and
// a Stop after it (the rollback) keeps its last words before the restored
// version writes again.
type outputService struct {
	updater.Service
	// ring holds a supervised agent's recent stdout and stderr (nil for
	// a system service).
	ring *process.Ring

	mu sync.Mutex
	// armed: a job is installing on this service.
	armed bool
	// newAt: when the job started the new version (zero before);
	// failed: the ring's content when the new version was stopped again.
	newAt  time.Time
	failed []byte
	saved  bool
}

// Stop stops the program.
func (o *outputService) Stop(ctx context.Context) error {
	err := o.Service.Stop(ctx)
	o.mu.Lock()
	if o.armed && !o.newAt.IsZero() && !o.saved && o.ring != nil {
		// Stopping the new version (a rollback): keep its last words.
		o.failed, o.saved = o.ring.Bytes(), true
	}
	o.mu.Unlock()
	return err
}

// arm starts (on) or ends keeping the output of one job.
func (o *outputService) arm(on bool) {
	o.mu.Lock()
	o.armed = on
	if on {
		o.newAt, o.failed, o.saved = time.Time{}, nil, false
	}
	o.mu.Unlock()
}

// newVersionStarts marks the new version's first start in the job.
func (o *outputService) newVersionStarts() {
	o.mu.Lock()
	if o.armed && o.newAt.IsZero() {
		o.newAt = time.Now()
		if o.ring != nil {
			o.ring.Reset()
		}
	}
	o.mu.Unlock()
}

// failedOutput is what the new version printed: its supervised output,
// or a system service's journal since it was started.
func (o *outputService) failedOutput(ctx context.Context) string {
	o.mu.Lock()
	newAt, failed, saved := o.newAt, o.failed, o.saved
	o.mu.Unlock()
	if newAt.IsZero() {
		return ""
	}
	if o.ring != nil {
		if !saved {
			failed = o.ring.Bytes()
		}
		return string(failed)
	}
	if s, ok := o.Service.(*process.SystemService); ok {
		out, err := s.Logs(ctx, newAt.Add(-time.Second), 500)
		if err != nil {
			return ""
		}
		return out
	}
	return ""
}
