package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/poolagent/poolagent/agent/localapi"
	"github.com/poolagent/poolagent/api/appliance"
	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/controlplane/store/sqlite"
	"github.com/poolagent/poolagent/signing"
)

// Binaries built once in TestMain.
var (
	poolagentBin string
	sampleBins   = map[string]string{} // version -> path
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if runtime.GOOS == "windows" {
		return m.Run() // the end-to-end tests use unix sockets and signals
	}
	dir, err := os.MkdirTemp("", "poolagent-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	build := func(out, pkg string, ldflags string) error {
		args := []string{"build", "-trimpath", "-ldflags", ldflags, "-o", out}
		env := append(os.Environ(), "CGO_ENABLED=0")
		if raceEnabled && pkg == "." {
			args, env = append(args, "-race"), os.Environ()
		}
		cmd := exec.Command("go", append(args, pkg)...)
		cmd.Env = env
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", pkg, err, b)
		}
		return nil
	}
	poolagentBin = filepath.Join(dir, "poolagent")
	if err := build(poolagentBin, ".", "-X github.com/poolagent/poolagent/internal/version.Version=1.0.0"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for v, healthy := range map[string]string{"1.0.0": "true", "1.1.0": "true", "1.2.0": "false"} {
		p := filepath.Join(dir, "sampleagent-"+v)
		if err := build(p, "../../examples/sampleagent", "-X main.version="+v+" -X main.healthy="+healthy); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		sampleBins[v] = p
	}
	return m.Run()
}

// fleet is a real poolserver (in process, with its rollout engine) and a
// release key.
type fleet struct {
	t      *testing.T
	url    string
	st     store.Store
	data   string
	arts   controlplane.ArtifactStore
	manage string
	pool   *store.Pool
	pub    string
	priv   minisign.PrivateKey
}

// release is a sample agent build to publish before the server starts
// (poolserver caches its catalog for a couple of seconds, so a release
// published while it runs may be missed by an update created right after).
type release struct{ name, version, file string }

func newFleet(t *testing.T, rels []release, mutate ...func(*controlplane.Config)) *fleet {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("end-to-end tests need unix sockets")
	}
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := controlplane.DefaultConfig()
	cfg.DataDir = dir
	cfg.Listen = l.Addr().String()
	cfg.Rollout.Tick = controlplane.Duration{Duration: 50 * time.Millisecond}
	cfg.Heartbeat.Interval = controlplane.Duration{Duration: 200 * time.Millisecond} // "0" on the wire: the agent keeps its own
	cfg.Heartbeat.RateLimit = 100000
	cfg.ShutdownTimeout = controlplane.Duration{Duration: 2 * time.Second}
	cfg.RateLimit.RequestsPerWindow = 100000 // the test polls the API
	for _, m := range mutate {
		m(&cfg)
	}
	f := &fleet{t: t, url: "http://" + l.Addr().String(), st: st, data: dir}
	// [artifacts] decides the store, as in poolserver itself.
	if f.arts, err = controlplane.OpenArtifactStore(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	f.manage, _, err = controlplane.CreateToken(ctx, st, "manage", []store.Scope{store.ScopeManage, store.ScopeRead}, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	f.pool = &store.Pool{ID: store.NewID("pol"), Name: "ad", Type: okta.AgentTypeAD, CreatedAt: now}
	if err := st.CreatePool(ctx, f.pool); err != nil {
		t.Fatal(err)
	}
	pub, priv, err := signing.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pub.MarshalText()
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	f.pub, f.priv = lines[len(lines)-1], priv
	for _, r := range rels {
		f.publish(r.name, r.version, r.file)
	}
	srv := controlplane.New(cfg, st, nil, controlplane.WithArtifactStore(f.arts))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ctx, l)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
		st.Close()
	})
	return f
}

// publish signs a build of the sample agent and adds it to the catalog.
func (f *fleet) publish(name, version, file string) {
	f.t.Helper()
	sig, err := signing.Sign(f.priv, file, signing.Meta{Name: name, Version: version, OS: runtime.GOOS, Arch: runtime.GOARCH})
	if err != nil {
		f.t.Fatal(err)
	}
	sigFile := filepath.Join(f.t.TempDir(), "sig.minisig")
	if err := os.WriteFile(sigFile, sig, 0o644); err != nil {
		f.t.Fatal(err)
	}
	_, err = controlplane.PublishReleaseTo(context.Background(), f.st, f.arts, controlplane.Publish{Name: name, Version: version,
		OS: runtime.GOOS, Arch: runtime.GOARCH, Channel: okta.ChannelGA, File: file, SignatureFile: sigFile}, time.Now())
	if err != nil {
		f.t.Fatal(err)
	}
}

