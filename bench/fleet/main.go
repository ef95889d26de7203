// Command fleet is poolserver's load benchmark and fleet simulator. It
// builds and starts a real poolserver (SQLite) as a child process on
// 127.0.0.1, plays N hosts against it over loopback, and prints one
// markdown table:
//
//  1. heartbeats per second at 64 and 256 concurrent connections with
//     p50/p99 latency, as a ratio of a bare net/http JSON echo server
//     (1 KB in, 1 KB out) measured in the same run with the same load
//     generator;
//  2. a rollout of one update across all simulated hosts in one pool:
//     time from create to all Success with a simulated install, and the
//     server's CPU and peak RSS meanwhile;
//  3. server memory per 10,000 registered hosts.
//
// Everything is bounded in time and count and talks only to 127.0.0.1.
//
//	go run ./bench/fleet [-hosts 10000] [-duration 8s] [-interval 5s] [-install 1s]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/controlplane/store/postgres"
	"github.com/poolagent/poolagent/controlplane/store/sqlite"
)

func main() {
	if len(os.Args) > 2 && os.Args[1] == "-echo" {
		echoServer(os.Args[2])
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
}

type options struct {
	hosts    int
	duration time.Duration
	interval time.Duration
	install  time.Duration
	conns    []int
	timeout  time.Duration
	pg       string // a PostgreSQL DSN: also measure heartbeats on PostgreSQL
}

func run() error {
	var o options
	var conns string
	flag.IntVar(&o.hosts, "hosts", 10000, "simulated hosts")
	flag.DurationVar(&o.duration, "duration", 8*time.Second, "length of each heartbeat load step")
	flag.DurationVar(&o.interval, "interval", 5*time.Second, "heartbeat interval of the simulated hosts during the rollout")
	flag.DurationVar(&o.install, "install", time.Second, "simulated install time of one host")
	flag.StringVar(&conns, "conns", "64,256", "concurrent connections of the heartbeat load steps")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up after this long")
	rolloutInterval := flag.Duration("rollout-interval", 30*time.Second, "heartbeat interval of the hosts in the timed rollout (the issue's 30 s)")
	rolloutOnly := flag.Bool("rollout-only", false, "measure only the rollout (no load steps, no safety scenarios)")
	loadOnly := flag.Bool("load-only", false, "measure only the heartbeat load steps (no rollout, no safety scenarios)")
	soakFor := flag.Duration("soak", 0, "instead of the benchmark, soak a fleet for this long (make soak: 30m)")
	flag.StringVar(&o.pg, "pg", os.Getenv("POOLAGENT_BENCH_PG"), "PostgreSQL DSN: also measure heartbeats with poolserver on PostgreSQL")
	flag.Parse()
	for _, c := range strings.Split(conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			return fmt.Errorf("-conns %q: want numbers", conns)
		}
		o.conns = append(o.conns, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()

	work, err := os.MkdirTemp("", "poolagent-fleet-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bin := filepath.Join(work, "poolserver")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/poolserver").CombinedOutput(); err != nil {
		return fmt.Errorf("build poolserver: %v\n%s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if *soakFor > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), *soakFor+5*time.Minute)
		defer cancel()
		return soak(ctx, bin, work, o, *soakFor)
	}

	// Baseline: a bare net/http JSON echo server, same load generator.
	echoAddr := freeAddr()
	echo := exec.Command(self, "-echo", echoAddr)
	echo.Stderr = os.Stderr
	if err := echo.Start(); err != nil {
		return err
	}
	defer stop(echo)
	if err := waitUp(ctx, "http://"+echoAddr+"/"); err != nil {
		return err
	}
	echoHosts := []simHost{{id: "echo", secret: "x"}}

	// poolserver with N registered hosts.
	f, err := setup(ctx, work, o.hosts, "")
	if err != nil {
		return err
	}
	srv, err := startServer(ctx, bin, f.dir, o, "")
	if err != nil {
		return err
	}
	defer stop(srv.cmd)
	rssEmpty := srv.rss()
	// One heartbeat from every host, gently: the per-host state (auth
	// cache, fingerprints, keep-alive times) is now in memory.
	oneRound(ctx, srv.base+"/beta/managed-clients/", f.hosts)
	rssHosts := srv.rss()

	var rows []loadRow
	if *rolloutOnly {
		o.conns = nil
	}
	var cpus [][2]float64 // CPU seconds of the echo and of poolserver in each step
	for _, c := range o.conns {
		e0 := (&server{cmd: echo}).cpu()
		b := load(ctx, "http://"+echoAddr+"/", echoHosts, c, o.duration)
		e1, s0 := (&server{cmd: echo}).cpu(), srv.cpu()
		s := load(ctx, srv.base+"/beta/managed-clients/", f.hosts, c, o.duration)
		cpus = append(cpus, [2]float64{e1 - e0, srv.cpu() - s0})
		rows = append(rows, loadRow{c, s, b})
	}
	if *loadOnly {
		for i, r := range rows {
			fmt.Printf("| heartbeats/s at %d connections (p50 / p99) | %.0f/s (%.2f / %.2f ms) | echo: %.0f/s (%.2f / %.2f ms) | %.2f | p99 %.2fx | CPU/request %.0f µs, echo %.0f µs |\n",
				r.conns, r.server.rate, r.server.p50*1e3, r.server.p99*1e3, r.base.rate, r.base.p50*1e3, r.base.p99*1e3,
				r.server.rate/r.base.rate, r.server.p99/r.base.p99,
				1e6*cpus[i][1]/(r.server.rate*o.duration.Seconds()), 1e6*cpus[i][0]/(r.base.rate*o.duration.Seconds()))
		}
		return nil
	}

	ro := o
	ro.interval = *rolloutInterval
	roll, err := rollout(ctx, srv, f, ro, goodRollout)
	if err != nil {
		return err
	}
	if *rolloutOnly {
		fmt.Printf("| rollout of 1 update to %d hosts: create to all Success | %.1f s | heartbeat interval %s + install %s = %.1f s | %.2f | ≤ 1.1 |\n",
			o.hosts, roll.took.Seconds(), ro.interval, o.install, (ro.interval + o.install).Seconds(), roll.took.Seconds()/(ro.interval+o.install).Seconds())
		fmt.Printf("| server CPU during the rollout | %.2f s CPU over %.1f s | - | - | - |\n", roll.cpu, roll.took.Seconds())
		return nil
	}
	hwm := srv.hwm()
	stop(srv.cmd)

	// The same heartbeat load with poolserver on PostgreSQL.
	var pgRows []loadRow
	if o.pg != "" {
		pf, err := setup(ctx, filepath.Join(work, "pg"), o.hosts, o.pg)
		if err != nil {
			return err
		}
		psrv, err := startServer(ctx, bin, pf.dir, o, o.pg)
		if err != nil {
			return err
		}
		defer stop(psrv.cmd)
		oneRound(ctx, psrv.base+"/beta/managed-clients/", pf.hosts)
		for i, c := range o.conns {
			s := load(ctx, psrv.base+"/beta/managed-clients/", pf.hosts, c, o.duration)
			pgRows = append(pgRows, loadRow{c, s, rows[i].base})
		}
	}

	// Rollout safety on a fresh fleet each: a bad release against a 5%
	// error budget, and download starts with and without splay.
	fresh := func(name string, sc scenario) (rolloutResult, error) {
		ff, err := setup(ctx, filepath.Join(work, name), o.hosts, "")
		if err != nil {
			return rolloutResult{}, err
		}
		fs, err := startServer(ctx, bin, ff.dir, o, "")
		if err != nil {
			return rolloutResult{}, err
		}
		defer stop(fs.cmd)
		return rollout(ctx, fs, ff, o, sc)
	}
	const guardBound = 50
	budget, err := fresh("budget", scenario{settings: fmt.Sprintf(`{"maxUnavailable":%d}`, guardBound),
		update: `{"targetVersion":"1.1.0","rollout":{"errorBudget":{"percent":5}}}`, fail: true, want: okta.JobFailed})
	if err != nil {
		return fmt.Errorf("error budget scenario: %w", err)
	}
	noSplay, err := fresh("nosplay", scenario{update: `{"targetVersion":"1.1.0"}`, download: true, want: okta.JobSuccess})
	if err != nil {
		return fmt.Errorf("no-splay scenario: %w", err)
	}
	splay, err := fresh("splay", scenario{update: `{"targetVersion":"1.1.0","rollout":{"splayMinutes":1}}`, download: true, want: okta.JobSuccess})
	if err != nil {
		return fmt.Errorf("splay scenario: %w", err)
	}

	fmt.Printf("| poolserver fleet benchmark, %d hosts, SQLite, 2 cores shared by server and load generator | measured | baseline (same run) | ratio | goal |\n", o.hosts)
	fmt.Println("|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Printf("| heartbeats/s at %d connections (p50 / p99) | %.0f/s (%.2f / %.2f ms) | bare net/http JSON echo, 1 KB in and out: %.0f/s (%.2f / %.2f ms) | %.2f | ≥ 0.4, p99 < 50 ms |\n",
			r.conns, r.server.rate, r.server.p50*1e3, r.server.p99*1e3, r.base.rate, r.base.p50*1e3, r.base.p99*1e3, r.server.rate/r.base.rate)
	}
	for _, r := range pgRows {
		fmt.Printf("| heartbeats/s at %d connections on PostgreSQL (p50 / p99) | %.0f/s (%.2f / %.2f ms) | the echo server above: %.0f/s | %.2f | - |\n",
			r.conns, r.server.rate, r.server.p50*1e3, r.server.p99*1e3, r.base.rate, r.server.rate/r.base.rate)
	}
	fmt.Printf("| rollout of 1 update to %d hosts: create to all Success | %.1f s | heartbeat interval %s + install %s = %.1f s | %.2f | ≤ 1.1 |\n",
		o.hosts, roll.took.Seconds(), ro.interval, o.install, (ro.interval + o.install).Seconds(), roll.took.Seconds()/(ro.interval+o.install).Seconds())
	fmt.Printf("| server CPU during the rollout | %.2f s CPU over %.1f s (%.0f%% of one core) | - | - | - |\n",
		roll.cpu, roll.took.Seconds(), 100*roll.cpu/roll.took.Seconds())
	fmt.Printf("| server peak RSS (VmHWM) after the rollout | %.1f MB | - | - | - |\n", float64(hwm)/(1<<20))
	fmt.Printf("| server memory per 10,000 registered hosts | %.1f MB | RSS before any heartbeat: %.1f MB | - | - |\n",
		float64(rssHosts-rssEmpty)/(1<<20)*10000/float64(o.hosts), float64(rssEmpty)/(1<<20))
	fmt.Printf("| bad release, error budget 5%%, maxUnavailable %d: hosts attempted before the halt | %d of %d (%.1f%%) | the budget: %d failures (5%%) | - | halts near 5%% |\n",
		guardBound, budget.jobs, o.hosts, 100*float64(budget.jobs)/float64(o.hosts), o.hosts*5/100)
	fmt.Printf("| availability guard: most hosts installing at once, over every simulated step | %d | maxUnavailable %d | - | never above |\n",
		budget.maxInFlight, guardBound)
	fmt.Printf("| peak artifact download starts in one second, splay 1 min | %d/s | no splay, same fleet: %d/s | %.2f | below the unsplayed peak |\n",
		splay.peakStarts, noSplay.peakStarts, float64(splay.peakStarts)/float64(max(noSplay.peakStarts, 1)))
	fmt.Fprintf(os.Stderr, "error budget: %s\n", budget.halted)
	fmt.Fprintf(os.Stderr, "rollout: %d heartbeats, %d jobs, %d 429s, %d errors\n", roll.beats, roll.jobs, roll.limited, roll.errs)
	return nil
}

type loadRow struct {
	conns        int
	server, base loadResult
}

// echoServer answers every POST with 1 KB of JSON after reading the body.
func echoServer(addr string) {
	reply := bytes.Repeat([]byte("x"), 1000)
	reply = []byte(`{"body":"` + string(reply) + `"}`)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v map[string]any
		_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&v)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(reply)
	})
	_ = http.ListenAndServe(addr, h)
}

