package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Host is one simulated host: a poolagent with its own state dir and
// install root, managing one sample agent it supervises as a child.
type Host struct {
	Name       string
	Dir        string
	Config     string
	StateDir   string
	Binary     string // the managed agent's binary (inside the install root)
	HealthAddr string
	Log        string
	AgentBin   string // the poolagent binary this host runs
	// StatusBin is the poolagent binary Status runs (default AgentBin).
	// A test whose release is a shell script sets it: a shell reads its
	// script by path, and a self-update may replace the file meanwhile.
	StatusBin string
	env       []string // more environment of poolagent (HostOptions.Env)
	mu        sync.Mutex
	cmd       *exec.Cmd
	done      chan struct{}
	stopped   atomic.Bool
}

// HostOptions configure NewHost.
type HostOptions struct {
	Name        string
	AgentType   string // the pool's type (AD, LDAP, ...)
	SampleAgent string // the sample agent's binary to install as the starting version
	TrustedKey  string
	ServerURL   string
	ServerCA    string        // server_ca: the CA bundle of an HTTPS server (Server.CA)
	Interval    time.Duration // heartbeat interval
	ExtraConfig string        // appended to the TOML (e.g. a [maintenance] table)
	Poolagent   string        // the poolagent binary to copy in (default: the built one)
	// MoreTrustedKeys are pinned beside TrustedKey; RevokedKeyIDs refused.
	MoreTrustedKeys []string
	RevokedKeyIDs   []string
	StallTimeout    time.Duration // artifacts.stall_timeout (default 1m)
	StateDir        string        // default: <dir>/<name>/state
	// Artifacts is appended to the [artifacts] table (e.g.
	// "allow_downgrade = true\n").
	Artifacts string
	// SelfConfirmTimeout is self_update.confirm_timeout (default 30s).
	SelfConfirmTimeout time.Duration
	// WatchInterval is the agent's health.watch_interval (default: the
	// config's default, 1m).
	WatchInterval time.Duration
	// AgentEnv is the managed agent's extra environment (NAME=value).
	AgentEnv []string
	// Timezone is the IANA zone the host reports (the config's timezone);
	// empty: the zone of the machine running the test.
	Timezone string
	// Env is more environment (NAME=value) for every poolagent command the
	// host runs (enroll, run, status), e.g. ZONEINFO naming a directory
	// of test zones (WriteZone) for Timezone.
	Env []string
}

func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, it := range items {
		q[i] = fmt.Sprintf("%q", it)
	}
	return strings.Join(q, ", ")
}