// api calls the Agent Pools API.
func (f *fleet) api(method, path, body string, out any) int {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "SSWS "+f.manage)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			f.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	if resp.StatusCode >= 300 {
		f.t.Logf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode
}

func (f *fleet) createUpdate(body string) okta.AgentPoolUpdate {
	f.t.Helper()
	var u okta.AgentPoolUpdate
	if code := f.api("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates", body, &u); code >= 300 {
		f.t.Fatalf("create update: %d", code)
	}
	return u
}

// waitUpdate polls the update until cond holds.
func (f *fleet) waitUpdate(id, what string, cond func(okta.AgentPoolUpdate) bool) okta.AgentPoolUpdate {
	f.t.Helper()
	var u okta.AgentPoolUpdate
	eventually(f.t, what, func() bool {
		u = okta.AgentPoolUpdate{}
		f.api("GET", "/api/v1/agentPools/"+f.pool.ID+"/updates/"+id, "", &u)
		return cond(u)
	}, func() string { return fmt.Sprintf("update = %+v", u) })
	return u
}

// eventually polls cond with a generous deadline.
func eventually(t *testing.T, what string, cond func() bool, state func() string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; %s", what, state())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// host is one poolagent with a sample agent under its install root.
type host struct {
	t        *testing.T
	f        *fleet
	dir      string
	cfg      string
	binary   string
	socket   string
	proc     *exec.Cmd
	exited   chan struct{}
	exitCode int
	log      *syncBuffer
}

type hostOpts struct {
	policy      string
	grace       string
	serverURL   string
	extraConfig string
	// artifacts are more keys of the [artifacts] section.
	artifacts string
}

func (f *fleet) newHost(o hostOpts) *host {
	t := f.t
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "opt")
	bin := filepath.Join(root, "ad-agent", "sampleagent")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, sampleBins["1.0.0"], bin)
	port := freePort(t)
	if o.policy == "" {
		o.policy = "window"
	}
	if o.grace == "" {
		o.grace = "300ms"
	}
	if o.serverURL == "" {
		o.serverURL = f.url
	}
	state := filepath.Join(dir, "state")
	cfg := fmt.Sprintf(`server_url = %q
state_dir = %q
heartbeat_interval = "200ms"
type = "VA"
log_level = "debug"
log_format = "json"
install_roots = [%q]
%s
[artifacts]
trusted_keys = [%q]
allow_insecure_http = true
%s

[maintenance]
policy = %q

[[agents]]
name = "ad-agent"
type = "AD"
binary = %q
command = [%q, "--listen", "127.0.0.1:%d"]

[agents.health]
grace = %q
url = "http://127.0.0.1:%d/healthz"
timeout = "3s"
interval = "100ms"
`, o.serverURL, state, root, o.extraConfig, f.pub, o.artifacts, o.policy, bin, bin, port, o.grace, port)
	p := filepath.Join(dir, "poolagent.toml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &host{t: t, f: f, dir: dir, cfg: p, binary: bin, socket: filepath.Join(state, "poolagent.sock")}
	t.Cleanup(h.stop)
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

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// cli runs a poolagent command to its end.
func (h *host) cli(args ...string) (string, int) {
	h.t.Helper()
	cmd := exec.Command(poolagentBin, append(args, "--config", h.cfg)...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		h.t.Fatal(err)
	}
	return string(out), code
}

func (h *host) enroll() {
	h.t.Helper()
	tok, err := controlplane.CreateEnrollToken(context.Background(), h.f.st, h.f.pool.ID, time.Hour, time.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	out, code := h.cli("enroll", "--server", h.f.url, "--token", tok)
	if code != 0 || !strings.Contains(out, "enrolled as client") {
		h.t.Fatalf("enroll: %d %s", code, out)
	}
}

// syncBuffer collects a child's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs `poolagent run` as a child.
func (h *host) start() {
	h.t.Helper()
	if h.log == nil {
		h.log = &syncBuffer{}
	}
	cmd := exec.Command(poolagentBin, "run", "--config", h.cfg)
	cmd.Stdout, cmd.Stderr = h.log, h.log
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.proc, h.exited = cmd, make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) {
		_ = c.Wait()
		h.exitCode = c.ProcessState.ExitCode()
		close(done)
	}(cmd, h.exited)
	h.waitStatus("the daemon to connect", func(s localapi.Status) bool { return s.Connected })
}

// stop sends SIGTERM and waits for the exit.
func (h *host) stop() {
	if h.proc == nil {
		return
	}
	_ = h.proc.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.exited:
	case <-time.After(60 * time.Second):
		_ = h.proc.Process.Kill()
		<-h.exited
		h.t.Errorf("poolagent did not stop within 60s of SIGTERM")
	}
	h.proc = nil
	if strings.Contains(h.log.String(), "DATA RACE") {
		h.t.Errorf("the race detector fired in poolagent")
	}
	if h.t.Failed() {
		h.t.Logf("poolagent log:\n%s", h.log.String())
	}
}

