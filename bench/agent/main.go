//go:build linux

// Command agent benchmarks the poolagent daemon against a real poolserver
// (in process) and prints a markdown table: idle RSS against a bare Go
// daemon measured in the same run, CPU and wake-ups per heartbeat scaled to
// a 30 s interval, the stripped binary's size, and the share of heartbeats
// that reused a kept-alive connection (counted on the server). It is
// bounded by --duration.
//
//	go run ./bench/agent --duration 20s
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/poolagent/poolagent/agent/state"
	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/controlplane/store/sqlite"
	"github.com/poolagent/poolagent/signing"
)

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "bench/agent:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	duration := flag.Duration("duration", 20*time.Second, "how long the daemon heartbeats")
	interval := flag.Duration("interval", time.Second, "heartbeat interval during the run (results are scaled to 30 s)")
	flag.Parse()
	dir, err := os.MkdirTemp("", "bench-agent-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	agentBin, baseBin := filepath.Join(dir, "poolagent"), filepath.Join(dir, "baseline")
	for bin, pkg := range map[string]string{agentBin: "./cmd/poolagent", baseBin: "./bench/agent/baseline"} {
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", pkg, err, out)
		}
	}
	fi, err := os.Stat(agentBin)
	if err != nil {
		return err
	}

	// poolserver with connection and heartbeat counters.
	if err := os.MkdirAll(filepath.Join(dir, "server"), 0o700); err != nil {
		return err
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "server"))
	if err != nil {
		return err
	}
	defer st.Close()
	cfg := controlplane.DefaultConfig()
	cfg.DataDir = filepath.Join(dir, "server")
	cfg.Heartbeat.Interval = controlplane.Duration{Duration: *interval}
	cfg.Heartbeat.RateLimit = 100000
	srv := controlplane.New(cfg, st, nil)
	defer srv.Close()
	pool := &store.Pool{ID: store.NewID("pol"), Name: "bench", Type: okta.AgentTypeAD, CreatedAt: time.Now()}
	if err := st.CreatePool(ctx, pool); err != nil {
		return err
	}
	secret, client, err := controlplane.CreateClient(ctx, st, pool.ID, "", time.Now())
	if err != nil {
		return err
	}
	var conns, beats atomic.Int64
	h := srv.Handler()
	hs := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/status") {
				beats.Add(1)
			}
			h.ServeHTTP(w, r)
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
		IdleTimeout: 3 * time.Minute,
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = hs.Serve(l) }()
	defer hs.Close()

	// The agent: enrolled, no managed agents.
	stateDir := filepath.Join(dir, "state")
	if err := state.WriteCredentials(filepath.Join(stateDir, "client.json"), state.Credentials{
		ServerURL: "http://" + l.Addr().String(), ClientID: client.ID, Secret: secret}); err != nil {
		return err
	}
	pub, _, err := signing.GenerateKey()
	if err != nil {
		return err
	}
	pb, _ := pub.MarshalText()
	lines := strings.Split(strings.TrimSpace(string(pb)), "\n")
	conf := fmt.Sprintf("state_dir = %q\nheartbeat_interval = %q\nlog_level = \"warn\"\nlog_format = \"json\"\n[artifacts]\ntrusted_keys = [%q]\nallow_insecure_http = true\n",
		stateDir, interval.String(), lines[len(lines)-1])
	confPath := filepath.Join(dir, "poolagent.toml")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return err
	}

	base := exec.Command(baseBin)
	if err := base.Start(); err != nil {
		return err
	}
	defer func() { _ = base.Process.Kill(); _ = base.Wait() }()
	agent := exec.Command(agentBin, "run", "--config", confPath)
	agent.Stderr = os.Stderr
	if err := agent.Start(); err != nil {
		return err
	}
	defer func() { _ = agent.Process.Kill(); _ = agent.Wait() }()

	// Warm up (first heartbeat, host facts), then measure.
	time.Sleep(3 * *interval)
	cpu0, sw0, bsw0 := cpuTicks(agent.Process.Pid), switches(agent.Process.Pid), switches(base.Process.Pid)
	beats0 := beats.Load()
	time.Sleep(*duration)
	cpu1, sw1, bsw1 := cpuTicks(agent.Process.Pid), switches(agent.Process.Pid), switches(base.Process.Pid)
	n := beats.Load() - beats0
	rss, baseRSS := rssKiB(agent.Process.Pid), rssKiB(base.Process.Pid)
	_ = agent.Process.Signal(os.Interrupt)

	if n == 0 {
		return fmt.Errorf("no heartbeats in %s", *duration)
	}
	const hz = 100 // USER_HZ
	cpuPerBeat := time.Duration(float64(cpu1-cpu0) / hz * float64(time.Second) / float64(n))
	cpuPct := 100 * cpuPerBeat.Seconds() / 30
	wakePerBeat := float64(sw1-sw0) / float64(n)
	total := beats.Load()
	reuse := 100 * float64(total-conns.Load()) / float64(total)

	fmt.Printf("| metric | poolagent | baseline / goal |\n|---|---|---|\n")
	fmt.Printf("| idle RSS | %.1f MiB | bare Go daemon %.1f MiB; goal ≤16 MiB |\n", float64(rss)/1024, float64(baseRSS)/1024)
	fmt.Printf("| CPU per heartbeat | %s | — |\n", cpuPerBeat.Round(10*time.Microsecond))
	fmt.Printf("| CPU at a 30 s interval | %.4f %% | — |\n", cpuPct)
	baseWake := float64(bsw1-bsw0) / duration.Seconds() * interval.Seconds()
	fmt.Printf("| context switches (wake-ups) per interval | %.1f | bare daemon ticking once per interval: %.1f |\n", wakePerBeat, baseWake)
	fmt.Printf("| stripped binary (linux, -s -w, -trimpath, CGO_ENABLED=0) | %.1f MB | goal ≤12 MB |\n", float64(fi.Size())/1e6)
	fmt.Printf("| heartbeats on a reused connection | %.1f %% (%d heartbeats, %d connections) | goal ≥95 %% |\n", reuse, total, conns.Load())
	fmt.Printf("\n%d heartbeats at a %s interval over %s; CPU and wake-ups are per heartbeat, scaled to one every 30 s.\n", n, *interval, *duration)
	return nil
}

// cpuTicks is utime+stime of pid in clock ticks.
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return u + k
}

// switches sums the context switches of every thread of pid.
func switches(pid int) int64 {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	var n int64
	for _, t := range tasks {
		n += statusField(t, "voluntary_ctxt_switches:") + statusField(t, "nonvoluntary_ctxt_switches:")
	}
	return n
}

// rssKiB is VmRSS of pid.
func rssKiB(pid int) int64 {
	return statusField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")
}

func statusField(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key) {
			f := strings.Fields(strings.TrimPrefix(l, key))
			if len(f) > 0 {
				v, _ := strconv.ParseInt(f[0], 10, 64)
				return v
			}
		}
	}
	return 0
}
