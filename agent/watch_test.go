package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poolagent/poolagent/agent/config"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/updater"
)

// countingService is a service whose service manager's restart count the
// test sets.
type countingService struct {
	mu       sync.Mutex
	restarts int
}

func (s *countingService) Start(context.Context) error           { return nil }
func (s *countingService) Stop(context.Context) error            { return nil }
func (s *countingService) Running(context.Context) (bool, error) { return true, nil }
func (s *countingService) Restarts(context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts, nil
}

func (s *countingService) set(n int) {
	s.mu.Lock()
	s.restarts = n
	s.mu.Unlock()
}

// watchedDaemon is a test daemon managing one agent "ad" with a service
// (svc), its health check answered by check and its watch paced by the
// returned channel: each send is one check, done when the next send is
// taken.
func watchedDaemon(t *testing.T, every time.Duration, svc *countingService, check func() error) (*Daemon, chan time.Time) {
	t.Helper()
	d := testDaemon(t)
	iv := config.Duration{Duration: every}
	a := config.Agent{Name: "ad", Type: "AD", Binary: "/opt/okta/ad/agent", Service: "okta-ad.service",
		Health: config.HealthConfig{URL: "http://127.0.0.1:1/healthz", WatchInterval: &iv}}
	d.cfg.Agents = []config.Agent{a}
	d.locks[a.Name] = &sync.Mutex{}
	d.svcs[a.Name] = &outputService{Service: svc}
	ticks := make(chan time.Time)
	d.newTicker = func(got time.Duration) (<-chan time.Time, func()) {
		if got != every {
			t.Errorf("watch ticks every %s, want %s", got, every)
		}
		return ticks, func() {}
	}
	d.checkHealth = func(context.Context, updater.Target) error { return check() }
	return d, ticks
}

func (d *Daemon) health(name string) *sailpoint.AgentHealth {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.healthReportLocked(name)
}

// TestWatchLoop: the watch checks every interval, reports the last result
// (healthy, failing with the check's reason, healthy again) with the
// restarts since it began, heartbeats each change at once and makes the
// host WARNING while the agent fails.
func TestWatchLoop(t *testing.T) {
	var mu sync.Mutex
	var fail error
	svc := &countingService{restarts: 7}
	d, ticks := watchedDaemon(t, time.Minute, svc, func() error { mu.Lock(); defer mu.Unlock(); return fail })
	ctx, cancel := context.WithCancel(t.Context())
	wait := d.watchAgents(ctx)
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	tick := func(i int) {
		ticks <- t0.Add(time.Duration(i) * time.Minute)
		ticks <- t0.Add(time.Duration(i) * time.Minute) // the first is done once the loop takes the second
	}
	if h := d.health("ad"); h != nil {
		t.Fatalf("health before the first check: %+v", h)
	}
	tick(0)
	h := d.health("ad")
	if h == nil || !h.OK || h.Reason != "" || h.Restarts == nil || *h.Restarts != 0 || h.CheckedAt != "2026-03-02T10:00:00Z" {
		t.Fatalf("healthy agent: %+v", h)
	}
	select {
	case <-d.beatNow: // the first result is heartbeated at once
	default:
		t.Error("no heartbeat asked for after the first result")
	}

	mu.Lock()
	fail = fmt.Errorf("%w: GET http://127.0.0.1:1/healthz: HTTP 503 Service Unavailable", updater.ErrHealthCheck)
	mu.Unlock()
	svc.set(8)
	tick(1)
	h = d.health("ad")
	if h.OK || h.Reason != "health check failed: GET http://127.0.0.1:1/healthz: HTTP 503 Service Unavailable" || *h.Restarts != 1 {
		t.Fatalf("failing agent: %+v", h)
	}
	select {
	case <-d.beatNow:
	default:
		t.Error("no heartbeat asked for after the agent turned unhealthy")
	}
	req, _ := d.buildRequest(t.Context())
	if req.Status != sailpoint.StatusWarning || req.Body.Agents[0].Health == nil || req.Body.Agents[0].Health.OK {
		t.Errorf("heartbeat of an unhealthy host: status %s, agent %+v", req.Status, req.Body.Agents[0])
	}

	mu.Lock()
	fail = nil
	mu.Unlock()
	tick(2)
	if h = d.health("ad"); !h.OK {
		t.Fatalf("recovered agent: %+v", h)
	}
	req, _ = d.buildRequest(t.Context())
	if req.Status != sailpoint.StatusNormal {
		t.Errorf("heartbeat of a healthy host: status %s", req.Status)
	}
	cancel()
	wait()
}