// kill sends SIGKILL.
func (h *host) kill() {
	_ = h.proc.Process.Kill()
	<-h.exited
	h.proc = nil
}

func (h *host) client() *localapi.Client {
	c, err := localapi.Dial(localapi.Endpoint{Socket: h.socket})
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

func (h *host) status() (localapi.Status, error) {
	var s localapi.Status
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := h.client().Get(ctx, "/status", &s)
	return s, err
}

func (h *host) waitStatus(what string, cond func(localapi.Status) bool) localapi.Status {
	h.t.Helper()
	var s localapi.Status
	var err error
	eventually(h.t, what, func() bool {
		if h.exited != nil {
			select {
			case <-h.exited:
				h.t.Fatalf("poolagent exited (%d) while waiting for %s:\n%s", h.exitCode, what, h.log.String())
			default:
			}
		}
		s, err = h.status()
		return err == nil && cond(s)
	}, func() string { return fmt.Sprintf("status = %+v, err = %v\nlog:\n%s", s, err, h.log.String()) })
	return s
}

func (h *host) binaryVersion() string {
	h.t.Helper()
	out, err := exec.Command(h.binary, "--version").Output()
	if err != nil {
		h.t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func agentOf(s localapi.Status, name string) localapi.Agent {
	for _, a := range s.Agents {
		if a.Name == name {
			return a
		}
	}
	return localapi.Agent{}
}

// TestUpdateSucceedsThenHealthFailureRollsBack: enroll, heartbeat, a job
// inside the window installs 1.1.0 (Success in the Agent Pools API, the
// agent's version changes), then a release whose health check fails is
// reported Failed and rolled back.
func TestUpdateSucceedsThenHealthFailureRollsBack(t *testing.T) {
	f := newFleet(t, []release{{"AD", "1.1.0", sampleBins["1.1.0"]}, {"AD", "1.2.0", sampleBins["1.2.0"]}})
	h := f.newHost(hostOpts{})
	h.enroll()
	creds := filepath.Join(h.dir, "state", "client.json")
	if fi, err := os.Stat(creds); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Dir(creds)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state dir: %v %v", fi, err)
	}
	h.start()
	if fi, err := os.Stat(h.socket); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("local API socket: %v %v", fi, err)
	}
	s := h.waitStatus("the agent's version from --version", func(s localapi.Status) bool { return agentOf(s, "ad-agent").Version == "1.0.0" })
	if agentOf(s, "poolagent").Version != "1.0.0" {
		t.Errorf("poolagent version = %+v", s.Agents)
	}

	u := f.createUpdate(`{"targetVersion":"1.1.0","name":"to 1.1.0"}`)
	got := f.waitUpdate(u.ID, "the update to succeed", func(u okta.AgentPoolUpdate) bool {
		return u.Status == okta.JobSuccess && len(u.Agents) == 1 && u.Agents[0].Version == "1.1.0"
	})
	if got.Agents[0].UpdateStatus != okta.InstanceSuccess {
		t.Errorf("agent = %+v", got.Agents[0])
	}
	if v := h.binaryVersion(); v != "1.1.0" {
		t.Errorf("installed binary says %q", v)
	}
	h.waitStatus("the job to be reported", func(s localapi.Status) bool {
		return len(s.Jobs) == 1 && s.Jobs[0].State == "FINISHED" && agentOf(s, "ad-agent").UpdateStatus == "Success"
	})
	out, code := h.cli("status")
	if code != 0 || !strings.Contains(out, "ad-agent") || !strings.Contains(out, "1.1.0") || !strings.Contains(out, "connected") {
		t.Errorf("status: %d\n%s", code, out)
	}
	out, code = h.cli("status", "--json")
	var js struct {
		Running bool `json:"running"`
		localapi.Status
	}
	if err := json.Unmarshal([]byte(out), &js); code != 0 || err != nil || !js.Running || agentOf(js.Status, "ad-agent").Version != "1.1.0" {
		t.Errorf("status --json: %d %v\n%s", code, err, out)
	}

	bad := f.createUpdate(`{"targetVersion":"1.2.0","name":"to 1.2.0"}`)
	got = f.waitUpdate(bad.ID, "the bad update to fail", func(u okta.AgentPoolUpdate) bool {
		return u.Status == okta.JobFailed && len(u.Agents) == 1 && u.Agents[0].UpdateStatus == okta.InstanceFailed
	})
	if !strings.HasPrefix(got.Agents[0].UpdateMessage, "HEALTH_CHECK: ") || got.Agents[0].Version != "1.1.0" {
		t.Errorf("failed agent = %+v", got.Agents[0])
	}
	if v := h.binaryVersion(); v != "1.1.0" {
		t.Errorf("after the rollback the binary says %q", v)
	}
	// The rolled-back version runs again.
	eventually(t, "the old version to serve again", func() bool {
		resp, err := http.Get(strings.Replace(hostHealthURL(h), "/healthz", "/version", 1))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.TrimSpace(string(b)) == "1.1.0"
	}, func() string { return h.log.String() })

	h.stop()
	if h.exitCode != 0 {
		t.Errorf("exit code after SIGTERM = %d", h.exitCode)
	}
	out, code = h.cli("status")
	if code != exitNotRunning || !strings.Contains(out, "poolagent is not running") {
		t.Errorf("status of a stopped daemon: %d\n%s", code, out)
	}
}

func hostHealthURL(h *host) string {
	b, _ := os.ReadFile(h.cfg)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "url = ") {
			return strings.Trim(strings.TrimPrefix(l, "url = "), `"`)
		}
	}
	return ""
}

