// Package agent is poolagent's daemon: the heartbeat loop that reports the
// host's facts, its managed agents' versions and its jobs' progress to
// poolserver (docs/heartbeat.md), the job runner that checks each job
// against the config, waits for the maintenance window (judged by the
// server's clock) and drives the updater, the state that survives restarts,
// and the local API.
//
// Subpackages: config (the TOML config), state (credentials and state.json),
// localapi (the local API and its client). docs/agent.md is the operator's
// reference.
package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/poolagent/poolagent/agent/config"
	"github.com/poolagent/poolagent/agent/localapi"
	"github.com/poolagent/poolagent/agent/state"
	"github.com/poolagent/poolagent/internal/version"
	"github.com/poolagent/poolagent/platform/disk"
	"github.com/poolagent/poolagent/platform/hostinfo"
	"github.com/poolagent/poolagent/platform/process"
	"github.com/poolagent/poolagent/updater"
)

// ExitRestart is the exit code with which poolagent asks its service
// manager to start it again: after it replaced its own binary, or after
// RecoverSelf restored the previous one. A service manager restarts on any
// non-zero exit; a test running `poolagent run` re-launches it.
const ExitRestart = 10

// ErrRestart is returned by Run when the daemon must be started again
// (exit with ExitRestart).
var ErrRestart = errors.New("restart requested: poolagent replaced its binary")

// Daemon is the running poolagent.
type Daemon struct {
	cfg    config.Config
	log    *zap.Logger
	creds  state.Credentials
	server *url.URL
	client *http.Client
	upd    *updater.Updater
	facts  *hostinfo.Collector
	exe    string
	// hashes caches the installed binaries' SHA-256 for the heartbeat.
	hashes binHashes
	// freeSpace tells the free bytes of a directory's file system.
	freeSpace func(dir string) (uint64, error)

	// svcs are the managed agents' service controls by name.
	svcs map[string]*outputService
	// locks serialise jobs per target.
	locks map[string]*sync.Mutex
	// checkHealth runs a managed agent's health check for the watch, and
	// newTicker paces it (tests replace both).
	checkHealth func(ctx context.Context, t updater.Target) error
	newTicker   func(every time.Duration) (<-chan time.Time, func())

	mu       sync.Mutex
	st       *state.State
	windows  map[string]window // by job uuid
	runs     map[string]*jobRun
	wake     chan struct{} // closed and replaced when jobs should re-check
	beatNow  chan struct{}
	beatSoon chan struct{} // a heartbeat within ProgressDelay (kickSoon)
	interval time.Duration
	// nextBeat, when set, is the wait before the next heartbeat instead
	// of interval, once (the server's nextHeartbeat: a job is coming).
	nextBeat  time.Duration
	connected bool
	lastErr   string
	// watches are the managed agents' health watches by name.
	watches map[string]*agentWatch
	// poolType is the Okta agent type of this client's pool, as the
	// server last said; warnings are the server's last warnings.
	poolType string
	warnings []string
	// beatsSent and beatsFailed count heartbeats since start.
	beatsSent, beatsFailed int64
	started                time.Time
	// serverRecv is when (monotonic) the newest server time was received.
	serverRecv time.Time
	// selfPending: this binary is an unconfirmed self-update.
	selfPending   bool
	selfConfirmBy time.Time
	restart       bool
	stop          context.CancelFunc
	jobsWG        sync.WaitGroup
}

// jobRun is a job's running goroutine.
type jobRun struct {
	cancel context.CancelFunc
	// byServer: cancelled because the server said CANCELLED.
	byServer bool
}

// New prepares a daemon from cfg and its collaborators (NewDeps builds
// poolagent's own). It starts nothing.
func New(cfg config.Config, log *zap.Logger, deps Deps) (*Daemon, error) {
	if deps.Server == nil || deps.Transport == nil || deps.Updater == nil {
		return nil, errors.New("agent.New: the server URL, transport and updater are required")
	}
	d := &Daemon{
		cfg: cfg, log: log, creds: deps.Creds, server: deps.Server, exe: deps.Exe, upd: deps.Updater,
		client:    &http.Client{Transport: deps.Transport, Timeout: 60 * time.Second},
		facts:     deps.Facts,
		freeSpace: deps.FreeSpace,
		svcs:      map[string]*outputService{},
		locks:     map[string]*sync.Mutex{},
		windows:   map[string]window{},
		runs:      map[string]*jobRun{},
		wake:      make(chan struct{}),
		beatNow:   make(chan struct{}, 1),
		beatSoon:  make(chan struct{}, 1),
		interval:  cfg.HeartbeatInterval.Duration,
		started:   time.Now(),
		watches:   map[string]*agentWatch{},
		newTicker: realTicker,
	}
	d.checkHealth = d.defaultCheckHealth
	if d.facts == nil {
		d.facts = hostinfo.NewCollector(hostinfo.CollectorOptions{})
	}
	if d.freeSpace == nil {
		d.freeSpace = disk.Free
	}
	for _, a := range cfg.Agents {
		d.locks[a.Name] = &sync.Mutex{}
		if svc := deps.Services[a.Name]; svc != nil {
			d.svcs[a.Name] = &outputService{Service: svc, ring: deps.Outputs[a.Name]}
		}
	}
	d.locks[config.SelfName] = &sync.Mutex{}
	return d, nil
}