// NewHost lays out a host under dir: install root, state dir, the managed
// agent's starting binary and poolagent's config.
func NewHost(b *Bins, dir string, o HostOptions) (*Host, error) {
	h := &Host{Name: o.Name, Dir: filepath.Join(dir, o.Name), env: o.Env}
	// Each host runs its own copy of poolagent: a self-update replaces it.
	h.AgentBin = filepath.Join(h.Dir, "bin", "poolagent")
	if o.Poolagent == "" {
		o.Poolagent = b.Poolagent
	}
	if err := os.MkdirAll(filepath.Dir(h.AgentBin), 0o755); err != nil {
		return nil, err
	}
	if err := copyFile(o.Poolagent, h.AgentBin, 0o755); err != nil {
		return nil, err
	}
	h.StateDir = filepath.Join(h.Dir, "state")
	if o.StateDir != "" {
		h.StateDir = o.StateDir
	}
	root := filepath.Join(h.Dir, "opt")
	h.Binary = filepath.Join(root, "ad-agent", "ad-agent")
	h.Config = filepath.Join(h.Dir, "poolagent.toml")
	h.Log = filepath.Join(h.Dir, "poolagent.log")
	if err := os.MkdirAll(filepath.Dir(h.Binary), 0o755); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(h.StateDir, 0o700); err != nil {
		return nil, err
	}
	if err := copyFile(o.SampleAgent, h.Binary, 0o755); err != nil {
		return nil, err
	}
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	h.HealthAddr = addr
	if o.Interval == 0 {
		o.Interval = time.Second
	}
	stall := o.StallTimeout
	if stall == 0 {
		stall = time.Minute
	}
	confirm := o.SelfConfirmTimeout
	if confirm == 0 {
		confirm = 30 * time.Second
	}
	watch := ""
	if o.WatchInterval != 0 {
		watch = fmt.Sprintf("watch_interval = %q\n", o.WatchInterval.String())
	}
	serverCA := ""
	if o.ServerCA != "" {
		serverCA = fmt.Sprintf("server_ca = %q\n", o.ServerCA)
	}
	if o.Timezone != "" {
		serverCA += fmt.Sprintf("timezone = %q\n", o.Timezone)
	}
	cfg := fmt.Sprintf(serverCA+`server_url = %q
hostname = %q
state_dir = %q
heartbeat_interval = %q
type = "VA"
log_format = "json"
log_level = "info"
install_roots = [%q]

[artifacts]
trusted_keys = [%s]
revoked_key_ids = [%s]
allow_insecure_http = true
stall_timeout = %q
%s
[self_update]
enabled = true
confirm_timeout = %q

[local_api]
socket = %q

[[agents]]
name = "ad-agent"
type = %q
binary = %q
command = [%q, "--listen", %q]
env = [%s]

[agents.health]
grace = "1s"
url = "http://%s/healthz"
timeout = "5s"
interval = "200ms"
%s%s`, o.ServerURL, o.Name, h.StateDir, o.Interval.String(), root, quoteList(append([]string{o.TrustedKey}, o.MoreTrustedKeys...)),
		quoteList(o.RevokedKeyIDs), stall.String(), o.Artifacts, confirm.String(), filepath.Join(h.Dir, "api.sock"), o.AgentType,
		h.Binary, h.Binary, addr, quoteList(o.AgentEnv), addr, watch, o.ExtraConfig)
	if err := os.WriteFile(h.Config, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	return h, nil
}

// Enroll exchanges an enrollment token for the host's credentials.
func (h *Host) Enroll(ctx context.Context, serverURL, token string) error {
	cmd := exec.CommandContext(ctx, h.AgentBin, "enroll", "--config", h.Config, "--server", serverURL, "--token", token)
	cmd.Env = append(os.Environ(), h.env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("poolagent enroll (%s): %v: %s", h.Name, err, b)
	}
	return nil
}

// Start runs `poolagent run` in the background. Like systemd's
// RestartForceExitStatus, it starts poolagent again when it exits with 10
// (it replaced its own binary).
func (h *Host) Start() error {
	if err := h.start(); err != nil {
		return err
	}
	go h.superviseRestarts()
	return nil
}

func (h *Host) superviseRestarts() {
	for {
		h.mu.Lock()
		done, cmd := h.done, h.cmd
		h.mu.Unlock()
		<-done
		if h.stopped.Load() || cmd.ProcessState.ExitCode() != 10 {
			return
		}
		if err := h.start(); err != nil {
			return
		}
	}
}

func (h *Host) start() error {
	logf, err := os.OpenFile(h.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(h.AgentBin, "run", "--config", h.Config)
	cmd.Env = append(os.Environ(), h.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a kill reaches the supervised agent too
	// only when the test means it to.
	ownProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start poolagent %s: %w", h.Name, err)
	}
	done := make(chan struct{})
	h.mu.Lock()
	h.cmd, h.done = cmd, done
	h.mu.Unlock()
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	return nil
}

func (h *Host) current() (*exec.Cmd, chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cmd, h.done
}

// Stop sends SIGTERM to poolagent and waits (on Windows it terminates it).
func (h *Host) Stop() error {
	h.stopped.Store(true)
	cmd, done := h.current()
	return stopProcess(cmd, done, false)
}

// Kill sends SIGKILL to poolagent alone (its supervised agent lives on, as
// after a crash of the daemon) and waits.
func (h *Host) Kill() error {
	h.stopped.Store(true)
	cmd, done := h.current()
	return stopProcess(cmd, done, true)
}

// KillAll kills poolagent's whole process group (the daemon and the agent
// it supervises), as a power loss would.
func (h *Host) KillAll() {
	h.stopped.Store(true)
	cmd, done := h.current()
	if cmd != nil && cmd.Process != nil {
		killGroup(cmd)
		<-done
	}
}

// Restart starts a stopped or killed poolagent again.
func (h *Host) Restart() error {
	h.stopped.Store(false)
	return h.Start()
}

// AgentStatus is the part of `poolagent status --json` the harness reads.
type AgentStatus struct {
	Version   string        `json:"version"` // poolagent's own
	Connected bool          `json:"connected"`
	Agents    []AgentReport `json:"agents"`
	Jobs      []AgentJob    `json:"jobs"`
}

// AgentReport is one managed program in AgentStatus (poolagent's own
// entry is named "poolagent").
type AgentReport struct {
	Name, Version, UpdateStatus, UpdateMessage string
	// Health is the health watch's last result, if any.
	Health *AgentHealth
}

// AgentHealth is an agent's health watch result in AgentStatus.
type AgentHealth struct {
	OK     bool   `json:"ok"`
	Reason string `json:"reason"`
}

// AgentJob is one job in AgentStatus.
type AgentJob struct {
	UUID, Name, Version, State, UpdateStatus, Phase, UpdateMessage string
	Progress                                                       int
}

// Status runs `poolagent status --json`.
func (h *Host) Status(ctx context.Context) (*AgentStatus, error) {
	var stdout, stderr bytes.Buffer
	bin := h.StatusBin
	if bin == "" {
		bin = h.AgentBin
	}
	cmd := exec.CommandContext(ctx, bin, "status", "--config", h.Config, "--json")
	cmd.Env = append(os.Environ(), h.env...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("poolagent status (%s): %v: %s", h.Name, err, stderr.String())
	}
	var st AgentStatus
	if err := json.Unmarshal(stdout.Bytes(), &st); err != nil {
		return nil, fmt.Errorf("poolagent status --json (%s): %w", h.Name, err)
	}
	return &st, nil
}

// InstalledVersion runs the managed agent's binary with --version.
func (h *Host) InstalledVersion(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, h.Binary, "--version").Output()
	return strings.TrimSpace(string(out)), err
}

// LogTail returns the last n bytes of the host's poolagent log.
func (h *Host) LogTail(n int) string {
	b, _ := os.ReadFile(h.Log)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