type simHost struct {
	id, secret string
}

type fixture struct {
	dir   string
	pool  *store.Pool
	token string
	hosts []simHost
}

// setup registers a pool and N clients directly in a fresh data dir (and
// the PostgreSQL database dsn, when set).
func setup(ctx context.Context, work string, n int, dsn string) (*fixture, error) {
	f := &fixture{dir: filepath.Join(work, "data")}
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		return nil, err
	}
	var st store.Store
	var err error
	if dsn != "" {
		st, err = postgres.Open(ctx, dsn)
	} else {
		st, err = sqlite.Open(ctx, f.dir)
	}
	if err != nil {
		return nil, err
	}
	defer st.Close()
	run := store.NewID("")[:6] // client ids unique per run (a PostgreSQL database outlives it)
	now := time.Now()
	f.pool = &store.Pool{ID: store.NewID("pol"), Name: "bench", Type: okta.AgentTypeAD, CreatedAt: now}
	if err := st.CreatePool(ctx, f.pool); err != nil {
		return nil, err
	}
	if f.token, _, err = controlplane.CreateToken(ctx, st, "bench", []store.Scope{store.ScopeManage}, 0, now); err != nil {
		return nil, err
	}
	for i := range n {
		secret, c, err := controlplane.CreateClient(ctx, st, f.pool.ID, fmt.Sprintf("host-%s-%05d", run, i), now)
		if err != nil {
			return nil, err
		}
		f.hosts = append(f.hosts, simHost{id: c.ID, secret: secret})
	}
	// A release to roll out (the server does not check signatures; hosts do).
	art, sig := filepath.Join(work, "agent"), filepath.Join(work, "agent.minisig")
	os.WriteFile(art, bytes.Repeat([]byte("A"), 4096), 0o644)
	os.WriteFile(sig, []byte("untrusted comment: bench\nRWQ\ntrusted comment: bench\nx\n"), 0o644)
	if _, err := controlplane.PublishRelease(ctx, st, f.dir, controlplane.Publish{Name: "AD", Version: "1.1.0", OS: "linux", Arch: "amd64",
		Channel: okta.ChannelGA, File: art, SignatureFile: sig}, now); err != nil && !errors.Is(err, store.ErrConflict) {
		return nil, err // a PostgreSQL database may already hold it from an earlier run
	}
	return f, nil
}