// TestLocalInstallAction: under the manual policy the job waits for the
// local API's install action, whose Task is followed to SUCCESS.
func TestLocalInstallAction(t *testing.T) {
	f := newFleet(t, []release{{"AD", "1.1.0", sampleBins["1.1.0"]}})
	h := f.newHost(hostOpts{policy: "manual"})
	h.enroll()
	h.start()
	u := f.createUpdate(`{"targetVersion":"1.1.0"}`)
	s := h.waitStatus("the job to wait for the operator", func(s localapi.Status) bool {
		return len(s.Jobs) == 1 && s.Jobs[0].State == "PENDING" && s.Jobs[0].WaitingFor != "" && s.Jobs[0].Phase == "waiting"
	})
	if !strings.Contains(s.Jobs[0].WaitingFor, "operator") {
		t.Errorf("waiting for %q", s.Jobs[0].WaitingFor)
	}
	c := h.client()
	ctx := context.Background()
	var ups []appliance.Update
	if err := c.Get(ctx, "/appliance/update-manager/updates", &ups); err != nil || len(ups) != 1 || ups[0].Version != "1.1.0" || ups[0].Status != appliance.TaskQueued {
		t.Fatalf("updates = %+v, %v", ups, err)
	}
	// Errors in the seed's format.
	var task appliance.Task
	err := c.Post(ctx, "/appliance/update-manager/updates/9.9.9/actions/install", &task)
	if e, ok := err.(*localapi.Error); !ok || e.Status != 404 || e.Code != appliance.CodeNotFound {
		t.Errorf("install of an unknown version: %v", err)
	}
	if err := c.Get(ctx, "/appliance/update-manager/tasks/nope", &task); err == nil {
		t.Errorf("unknown task found")
	}
	if err := c.Post(ctx, "/appliance/update-manager/updates/1.1.0/actions/install", &task); err != nil {
		t.Fatal(err)
	}
	if task.ID != s.Jobs[0].UUID || task.Type != appliance.TaskTypeInstall || (task.Status != appliance.TaskQueued && task.Status != appliance.TaskRunning) {
		t.Errorf("task = %+v", task)
	}
	eventually(t, "the task to succeed", func() bool {
		task = appliance.Task{}
		return c.Get(ctx, "/appliance/update-manager/tasks/"+s.Jobs[0].UUID, &task) == nil && task.Status == appliance.TaskSuccess
	}, func() string { return fmt.Sprintf("task = %+v\n%s", task, h.log.String()) })
	if task.Progress != 100 || task.StartTime == 0 || task.CompleteTime < task.StartTime {
		t.Errorf("task = %+v", task)
	}
	f.waitUpdate(u.ID, "the update to succeed", func(u okta.AgentPoolUpdate) bool {
		return u.Status == okta.JobSuccess && len(u.Agents) == 1 && u.Agents[0].Version == "1.1.0"
	})
}

