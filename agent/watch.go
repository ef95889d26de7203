package agent

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/poolagent/poolagent/agent/config"
	"github.com/poolagent/poolagent/agent/localapi"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/updater"
)

// The health watch: after the install, and for as long as poolagent runs,
// each managed agent's own health check (config [agents.health], the
// check the install ran, without its grace period) runs every
// health.watch_interval. The last result goes in every heartbeat
// (agents[].health); the server lists a failing agent DEGRADED and counts
// a failure within an update's watch against that update (REGRESSION).

// Crash loops: a service its service manager restarted crashLoopRestarts
// times within the crash-loop window (the longer of crashLoopMinWindow and
// ten watch intervals) is unhealthy even when it is up at the check.
const (
	crashLoopRestarts  = 3
	crashLoopMinWindow = 10 * time.Minute
)

// restartCounter is a managed agent's service whose service manager tells
// how many times it restarted the service (platform/process.SystemService;
// an error where it does not tell).
type restartCounter interface {
	Restarts(ctx context.Context) (int, error)
}

// restartSample is the service manager's restart count at one check.
type restartSample struct {
	at time.Time
	n  int
}

// agentWatch is one agent's watch state; Daemon.mu guards it.
type agentWatch struct {
	checked time.Time
	ok      bool
	reason  string
	// hasBase: base is the service manager's restart count when the
	// watch of the installed version began; restarts counts since then.
	hasBase  bool
	base     int
	restarts int
	samples  []restartSample
}

// watchable reports whether an agent has anything to watch: a service or
// supervised command that must be running, a URL or a command.
func watchable(a config.Agent) bool {
	return a.Health.Watch() > 0 && (a.Service != "" || len(a.Command) > 0 || a.Health.URL != "" || len(a.Health.Command) > 0)
}

// watchAgents starts one watch per watched agent; the returned function
// waits for them to end (after ctx).
func (d *Daemon) watchAgents(ctx context.Context) func() {
	var wg sync.WaitGroup
	for _, a := range d.cfg.Agents {
		if !watchable(a) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.watchLoop(ctx, a)
		}()
	}
	return wg.Wait
}

// watchLoop checks one agent every watch interval until ctx ends; the
// first check comes one interval after the start.
func (d *Daemon) watchLoop(ctx context.Context, a config.Agent) {
	ticks, stop := d.newTicker(a.Health.Watch())
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-ticks:
			d.watchOnce(ctx, a, now)
		}
	}
}

// realTicker is newTicker's default: a time.Ticker.
func realTicker(every time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(every)
	return t.C, t.Stop
}

// watchOnce runs an agent's health check once and records the result; a
// change is heartbeated at once. A job of the agent that is downloading
// or installing holds its lock: the check is skipped (the job's own check
// decides).
func (d *Daemon) watchOnce(ctx context.Context, a config.Agent, now time.Time) {
	lock := d.locks[a.Name]
	if !lock.TryLock() {
		return
	}
	defer lock.Unlock()
	d.mu.Lock()
	t := d.target(a)
	d.mu.Unlock()
	err := d.checkHealth(ctx, t)
	if ctx.Err() != nil {
		return // shutting down: no verdict
	}
	restarts, counted := -1, false
	if s := d.svcs[a.Name]; s != nil {
		if rc, ok := s.Service.(restartCounter); ok {
			if n, rerr := rc.Restarts(ctx); rerr == nil {
				restarts, counted = n, true
			}
		}
	}
	d.mu.Lock()
	changed := d.recordWatchLocked(a, now, err, restarts, counted)
	d.mu.Unlock()
	if changed {
		d.kick()
	}
}

// defaultCheckHealth is checkHealth's default: the updater's check.
func (d *Daemon) defaultCheckHealth(ctx context.Context, t updater.Target) error {
	return d.upd.CheckHealth(ctx, t.Service, t.Health)
}

// recordWatchLocked stores one check's result and reports whether what
// the heartbeat says of the agent changed.
func (d *Daemon) recordWatchLocked(a config.Agent, now time.Time, err error, restarts int, counted bool) bool {
	w := d.watches[a.Name]
	first := w == nil
	if first {
		w = &agentWatch{}
		d.watches[a.Name] = w
	}
	before := *w
	crash := ""
	if counted {
		if !w.hasBase || restarts < w.base {
			// The watch of this version begins, or the service
			// manager's count started over.
			w.base, w.hasBase, w.samples = restarts, true, nil
		}
		w.restarts = restarts - w.base
		window := max(crashLoopMinWindow, 10*a.Health.Watch())
		w.samples = append(w.samples, restartSample{at: now, n: restarts})
		// Keep the newest sample at or before the window's start as the
		// reference, and everything after it.
		for len(w.samples) > 1 && !w.samples[1].at.After(now.Add(-window)) {
			w.samples = w.samples[1:]
		}
		if n := restarts - w.samples[0].n; n >= crashLoopRestarts {
			crash = fmt.Sprintf("crash loop: the service manager restarted the service %d times in the last %s", n, shortDuration(now.Sub(w.samples[0].at)))
		}
	}
	w.checked = now
	switch {
	case err != nil:
		w.ok, w.reason = false, err.Error()
	case crash != "":
		w.ok, w.reason = false, crash
	default:
		w.ok, w.reason = true, ""
	}
	if w.ok != before.ok || first {
		if w.ok {
			d.log.Info("managed agent healthy", zap.String("agent", a.Name))
		} else {
			d.log.Warn("managed agent unhealthy", zap.String("agent", a.Name), zap.String("reason", w.reason))
		}
	}
	return first || w.ok != before.ok || w.reason != before.reason || w.restarts != before.restarts
}

// watchInstalledLocked starts the watch of a version poolagent just
// installed: healthy (the install's own check passed when committed), no
// restarts yet. After a rollback the restored version's health is unknown
// until the next check.
func (d *Daemon) watchInstalledLocked(name string, committed bool, now time.Time) {
	if !committed {
		delete(d.watches, name)
		return
	}
	d.watches[name] = &agentWatch{checked: now, ok: true}
}

// healthReportLocked is an agent's health for the heartbeat (nil before
// the first check).
func (d *Daemon) healthReportLocked(name string) *sailpoint.AgentHealth {
	w := d.watches[name]
	if w == nil {
		return nil
	}
	h := &sailpoint.AgentHealth{OK: w.ok, CheckedAt: w.checked.UTC().Format(time.RFC3339), Reason: w.reason}
	if w.hasBase {
		n := w.restarts
		h.Restarts = &n
	}
	return h
}

// healthStatusLocked is an agent's health for the local API.
func (d *Daemon) healthStatusLocked(a config.Agent) *localapi.Health {
	w := d.watches[a.Name]
	if w == nil {
		return nil
	}
	h := &localapi.Health{OK: w.ok, CheckedAt: w.checked, Reason: w.reason, Every: a.Health.Watch()}
	if w.hasBase {
		n := w.restarts
		h.Restarts = &n
	}
	return h
}

// unhealthyLocked reports whether any watched agent failed its last check.
func (d *Daemon) unhealthyLocked() bool {
	for _, w := range d.watches {
		if !w.ok {
			return true
		}
	}
	return false
}

// shortDuration renders a duration for a sentence: 45s, 4m, 2h5m.
func shortDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Round(time.Second)/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	}
	return strings.TrimSuffix(d.Truncate(time.Minute).String(), "0s")
}