// Run runs the daemon until ctx ends: recovery, the local API, the managed
// agents' supervised processes, the heartbeat loop and the jobs. It returns
// ErrRestart when poolagent must be started again.
func (d *Daemon) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.stop = cancel

	// First of all: a self-update that never confirmed is rolled back.
	self, err := d.upd.RecoverSelf(ctx, "")
	if errors.Is(err, updater.ErrSelfRolledBack) {
		d.log.Warn("self-update rolled back; restarting into the previous binary", zap.Error(err))
		return fmt.Errorf("%w: %w", ErrRestart, err)
	}
	if err != nil {
		return fmt.Errorf("recover self-update: %w", err)
	}
	st, err := state.Load(d.cfg.StateDir)
	if err != nil {
		return err
	}
	d.st = st
	d.applySelfState(self)

	for _, a := range d.cfg.Agents {
		d.initVersion(ctx, a)
	}
	results, err := d.upd.Recover(ctx, d.lookupTarget)
	if err != nil {
		d.log.Error("recover unfinished jobs", zap.Error(err))
	}
	d.applyRecovered(results)

	// Supervised agents run as our children.
	for name, s := range d.svcs {
		if _, ok := s.Service.(*process.Supervised); !ok {
			continue
		}
		if err := s.Start(ctx); err != nil {
			d.log.Error("start supervised agent", zap.String("agent", name), zap.Error(err))
		}
	}
	defer d.stopSupervised()

	ln, token, err := localapi.Listen(localapi.Endpoint{Socket: d.cfg.Socket(), Listen: d.cfg.LocalAPI.Listen, TokenFile: d.cfg.TokenFile()})
	if err != nil {
		return err
	}
	apiDone := make(chan error, 1)
	go func() { apiDone <- localapi.Serve(ctx, ln, localapi.Handler(d, token, d.log.Named("localapi"))) }()

	d.mu.Lock()
	d.resumeJobsLocked(ctx)
	d.saveLocked()
	d.mu.Unlock()
	watching := d.watchAgents(ctx)

	d.log.Info("poolagent started", zap.String("version", version.String()), zap.String("server", d.server.String()),
		zap.String("client", d.creds.ClientID), zap.Int("agents", len(d.cfg.Agents)))
	d.heartbeatLoop(ctx)
	d.stop() // the watches end with the heartbeats (a self-update's restart)
	watching()

	// Jobs past the swap finish (the updater ignores cancellation there);
	// the others stop at the next safe point and resume at the next start.
	d.jobsWG.Wait()
	d.mu.Lock()
	d.saveLocked()
	restart := d.restart
	d.mu.Unlock()
	if err := <-apiDone; err != nil {
		d.log.Warn("local API", zap.Error(err))
	}
	if restart {
		return ErrRestart
	}
	return ctx.Err()
}

// resumeJobsLocked starts again the jobs an earlier run left unfinished.
// The self-update this binary was installed by is not one of them: its
// install is done, and what remains is the confirmation, which the first
// good heartbeat gives (handleReply finishes the job) or the deadline
// takes away (heartbeatLoop restarts, RecoverSelf rolls back and the
// previous binary reports the job FAILED with SELF_ROLLED_BACK). Running
// it again would install it a second time, which the updater refuses.
func (d *Daemon) resumeJobsLocked(ctx context.Context) {
	for _, j := range d.st.Jobs {
		if j.Terminal() {
			continue
		}
		if d.awaitsSelfConfirmLocked(j) {
			d.log.Info("self-update installed; it finishes when this binary is confirmed", zap.String("job", j.UUID),
				zap.String("version", j.Version), zap.Time("confirm_by", d.selfConfirmBy))
			continue
		}
		d.log.Info("resuming job", zap.String("job", j.UUID), zap.String("agent", j.Name), zap.String("phase", j.Phase))
		d.startJobLocked(ctx, j)
	}
}

func (d *Daemon) stopSupervised() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for name, s := range d.svcs {
		if _, ok := s.Service.(*process.Supervised); !ok {
			continue
		}
		if err := s.Stop(ctx); err != nil {
			d.log.Warn("stop supervised agent", zap.String("agent", name), zap.Error(err))
		}
	}
}