// TestWatchCrashLoop: restarts by the service manager within the
// crash-loop window make the agent unhealthy although it is up at each
// check; once they stop for a whole window it is healthy again.
func TestWatchCrashLoop(t *testing.T) {
	svc := &countingService{}
	d, _ := watchedDaemon(t, time.Minute, svc, func() error { return nil })
	a := d.cfg.Agents[0]
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	check := func(minute, restarts int) *sailpoint.AgentHealth {
		svc.set(restarts)
		d.watchOnce(t.Context(), a, t0.Add(time.Duration(minute)*time.Minute))
		return d.health(a.Name)
	}
	if h := check(0, 0); !h.OK {
		t.Fatalf("start: %+v", h)
	}
	if h := check(1, 1); !h.OK || *h.Restarts != 1 {
		t.Fatalf("one restart: %+v", h)
	}
	if h := check(2, 3); h.OK || h.Reason != "crash loop: the service manager restarted the service 3 times in the last 2m" {
		t.Fatalf("three restarts in two minutes: %+v", h)
	}
	if h := check(5, 3); h.OK {
		t.Fatalf("within the window: %+v", h)
	}
	if h := check(13, 3); !h.OK || *h.Restarts != 3 {
		t.Fatalf("no restart for a whole window: %+v", h)
	}
	// A new version starts its watch afresh: healthy, no restarts.
	d.mu.Lock()
	d.watchInstalledLocked(a.Name, true, t0.Add(14*time.Minute))
	d.mu.Unlock()
	if h := check(15, 4); !h.OK || *h.Restarts != 0 {
		t.Fatalf("after an install: %+v", h)
	}
}

// TestWatchSkipsRunningJob: while a job of the agent holds its lock the
// check does not run; the job's own check decides.
func TestWatchSkipsRunningJob(t *testing.T) {
	calls := 0
	d, _ := watchedDaemon(t, time.Minute, &countingService{}, func() error { calls++; return errors.New("down") })
	a := d.cfg.Agents[0]
	d.locks[a.Name].Lock()
	d.watchOnce(t.Context(), a, time.Now())
	d.locks[a.Name].Unlock()
	if calls != 0 || d.health(a.Name) != nil {
		t.Fatalf("checked during a job: %d calls, health %+v", calls, d.health(a.Name))
	}
	d.watchOnce(t.Context(), a, time.Now())
	if h := d.health(a.Name); calls != 1 || h == nil || h.OK || !strings.Contains(h.Reason, "down") {
		t.Fatalf("after the job: %d calls, health %+v", calls, h)
	}
}

// TestWatchable: an agent with nothing to check, or watch_interval "0s",
// is not watched.
func TestWatchable(t *testing.T) {
	off := config.Duration{}
	for _, tt := range []struct {
		a    config.Agent
		want bool
	}{
		{config.Agent{Name: "a"}, false},
		{config.Agent{Name: "a", Service: "x"}, true},
		{config.Agent{Name: "a", Command: []string{"x"}}, true},
		{config.Agent{Name: "a", Health: config.HealthConfig{URL: "http://127.0.0.1:1/"}}, true},
		{config.Agent{Name: "a", Service: "x", Health: config.HealthConfig{WatchInterval: &off}}, false},
	} {
		if got := watchable(tt.a); got != tt.want {
			t.Errorf("watchable(%+v) = %v, want %v", tt.a, got, tt.want)
		}
	}
}
