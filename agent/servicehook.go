package agent

import (
	"context"
	"sync"
	"time"

	"github.com/poolagent/poolagent/platform/process"
	"github.com/poolagent/poolagent/updater"
)

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