// initVersion sets an agent's installed version at start: the binary's
// `--version` when the config gives none, else what poolagent last
// committed, else the config's.
func (d *Daemon) initVersion(ctx context.Context, a config.Agent) {
	s := d.st.Agents[a.Name]
	if s == nil {
		s = &state.Agent{}
		d.st.Agents[a.Name] = s
	}
	if a.Version == "" {
		if v, err := probeVersion(ctx, a.Binary); err == nil {
			s.Version = v
			return
		} else {
			d.log.Warn("read agent version", zap.String("agent", a.Name), zap.Error(err))
		}
	}
	if s.Version == "" {
		s.Version = a.Version
	}
}

// probeVersion runs `<binary> --version` and takes the last word of the
// first line ("ad-agent 1.2.3" or "1.2.3").
func probeVersion(ctx context.Context, binary string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", binary, err)
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	f := strings.Fields(line)
	if len(f) == 0 {
		return "", fmt.Errorf("%s --version printed nothing", binary)
	}
	return strings.TrimPrefix(f[len(f)-1], "v"), nil
}

// lookupTarget maps a journal entry's name to its target for Recover.
func (d *Daemon) lookupTarget(name string) (updater.Target, bool) {
	a, ok := d.cfg.Agent(name)
	if !ok {
		return updater.Target{}, false
	}
	return d.target(a), true
}

// target builds the updater's target for a managed agent.
func (d *Daemon) target(a config.Agent) updater.Target {
	t := updater.Target{
		Name: a.Name, Path: a.Binary,
		Health: updater.HealthCheck{
			Grace: a.Health.Grace.Duration, URL: a.Health.URL, Command: a.Health.Command,
			Timeout: a.Health.Timeout.Duration, Interval: a.Health.Interval.Duration,
		},
	}
	if s := d.st.Agents[a.Name]; s != nil {
		t.Version = s.Version
	}
	if fi, err := os.Stat(a.Binary); err == nil {
		t.Mode = fi.Mode().Perm()
	}
	if s := d.svcs[a.Name]; s != nil {
		t.Service = s
	}
	return t
}

// applyRecovered records the outcome of jobs Recover finished or undid:
// jobs that ended while poolagent was down are reported at the next
// heartbeat; jobs stopped before the swap run again.
func (d *Daemon) applyRecovered(results []updater.Result) {
	for _, r := range results {
		d.log.Info("recovered job", zap.String("job", r.JobID), zap.String("agent", r.Name), zap.String("outcome", string(r.Outcome)), zap.Error(r.Err))
		j := d.st.Job(r.JobID)
		switch r.Outcome {
		case updater.OutcomeCommitted:
			d.setAgentVersion(r.Name, r.Version)
			d.rememberPreviousLocked(r.Name, r.PrevVersion, r.PrevSHA256)
			d.watchInstalledLocked(r.Name, true, time.Now())
			if j != nil {
				d.finishLocked(j, nil)
			}
		case updater.OutcomeRolledBack:
			if r.Version != "" {
				d.setAgentVersion(r.Name, r.Version)
			}
			if j != nil {
				err := r.Err
				if err != nil {
					err = rolledBack{err}
				}
				d.finishLocked(j, err)
				if err != nil {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					j.Diagnostics = d.diagnostics(ctx, r.Name, r, err)
					cancel()
				}
			}
		case updater.OutcomeCancelled:
			if j != nil && !j.Terminal() {
				d.moveLocked(j, stepUnswapped, 0, "")
			}
		}
	}
}

func (d *Daemon) setAgentVersion(name, v string) {
	s := d.st.Agents[name]
	if s == nil {
		s = &state.Agent{}
		d.st.Agents[name] = s
	}
	s.Version = v
}

// saveLocked writes the state; a failure is logged (the next change
// writes again).
func (d *Daemon) saveLocked() {
	d.st.Prune()
	if err := d.st.Save(d.cfg.StateDir); err != nil {
		d.log.Error("save state", zap.Error(err))
	}
}

// kick asks for a heartbeat now, to report a change the server acts on:
// a job's end, an agent's health.
func (d *Daemon) kick() {
	select {
	case d.beatNow <- struct{}{}:
	default:
	}
}

// ProgressDelay is the longest a job's progress (started, swapped,
// health-checking) waits for its heartbeat. Heartbeats carry the host's
// whole state, so every change within it goes in one heartbeat, and an
// install that ends within it sends only its end: one request per host
// instead of three, which is what a rollout of a big fleet costs the
// server.
const ProgressDelay = 2 * time.Second

// kickSoon asks for a heartbeat within ProgressDelay, to report a job's
// progress.
func (d *Daemon) kickSoon() {
	select {
	case d.beatSoon <- struct{}{}:
	default:
	}
}

// wakeLocked tells waiting jobs to look at their window again.
func (d *Daemon) wakeLocked() {
	close(d.wake)
	d.wake = make(chan struct{})
}
