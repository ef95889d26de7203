package windows_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/internal/e2e"
	"github.com/poolagent/poolagent/internal/winetest"
)

// server is a poolserver on Linux with signing keys, Windows releases of
// the sample agent and an AD pool.
type server struct {
	t    *testing.T
	ctx  context.Context
	srv  *e2e.Server
	keys e2e.Keys
	pool string
	dir  string
}

func newServer(t *testing.T) *server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	t.Cleanup(cancel)
	dir := tempDir(t)
	srv, err := e2e.StartServer(ctx, suite.bins, dir)
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, ctx: ctx, srv: srv, dir: dir}
	t.Cleanup(func() {
		_ = srv.Stop()
		if t.Failed() {
			if b, err := os.ReadFile(srv.Log); err == nil {
				t.Logf("--- poolserver log tail:\n%s", b[max(0, len(b)-3000):])
			}
		}
	})
	if s.keys, err = srv.GenerateKeys(ctx, dir); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		if err := srv.Publish(ctx, s.keys, "AD", v, "windows", "amd64", suite.sample[v], "GA"); err != nil {
			t.Fatal(err)
		}
	}
	if s.pool, err = srv.CLI(ctx, "pool", "create", "--name", "ad", "--type", "AD"); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *server) eventually(timeout time.Duration, what string, cond func() (bool, error)) {
	s.t.Helper()
	if err := e2e.Eventually(s.ctx, timeout, cond); err != nil {
		s.t.Fatalf("%s: %v", what, err)
	}
}

func (s *server) api(method, path, body string, out any) {
	s.t.Helper()
	if _, err := s.srv.API(s.ctx, method, path, body, out); err != nil {
		s.t.Fatal(err)
	}
}

// waitHeartbeats waits until the pool lists host and its last connection
// has moved on at least once: heartbeats keep arriving.
func (s *server) waitHeartbeats(host string) {
	s.t.Helper()
	var first *time.Time
	s.eventually(90*time.Second, host+" heartbeats", func() (bool, error) {
		var pools []okta.AgentPool
		if _, err := s.srv.API(s.ctx, "GET", "/api/v1/agentPools", "", &pools); err != nil {
			return false, err
		}
		for _, p := range pools {
			for _, a := range p.Agents {
				if a.Name != host || a.LastConnection == nil {
					continue
				}
				if first == nil {
					first = a.LastConnection
					return false, nil
				}
				return !a.LastConnection.Equal(*first), nil
			}
		}
		return false, nil
	})
}

func (s *server) create(body string) string {
	s.t.Helper()
	var u okta.AgentPoolUpdate
	s.api("POST", "/api/v1/agentPools/"+s.pool+"/updates", body, &u)
	return u.ID
}

func (s *server) waitStatus(id string, want okta.AgentUpdateJobStatus) okta.AgentPoolUpdate {
	s.t.Helper()
	var u okta.AgentPoolUpdate
	s.eventually(3*time.Minute, "update "+string(want), func() (bool, error) {
		var err error
		u, err = s.srv.Update(s.ctx, s.pool, id)
		return u.Status == want, err
	})
	return u
}

// host is a Windows host under Wine: poolagent.exe with its own state dir,
// install root and config (Windows paths on drive Z:), managing the sample
// agent as a supervised child.
type host struct {
	name     string
	dir      string
	exe      string // the host's copy of poolagent.exe (a self-update replaces it)
	config   string // Unix path of the config
	stateDir string
	binary   string // the managed agent's .exe
	log      string

	mu      sync.Mutex
	proc    *winetest.Process
	stopped bool
}