// TestRestartMidJobResumes kills poolagent with SIGKILL while the new
// version is being health-checked; the restarted daemon recovers the
// journal, commits and reports Success.
func TestRestartMidJobResumes(t *testing.T) {
	f := newFleet(t, []release{{"AD", "1.1.0", sampleBins["1.1.0"]}})
	h := f.newHost(hostOpts{grace: "4s"})
	h.enroll()
	h.start()
	u := f.createUpdate(`{"targetVersion":"1.1.0"}`)
	h.waitStatus("the health check phase", func(s localapi.Status) bool {
		return len(s.Jobs) == 1 && s.Jobs[0].UpdateStatus == "PendingCompletion"
	})
	h.kill()
	if _, err := os.Stat(filepath.Join(h.dir, "state", "journal", "ad-agent.json")); err != nil {
		t.Fatalf("no journal entry after the kill: %v", err)
	}
	h.start()
	f.waitUpdate(u.ID, "the update to succeed after the restart", func(u okta.AgentPoolUpdate) bool {
		return u.Status == okta.JobSuccess && len(u.Agents) == 1 && u.Agents[0].Version == "1.1.0"
	})
	if v := h.binaryVersion(); v != "1.1.0" {
		t.Errorf("binary says %q", v)
	}
	if !strings.Contains(h.log.String(), "recovered job") {
		t.Errorf("no recovery logged:\n%s", h.log.String())
	}
}

// TestBadJobRefused: a job whose artifact URL is off the configured server
// is refused and reported Failed; nothing is downloaded or changed.
func TestBadJobRefused(t *testing.T) {
	var port string
	f := newFleet(t, []release{{"AD", "1.1.0", sampleBins["1.1.0"]}}, func(c *controlplane.Config) {
		_, port, _ = net.SplitHostPort(c.Listen)
		c.ExternalURL = "http://localhost:" + port // artifact URLs on another origin than the agent's server_url
	})
	h := f.newHost(hostOpts{})
	h.enroll()
	h.start()
	u := f.createUpdate(`{"targetVersion":"1.1.0"}`)
	got := f.waitUpdate(u.ID, "the update to fail", func(u okta.AgentPoolUpdate) bool {
		return len(u.Agents) == 1 && u.Agents[0].UpdateStatus == okta.InstanceFailed
	})
	if msg := got.Agents[0].UpdateMessage; !strings.HasPrefix(msg, "JOB_REFUSED: ") || !strings.Contains(msg, "artifact URL") {
		t.Errorf("message = %q", msg)
	}
	if v := h.binaryVersion(); v != "1.0.0" {
		t.Errorf("binary changed to %q", v)
	}
	if ents, _ := os.ReadDir(filepath.Join(h.dir, "state", "downloads")); len(ents) != 0 {
		t.Errorf("downloads: %v", ents)
	}
}

// TestDependencies keeps the daemon small: no control plane, no SQL, no
// Prometheus client (the server's metrics library).
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "/controlplane") || strings.Contains(dep, "sqlite") || strings.Contains(dep, "database/sql") ||
			strings.Contains(dep, "pgx") || strings.Contains(dep, "lib/pq") || strings.HasPrefix(dep, "modernc.org/") ||
			strings.HasPrefix(dep, "github.com/prometheus/client_golang") {
			t.Errorf("poolagent links %s", dep)
		}
	}
}