// body is a realistic heartbeat of about 1 KB.
func body(h simHost, version string, jobs []sailpoint.JobReport) []byte {
	typ := sailpoint.TypeVA
	req := sailpoint.StatusRequest{Status: sailpoint.StatusNormal, Type: &typ, Timestamp: time.Now().UTC().Format(time.RFC3339Nano),
		Body: sailpoint.ClientBody{
			ID: sailpoint.Flex(h.id), Hostname: sailpoint.Flex(h.id + ".corp.example.com"), InternalIP: "10.20.30.40",
			OSType: "ubuntu", OSVersion: "24.04", Hypervisor: "kvm", PlatformVersion: "2", VAVersion: "va-2026.11",
			Product: "idn", OS: "linux", Arch: "amd64", UptimeSeconds: "864000", AgentVersion: "0.3.0",
			LastSeen:   sailpoint.Flex(strconv.FormatInt(time.Now().UnixMilli(), 10)),
			Stacktrace: sailpoint.Flex(strings.Repeat(" ", 300)),
			Agents: []sailpoint.AgentReport{
				{Name: "ad-agent", Type: "AD", Version: version, UpdateStatus: "Success"},
				{Name: "fluent", Type: "fluent", Version: "50"},
				{Name: "toolbox", Type: "toolbox", Version: "6"},
			},
			Jobs: jobs,
		}}
	b, _ := json.Marshal(req)
	return b
}

