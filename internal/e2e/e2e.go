// Package e2e runs the whole system as real processes on 127.0.0.1: it
// builds poolserver, poolagent and the sample managed agent, starts a
// poolserver on a fresh SQLite data dir, and starts poolagents as
// simulated hosts, each with its own state dir and install root. The demo
// (examples/demo) and the end-to-end tests (test/e2e) both drive it.
package e2e

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/internal/devpki"
)

// Bins are the built programs.
type Bins struct {
	Dir        string
	Poolserver string
	Poolagent  string
	root       string // the module root
}

// ModuleRoot finds the directory holding go.mod, from the working dir up.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

func goBuild(ctx context.Context, root, out, pkg string, ldflags string) error {
	args := []string{"build", "-trimpath", "-o", out}
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// Build compiles poolserver and poolagent into dir; poolagent is stamped
// with agentVersion.
func Build(ctx context.Context, dir, agentVersion string) (*Bins, error) {
	root, err := ModuleRoot()
	if err != nil {
		return nil, err
	}
	b := &Bins{Dir: dir, Poolserver: filepath.Join(dir, "poolserver"), Poolagent: filepath.Join(dir, "poolagent"), root: root}
	if err := goBuild(ctx, root, b.Poolserver, "./cmd/poolserver", ""); err != nil {
		return nil, err
	}
	if err := b.BuildAgent(ctx, b.Poolagent, agentVersion); err != nil {
		return nil, err
	}
	return b, nil
}

// BuildAgent builds poolagent stamped with version into out.
func (b *Bins) BuildAgent(ctx context.Context, out, version string) error {
	return goBuild(ctx, b.root, out, "./cmd/poolagent", "-X github.com/poolagent/poolagent/internal/version.Version="+version)
}

// BuildSampleUnhealthyIf builds the sample managed agent at version,
// unhealthy on hosts whose agent environment sets the variable env.
func (b *Bins) BuildSampleUnhealthyIf(ctx context.Context, version, env string) (string, error) {
	return b.buildSample(ctx, version, "-X main.version="+version+" -X main.unhealthyIf="+env)
}

// buildSample builds the sample managed agent with ldflags into a
// directory of its own under Dir: tests running in parallel may build
// different variants of one version at once.
func (b *Bins) buildSample(ctx context.Context, version, ldflags string) (string, error) {
	dir, err := os.MkdirTemp(b.Dir, "sampleagent-"+version+"-")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "sampleagent-"+version)
	return out, goBuild(ctx, b.root, out, "./examples/sampleagent", ldflags)
}

// BuildSample builds the sample managed agent at version; healthy=false
// builds a release whose health check fails.
func (b *Bins) BuildSample(ctx context.Context, version string, healthy bool) (string, error) {
	ld := "-X main.version=" + version
	if !healthy {
		ld += " -X main.healthy=false"
	}
	return b.buildSample(ctx, version, ld)
}

// BuildSampleFailingAfter builds the sample managed agent at version whose
// health check passes for after from its start, then fails (503): a
// release that passes the install's check and regresses later.
func (b *Bins) BuildSampleFailingAfter(ctx context.Context, version string, after time.Duration) (string, error) {
	return b.buildSample(ctx, version, "-X main.version="+version+" -X main.failAfter="+after.String())
}

// FreeAddr returns a free 127.0.0.1 address.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Server is a running poolserver.
type Server struct {
	Bins    *Bins
	DataDir string
	DB      string // a PostgreSQL DSN, or "" for SQLite in DataDir
	URL     string
	Token   string // okta.agentPools.manage
	Log     string // its log file
	// CA is the throwaway CA bundle (a PEM file) the server's certificate
	// chains to, "" when it serves plain HTTP: poolagent's server_ca
	// (HostOptions.ServerCA).
	CA string
	// Client trusts CA; every request to the server goes through it.
	Client *http.Client
	env    []string // more environment of its process (ServerOptions.Env)
	config string
	cmd    *exec.Cmd
	done   chan struct{}
}

// StartServer writes a config for fast test timings and starts poolserver
// on a fresh data dir, serving HTTPS with a certificate of a throwaway CA
// (Server.CA) as in production.
func StartServer(ctx context.Context, b *Bins, dir string) (*Server, error) {
	return StartServerWith(ctx, b, dir, ServerOptions{})
}