// newHost lays out and enrolls a host.
func (s *server) newHost(name, extra string) *host {
	s.t.Helper()
	dir := filepath.Join(tempDir(s.t), name)
	h := &host{name: name, dir: dir, exe: filepath.Join(dir, "bin", "poolagent.exe"), config: filepath.Join(dir, "poolagent.toml"),
		stateDir: filepath.Join(dir, "state"), binary: filepath.Join(dir, "opt", "ad-agent", "ad-agent.exe"), log: filepath.Join(dir, "poolagent.log")}
	for _, d := range []string{filepath.Dir(h.exe), filepath.Dir(h.binary)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			s.t.Fatal(err)
		}
	}
	copyFile(s.t, suite.agent, h.exe)
	copyFile(s.t, suite.sample["1.0.0"], h.binary)
	health, err := e2e.FreeAddr()
	if err != nil {
		s.t.Fatal(err)
	}
	local, err := e2e.FreeAddr()
	if err != nil {
		s.t.Fatal(err)
	}
	win := winetest.WindowsPath
	cfg := fmt.Sprintf(`server_url = %q
server_ca = %q
hostname = %q
state_dir = %q
heartbeat_interval = "1s"
type = "VA"
log_format = "json"
log_level = "info"
install_roots = [%q]

[artifacts]
trusted_keys = [%q]
allow_insecure_http = true

[self_update]
enabled = true
confirm_timeout = "60s"

[local_api]
listen = %q

[[agents]]
name = "ad-agent"
type = "AD"
binary = %q
command = [%q, "--listen", %q]

[agents.health]
grace = "1s"
url = "http://%s/healthz"
timeout = "5s"
interval = "200ms"
%s`, s.srv.URL, win(s.srv.CA), name, win(h.stateDir), win(filepath.Join(dir, "opt")), s.keys.Public, local,
		win(h.binary), win(h.binary), health, health, extra)
	if err := os.WriteFile(h.config, []byte(cfg), 0o600); err != nil {
		s.t.Fatal(err)
	}
	tok, err := s.srv.CLI(s.ctx, "enroll-token", "create", "--pool", s.pool)
	if err != nil {
		s.t.Fatal(err)
	}
	h.must(s.t, "enroll", "--server", s.srv.URL, "--token", tok)
	s.t.Cleanup(func() {
		h.kill()
		if s.t.Failed() {
			b, _ := os.ReadFile(h.log)
			s.t.Logf("--- %s poolagent log tail:\n%s", name, b[max(0, len(b)-4000):])
		}
	})
	return h
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// poolagent runs a poolagent.exe command with the host's config.
func (h *host) poolagent(t *testing.T, args ...string) winetest.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args = append(args[:1:1], append([]string{"--config", winetest.WindowsPath(h.config)}, args[1:]...)...)
	res, err := suite.wine.Run(ctx, h.exe, args...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// must runs a poolagent.exe command that must succeed.
func (h *host) must(t *testing.T, args ...string) winetest.Result {
	t.Helper()
	res := h.poolagent(t, args...)
	if res.Code != 0 {
		t.Fatalf("poolagent %s: %s", strings.Join(args, " "), res)
	}
	return res
}

// start runs `poolagent.exe run` in the background and, as docs/agent.md
// asks of a supervisor, runs it again whenever it exits with 10 (it
// replaced its own binary): Wine's SCM runs no recovery actions.
func (h *host) start(t *testing.T) {
	t.Helper()
	if err := h.launch(); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			h.mu.Lock()
			p := h.proc
			h.mu.Unlock()
			<-p.Done()
			h.mu.Lock()
			stopped := h.stopped
			h.mu.Unlock()
			if stopped || p.ExitCode() != 10 {
				return
			}
			if err := h.launch(); err != nil {
				return
			}
		}
	}()
}

func (h *host) launch() error {
	p, err := suite.wine.Start(h.exe, h.log, "run", "--config", winetest.WindowsPath(h.config))
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.proc = p
	h.mu.Unlock()
	return nil
}

// kill ends the foreground poolagent (its supervised agent lives on until
// the prefix shuts down).
func (h *host) kill() {
	h.mu.Lock()
	h.stopped = true
	p := h.proc
	h.mu.Unlock()
	if p != nil {
		p.Kill()
	}
}

// status is `poolagent.exe status --json`, through the local API and its
// token file; nil while the daemon does not answer.
func (h *host) status(t *testing.T) *e2e.AgentStatus {
	t.Helper()
	res := h.poolagent(t, "status", "--json")
	if res.Code != 0 {
		return nil
	}
	var st e2e.AgentStatus
	if err := json.Unmarshal([]byte(res.Stdout), &st); err != nil {
		t.Fatalf("poolagent status --json: %v: %s", err, res)
	}
	return &st
}

// installedVersion runs the managed agent's .exe with --version.
func (h *host) installedVersion(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := suite.wine.Run(ctx, h.binary, "--version")
	if err != nil || res.Code != 0 {
		t.Fatalf("the installed agent does not run: %v %s", err, res)
	}
	return strings.TrimSpace(res.Stdout)
}