type server struct {
	cmd  *exec.Cmd
	base string
}

func startServer(ctx context.Context, bin, dir string, o options, dsn string) (*server, error) {
	addr := freeAddr()
	cfg := fmt.Sprintf(`listen = %q
data_dir = %q
db = %q
log_level = "warn"
log_format = "json"
debug_listen = %q
[rate_limit]
requests_per_window = 100000
[heartbeat]
interval = %q
rate_limit = 1000000
[rollout]
tick = "500ms"
self_update = false
`, addr, dir, dsn, os.Getenv("FLEET_PPROF"), o.interval)
	path := filepath.Join(dir, "..", "poolserver.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--config", path)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, base: "http://" + addr}
	if err := waitUp(ctx, s.base+"/healthz"); err != nil {
		stop(cmd)
		return nil, err
	}
	return s, nil
}

// procStatus reads a field (in kB) of /proc/PID/status, in bytes.
func (s *server) procStatus(field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

func (s *server) rss() int64 { return s.procStatus("VmRSS") }
func (s *server) hwm() int64 { return s.procStatus("VmHWM") }

// cpu returns the server's user+system CPU seconds so far.
func (s *server) cpu() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start at ") ".
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

type loadResult struct {
	rate     float64
	p50, p99 float64
	errs     int64
}

// load sends heartbeats (or echo requests) from conns goroutines for d.
func load(ctx context.Context, url string, hosts []simHost, conns int, d time.Duration) loadResult {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	bodies := make([][]byte, len(hosts))
	for i, h := range hosts {
		bodies[i] = body(h, "1.0.0", nil)
	}
	var next atomic.Int64
	deadline := time.Now().Add(d)
	var mu sync.Mutex
	var lat []float64
	var errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]float64, 0, 4096)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				i := int(next.Add(1)-1) % len(hosts)
				h := hosts[i]
				target := url
				if h.id != "echo" {
					target = url + h.id + "/status"
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(bodies[i]))
				req.Header.Set("Authorization", "Bearer "+h.secret)
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs.Add(1)
					continue
				}
				mine = append(mine, time.Since(t0).Seconds())
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	took := time.Since(start).Seconds()
	sort.Float64s(lat)
	r := loadResult{rate: float64(len(lat)) / took, errs: errs.Load()}
	if len(lat) > 0 {
		r.p50, r.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	if r.errs > 0 {
		fmt.Fprintf(os.Stderr, "load %s at %d conns: %d errors\n", url, conns, r.errs)
	}
	return r
}