// ServerOptions adjust StartServerWith.
type ServerOptions struct {
	// LogLevel is log_level (default info); "debug" logs every request
	// (Requests counts them).
	LogLevel string
	// Env is more environment (NAME=value) for the server's process, e.g.
	// ZONEINFO naming a directory of test zones (WriteZone).
	Env []string
}

// StartServerWith is StartServer with options.
func StartServerWith(ctx context.Context, b *Bins, dir string, o ServerOptions) (*Server, error) {
	return startServer(ctx, b, dir, filepath.Join(dir, "server"), "", "poolserver", true, o)
}

// StartReplica starts a poolserver on dataDir and, when db is set, on that
// PostgreSQL database; several replicas may share both. name tells their
// config and log files apart. The first replica of a database creates the
// API token; later ones reuse it (Token may be set after start).
// Replicas serve plain HTTP on 127.0.0.1.
func StartReplica(ctx context.Context, b *Bins, dir, dataDir, db, name string) (*Server, error) {
	return startServer(ctx, b, dir, dataDir, db, name, false, ServerOptions{})
}

func startServer(ctx context.Context, b *Bins, dir, dataDir, db, name string, useTLS bool, o ServerOptions) (*Server, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	s := &Server{Bins: b, DataDir: dataDir, DB: db, URL: "http://" + addr, Log: filepath.Join(dir, name+".log"),
		config: filepath.Join(dir, name+".toml"), Client: http.DefaultClient, env: o.Env}
	if err := os.MkdirAll(s.DataDir, 0o700); err != nil {
		return nil, err
	}
	tlsKeys := ""
	if useTLS {
		pki := filepath.Join(dir, name+"-pki")
		if err := os.MkdirAll(pki, 0o700); err != nil {
			return nil, err
		}
		ca, err := devpki.NewCA(pki, "ca")
		if err != nil {
			return nil, err
		}
		pair, err := ca.Server("server")
		if err != nil {
			return nil, err
		}
		if s.Client, err = clientTrusting(ca.CertFile); err != nil {
			return nil, err
		}
		s.CA, s.URL = ca.CertFile, "https://"+addr
		tlsKeys = fmt.Sprintf("tls_cert = %q\ntls_key = %q\n", pair.CertFile, pair.KeyFile)
	}
	cfg := fmt.Sprintf(`listen = %q
data_dir = %q
db = %q
log_format = "json"
log_level = %q
`+tlsKeys+`[heartbeat]
interval = "1s"
inactive_after = 10
flush_interval = "500ms"
[rollout]
tick = "200ms"
`, addr, s.DataDir, db, cmp.Or(o.LogLevel, "info"))
	if err := os.WriteFile(s.config, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	tok, err := s.CLI(ctx, "token", "create", "--scope", "okta.agentPools.manage", "--name", "e2e")
	if err != nil {
		return nil, err
	}
	s.Token = tok
	return s, nil
}

// Start starts (or restarts) the server process on its data dir.
func (s *Server) Start(ctx context.Context) error {
	logf, err := os.OpenFile(s.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.Bins.Poolserver, "serve", "--config", s.config)
	cmd.Env = append(os.Environ(), s.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start poolserver: %w", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(s.done) }()
	return waitHTTP(ctx, s.Client, s.URL+"/readyz", 30*time.Second)
}

// Stop sends SIGTERM and waits.
func (s *Server) Stop() error { return stopProcess(s.cmd, s.done, false) }

// Kill sends SIGKILL and waits.
func (s *Server) Kill() error { return stopProcess(s.cmd, s.done, true) }

// stopProcess sends SIGTERM (SIGKILL when hard) and waits for the process
// to exit, killing it if it has not after 20 s.
func stopProcess(cmd *exec.Cmd, done chan struct{}, hard bool) error {
	if cmd == nil || cmd.Process == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	_ = signalStop(cmd, hard)
	select {
	case <-done:
		return nil
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s did not stop within 20 s", filepath.Base(cmd.Path))
	}
}

// CLI runs a poolserver subcommand on the server's data dir and returns
// its trimmed standard output.
func (s *Server) CLI(ctx context.Context, args ...string) (string, error) {
	if len(args) >= 2 {
		extra := []string{"--data-dir", s.DataDir}
		if s.DB != "" {
			extra = append(extra, "--db", s.DB)
		}
		args = append(args[:2:2], append(extra, args[2:]...)...)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, s.Bins.Poolserver, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("poolserver %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(stdout.String()), nil
}

// API sends one Agent Pools API request with the manage token and decodes
// a JSON reply into out (when not nil).
func (s *Server) API(ctx context.Context, method, path, body string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "SSWS "+s.Token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, b)
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// Update reads one update.
func (s *Server) Update(ctx context.Context, poolID, id string) (okta.AgentPoolUpdate, error) {
	var u okta.AgentPoolUpdate
	_, err := s.API(ctx, "GET", "/api/v1/agentPools/"+poolID+"/updates/"+id, "", &u)
	return u, err
}

// Metric reads one sample of the server's /metrics: name with its labels
// as Prometheus' text format writes them (`poolserver_jobs_finished_total{outcome="failed"}`).
func (s *Server) Metric(ctx context.Context, sample string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("GET /metrics: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %s: %s", resp.Status, b)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				return 0, fmt.Errorf("metric %s: %q: %w", sample, v, err)
			}
			return f, nil
		}
	}
	return 0, fmt.Errorf("metric %s: not in /metrics", sample)
}

// LogEntries returns the server's JSON log lines whose message starts
// with msg.
func (s *Server) LogEntries(msg string) ([]map[string]any, error) {
	b, err := os.ReadFile(s.Log)
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	for _, line := range bytes.Split(b, []byte("\n")) {
		var e map[string]any
		if json.Unmarshal(line, &e) == nil && strings.HasPrefix(fmt.Sprint(e["msg"]), msg) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Keys is a minisign key pair made with `poolserver key generate`.
type Keys struct {
	Private string // path
	Public  string // the line poolagent pins
}

// GenerateKeys makes a release signing key pair in dir.
func (s *Server) GenerateKeys(ctx context.Context, dir string) (Keys, error) {
	prefix := filepath.Join(dir, "release")
	cmd := exec.CommandContext(ctx, s.Bins.Poolserver, "key", "generate", "--out", prefix)
	out, err := cmd.Output()
	if err != nil {
		return Keys{}, fmt.Errorf("key generate: %w", err)
	}
	return Keys{Private: prefix + ".key", Public: strings.TrimSpace(string(out))}, nil
}

// Requests returns how many requests for a path with prefix the server
// answered with a 2xx status, as a server started with LogLevel "debug"
// logs every request.
func (s *Server) Requests(prefix string) (int, error) {
	es, err := s.LogEntries("request")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range es {
		if p, _ := e["path"].(string); strings.HasPrefix(p, prefix) {
			if st, _ := e["status"].(float64); st < 200 || st >= 300 {
				continue
			}
			n++
		}
	}
	return n, nil
}

// Publish signs file as name/version for this platform and publishes it.
// It builds no patches (they take seconds a release) unless extra, more
// flags of release publish, asks for them (--deltas K). The signed copy
// and its signature are written in the server's own directory, so tests
// in parallel may publish one built file with their own keys.
func (s *Server) Publish(ctx context.Context, k Keys, name, version, goos, arch, file, channel string, extra ...string) error {
	dir, err := os.MkdirTemp(filepath.Dir(s.config), "release-")
	if err != nil {
		return err
	}
	signed := filepath.Join(dir, filepath.Base(file)+"-"+version+"-"+goos+"-"+arch)
	if err := copyFile(file, signed, 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, s.Bins.Poolserver, "release", "sign", "--key", k.Private, "--name", name, "--version", version,
		"--os", goos, "--arch", arch, "--file", signed)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("release sign: %v: %s", err, b)
	}
	args := append([]string{"release", "publish", "--name", name, "--version", version, "--os", goos, "--arch", arch,
		"--channel", channel, "--file", signed, "--signature", signed + ".minisig", "--deltas", "0"}, extra...)
	_, err = s.CLI(ctx, args...)
	return err
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, mode)
}

// clientTrusting returns an HTTP client that trusts the CA bundle in caFile.
func clientTrusting(caFile string) (*http.Client, error) {
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no certificate", caFile)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}, nil
}

// WaitHTTP polls url until it answers or timeout passes.
func WaitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	return waitHTTP(ctx, http.DefaultClient, url, timeout)
}

func waitHTTP(ctx context.Context, c *http.Client, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within %s: %v", url, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Eventually polls cond until it returns true, an error, or timeout.
func Eventually(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		last = err
		if time.Now().After(deadline) {
			if last != nil {
				return fmt.Errorf("not reached within %s: %w", timeout, last)
			}
			return fmt.Errorf("not reached within %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