// oneRound sends one heartbeat per host over 8 connections.
func oneRound(ctx context.Context, url string, hosts []simHost) {
	tr := &http.Transport{MaxIdleConnsPerHost: 8}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(hosts) {
					return
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+hosts[i].id+"/status", bytes.NewReader(body(hosts[i], "1.0.0", nil)))
				req.Header.Set("Authorization", "Bearer "+hosts[i].secret)
				if resp, err := client.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
}

type rolloutResult struct {
	took                       time.Duration
	cpu                        float64
	beats, jobs, limited, errs int64
	maxInFlight                int64
	peakStarts                 int // most download starts in one second
	halted                     string
}

// rollout plays every host heartbeating at its interval (spread evenly),
// obeying its jobs: a job is started at once (RUNNING), installed for
// o.install, then reported FINISHED with the new version.
// scenario is one rollout the simulator plays.
type scenario struct {
	settings string // the pool's settings body
	update   string // the update body
	fail     bool   // hosts report their jobs FAILED (a bad release)
	download bool   // hosts download the artifact, not before the job's startAfter
	want     okta.AgentUpdateJobStatus
}

var goodRollout = scenario{update: `{"name":"bench","targetVersion":"1.1.0"}`, want: okta.JobSuccess}

func rollout(ctx context.Context, srv *server, f *fixture, o options, sc scenario) (rolloutResult, error) {
	var res rolloutResult
	tr := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	api := func(method, path, body string) (int, []byte, error) {
		req, _ := http.NewRequestWithContext(ctx, method, srv.base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "SSWS "+f.token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	settings := sc.settings
	if settings == "" {
		settings = fmt.Sprintf(`{"maxUnavailable":%d}`, len(f.hosts))
	}
	if code, b, err := api("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates/settings", settings); err != nil || code != 201 {
		return res, fmt.Errorf("settings: %d %s %v", code, b, err)
	}
	var inFlight, maxInFlight atomic.Int64
	var startsMu sync.Mutex
	starts := map[int64]int{} // download starts per second
	download := func(h simHost, j sailpoint.Job) {
		a := j.ManagedProcessConfiguration["ad-agent"].Artifact
		if a == nil {
			return
		}
		if at, err := time.Parse(time.RFC3339, j.StartAfter); err == nil {
			select {
			case <-time.After(time.Until(at)):
			case <-ctx.Done():
				return
			}
		}
		startsMu.Lock()
		starts[time.Now().Unix()]++
		startsMu.Unlock()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.URL, nil)
		req.Header.Set("Authorization", "Bearer "+h.secret)
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}

	sem := make(chan struct{}, 256) // bound the load generator's concurrency
	beat := func(h simHost, version string, jobs []sailpoint.JobReport) (sailpoint.StatusReply, error) {
		sem <- struct{}{}
		defer func() { <-sem }()
		var rep sailpoint.StatusReply
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.base+"/beta/managed-clients/"+h.id+"/status", bytes.NewReader(body(h, version, jobs)))
		req.Header.Set("Authorization", "Bearer "+h.secret)
		resp, err := client.Do(req)
		if err != nil {
			atomic.AddInt64(&res.errs, 1)
			return rep, err
		}
		defer resp.Body.Close()
		atomic.AddInt64(&res.beats, 1)
		if resp.StatusCode == http.StatusTooManyRequests {
			atomic.AddInt64(&res.limited, 1)
		}
		if resp.StatusCode != 200 {
			_, _ = io.Copy(io.Discard, resp.Body)
			return rep, fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return rep, json.NewDecoder(resp.Body).Decode(&rep)
	}

	hctx, stopHosts := context.WithCancel(ctx)
	defer stopHosts()
	var wg sync.WaitGroup
	for i, h := range f.hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			version := "1.0.0"
			// Spread the hosts evenly over one interval.
			offset := time.Duration(int64(o.interval) * int64(i) / int64(len(f.hosts)))
			t := time.NewTimer(offset)
			defer t.Stop()
			for {
				select {
				case <-hctx.Done():
					return
				case <-t.C:
				}
				rep, err := beat(h, version, nil)
				t.Reset(o.interval)
				if err != nil || len(rep.Body.Jobs) == 0 {
					continue
				}
				j := rep.Body.Jobs[0]
				if j.State != sailpoint.JobPending {
					continue
				}
				atomic.AddInt64(&res.jobs, 1)
				if n := inFlight.Add(1); n > maxInFlight.Load() {
					maxInFlight.Store(n) // racy max, good enough for a bound check
				}
				target := j.ManagedProcessConfiguration["ad-agent"].Version
				_, _ = beat(h, version, []sailpoint.JobReport{{UUID: j.UUID, State: sailpoint.JobRunning, Progress: 10, Phase: "download"}})
				if sc.download {
					download(h, j)
				}
				select {
				case <-hctx.Done():
					return
				case <-time.After(o.install):
				}
				inFlight.Add(-1)
				if sc.fail {
					_, _ = beat(h, version, []sailpoint.JobReport{{UUID: j.UUID, State: sailpoint.JobFailed, Progress: 100,
						UpdateStatus: "Failed", UpdateMessage: "HEALTH_CHECK: simulated bad release"}})
					continue
				}
				version = target
				_, _ = beat(h, version, []sailpoint.JobReport{{UUID: j.UUID, State: sailpoint.JobFinished, Progress: 100}})
			}
		}()
	}
	// Let every host check in once before the update exists.
	time.Sleep(o.interval + time.Second)

	cpu0 := srv.cpu()
	t0 := time.Now()
	code, b, err := api("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates", sc.update)
	if err != nil || code != 201 {
		return res, fmt.Errorf("create update: %d %s %v", code, b, err)
	}
	var u okta.AgentPoolUpdate
	_ = json.Unmarshal(b, &u)
	for {
		select {
		case <-ctx.Done():
			return res, errors.New("rollout did not finish before -timeout")
		case <-time.After(500 * time.Millisecond):
		}
		code, b, err := api("GET", "/api/v1/agentPools/"+f.pool.ID+"/updates/"+u.ID, "")
		if err != nil || code != 200 {
			continue
		}
		var cur okta.AgentPoolUpdate
		if json.Unmarshal(b, &cur) == nil && cur.Status == sc.want {
			res.halted = string(cur.Rollout)
			break
		}
		if cur.Status == okta.JobFailed || cur.Status == okta.JobSuccess {
			return res, fmt.Errorf("rollout ended %s, want %s: %s", cur.Status, sc.want, b[:min(len(b), 500)])
		}
	}
	res.took = time.Since(t0)
	res.cpu = srv.cpu() - cpu0
	if sc.fail {
		// Jobs already handed out finish; nothing new must be.
		time.Sleep(2*o.interval + o.install)
	}
	res.maxInFlight = maxInFlight.Load()
	startsMu.Lock()
	for _, n := range starts {
		res.peakStarts = max(res.peakStarts, n)
	}
	startsMu.Unlock()
	stopHosts()
	wg.Wait()
	return res, nil
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitUp(ctx context.Context, url string) error {
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not come up: %w", url, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func stop(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	}
}
