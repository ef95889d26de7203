// Command fleet is poolserver's load benchmark and fleet simulator. It
// builds and starts a real poolserver (SQLite, or PostgreSQL with -pg) as
// a child process on 127.0.0.1, plays N hosts against it over loopback,
// and prints one markdown table:
//
//  1. heartbeats per second at 64 and 256 concurrent connections with
//     p50/p99 latency, as a ratio of a bare net/http JSON echo server
//     (1 KB in, 1 KB out) measured in the same run with the same load
//     generator;
//  2. a rollout of one update across all simulated hosts in one pool:
//     time from create to all Success with a simulated install, and the
//     server's CPU and peak RSS meanwhile;
//  3. server memory per 10,000 registered hosts, and the simulator's own
//     peak RSS per simulated host.
//
// The simulator is event-driven (see sim.go): a heap of host events and
// 256 worker goroutines, a few bytes of state per host, so it plays
// 300,000 hosts on a two-core machine. Everything is bounded in time and
// count and talks only to 127.0.0.1.
//
//	go run ./bench/fleet [-hosts 10000] [-duration 8s] [-interval 5s] [-install 1s]
//	go run ./bench/fleet -hosts 300000 -rollout-only -timeout 30m [-pg DSN]
//	go run ./bench/fleet -hosts 300000 -heartbeat-only 2m
//	go run ./bench/fleet -hosts 1000 -download-cap 50 [-download-size 8388608 -download-rate 4194304]
//	go run ./bench/fleet -delta-only [-delta-hosts 1000] [-delta-size 4]
//	go run ./bench/fleet -ramp '{"maxPerMinute":120,"ramp":{"startPerMinute":6,"factor":2,"successesToRaise":5}}' [-ramp-hosts 300]
//	go run ./bench/fleet -rollback-only [-hosts 10000] [-regress-after 1m] [-rollback-max-unavailable 500] [-rollback-soak 0] [-rollback-watch 5]
package main

import (
	"bytes"
	"cmp"
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
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/poolagent/poolagent/api/okta"
)

func main() {
	if len(os.Args) > 2 && os.Args[1] == "-echo" {
		echoServer(os.Args[2])
		return
	}
	if len(os.Args) > 3 && os.Args[1] == "-floor" {
		n, err := strconv.Atoi(os.Args[3])
		if err == nil {
			err = serveFloor(os.Args[2], n)
		}
		fmt.Fprintln(os.Stderr, "fleet -floor:", err)
		os.Exit(1)
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
	pg       string // a PostgreSQL DSN: also measure heartbeats with poolserver on PostgreSQL
	// maxDownloads is the server's artifacts.max_concurrent_downloads.
	maxDownloads int
	// floor: with -rollout-only, time the same rollout against a bare
	// control plane first (floor.go), the run's own baseline.
	floor bool
}

func run() error {
	var o options
	var conns string
	flag.IntVar(&o.hosts, "hosts", 10000, "simulated hosts")
	flag.IntVar(&simWorkers, "sim-conns", simWorkers, "the simulator's concurrent requests and connections to poolserver (its hosts share them)")
	flag.DurationVar(&o.duration, "duration", 8*time.Second, "length of each heartbeat load step")
	flag.DurationVar(&o.interval, "interval", 5*time.Second, "heartbeat interval of the simulated hosts in the safety scenarios")
	flag.DurationVar(&o.install, "install", time.Second, "simulated install time of one host")
	flag.StringVar(&conns, "conns", "64,256", "concurrent connections of the heartbeat load steps")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up after this long")
	rolloutInterval := flag.Duration("rollout-interval", 30*time.Second, "heartbeat interval of the hosts in the timed rollout and with -heartbeat-only (the issue's 30 s)")
	rolloutOnly := flag.Bool("rollout-only", false, "measure only the rollout (no load steps, no safety scenarios); with -pg, on PostgreSQL")
	loadOnly := flag.Bool("load-only", false, "measure only the heartbeat load steps (no rollout, no safety scenarios)")
	hbOnly := flag.Duration("heartbeat-only", 0, "only play the hosts heartbeating at -rollout-interval for this long, no update: the simulator's own cost and the idle server's")
	downloadCap := flag.Int("download-cap", 0, "instead of the benchmark, roll out a release whose artifact every host downloads, without a download cap and with artifacts.max_concurrent_downloads = N, and compare")
	downloadSize := flag.Int64("download-size", 8<<20, "with -download-cap: the artifact's size in bytes")
	downloadRate := flag.Int64("download-rate", 4<<20, "with -download-cap: each host's download speed in bytes a second (0: unpaced)")
	rollbackOnly := flag.Bool("rollback-only", false, "only the fleet rollback: a release that regresses -regress-after its install, waves [1,10,50,100], a 2% error budget, rollbackOnHalt")
	regressAfter := flag.Duration("regress-after", time.Minute, "with -rollback-only: how long after its install each host's agent turns unhealthy in its heartbeats")
	rollbackGuard := flag.Int("rollback-max-unavailable", 500, "with -rollback-only: the pool's maxUnavailable")
	rollbackSoak := flag.Int("rollback-soak", 0, "with -rollback-only: the update's rollout.soakMinutes (a soak longer than -regress-after holds the first wave; the update then pauses within its budget and the simulator stops it with ?rollback=true)")
	rollbackWatch := flag.Int("rollback-watch", 5, "with -rollback-only: the update's rollout.watchMinutes (how long the server watches a host's health after its install)")
	soakFor := flag.Duration("soak", 0, "instead of the benchmark, soak a fleet for this long (make soak: 30m)")
	deltaOnly := flag.Bool("delta-only", false, "only compare a minor release rolled out with patches and with full downloads (-delta-hosts, -delta-size, -interval)")
	deltaHosts := flag.Int("delta-hosts", 1000, "simulated hosts of -delta-only")
	deltaSize := flag.Int("delta-size", 4, "artifact size in MB of -delta-only")
	rampPolicy := flag.String("ramp", "", `instead of the benchmark, roll out to -ramp-hosts hosts with this rollout object (e.g. '{"maxPerMinute":120,"ramp":{"startPerMinute":6,"factor":2,"successesToRaise":5}}') and print the start rate over time`)
	rampHosts := flag.Int("ramp-hosts", 300, "simulated hosts of -ramp")
	flag.BoolVar(&o.floor, "floor", true, "with -rollout-only: first time the same rollout against a bare control plane (net/http and a byte per host, no store), the run's baseline")
	cpuProfile := flag.String("cpuprofile", "", "write the simulator's own CPU profile to this file (go tool pprof)")
	flag.StringVar(&o.pg, "pg", os.Getenv("POOLAGENT_BENCH_PG"), "PostgreSQL DSN: also measure heartbeats with poolserver on PostgreSQL (with -rollout-only or -heartbeat-only: run on PostgreSQL instead of SQLite)")
	flag.Parse()
	for _, c := range strings.Split(conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			return fmt.Errorf("-conns %q: want numbers", conns)
		}
		o.conns = append(o.conns, n)
	}
	if o.hosts < 1 {
		return errors.New("-hosts: want at least 1")
	}
	if *cpuProfile != "" {
		pf, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()

	work, err := os.MkdirTemp("", "poolagent-fleet-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if o.pg != "" {
		// A schema of the run's own: the server loads this run's hosts,
		// not every earlier run's.
		dsn, drop, err := freshSchema(ctx, o.pg)
		if err != nil {
			return fmt.Errorf("-pg: %w", err)
		}
		defer drop()
		o.pg = dsn
	}
	bin := filepath.Join(work, "poolserver")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/poolserver").CombinedOutput(); err != nil {
		return fmt.Errorf("build poolserver: %v\n%s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if *downloadCap > 0 {
		return runDownloadCap(ctx, bin, work, o, *downloadCap, *downloadSize, *downloadRate)
	}
	if *rollbackOnly {
		return runRollback(ctx, bin, work, o, *regressAfter, *rollbackGuard, *rollbackSoak, *rollbackWatch)
	}
	if *soakFor > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), *soakFor+5*time.Minute)
		defer cancel()
		return soak(ctx, bin, work, o, *soakFor)
	}
	if *rampPolicy != "" {
		if *rampHosts < 1 {
			return errors.New("-ramp-hosts: want at least 1")
		}
		return rampBench(ctx, bin, work, o, *rampPolicy, *rampHosts)
	}
	if *deltaOnly {
		if *deltaHosts < 1 || *deltaSize < 1 {
			return errors.New("-delta-hosts and -delta-size: want at least 1")
		}
		do := o
		do.hosts = *deltaHosts
		return deltaBench(ctx, bin, work, do, int64(*deltaSize)<<20)
	}
	if *rolloutOnly || *hbOnly > 0 {
		ro := o
		ro.interval = *rolloutInterval
		return runBig(ctx, bin, self, work, ro, *hbOnly)
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

	// N registered hosts, once: every scenario below runs on a copy.
	base, err := setup(ctx, filepath.Join(work, "base"), o.hosts, "")
	if err != nil {
		return err
	}
	fresh := func(name string) (*fixture, *server, error) {
		f, err := base.clone(filepath.Join(work, name))
		if err != nil {
			return nil, nil, err
		}
		srv, err := startServer(ctx, bin, f.dir, o, "")
		return f, srv, err
	}
	f, srv, err := fresh("main")
	if err != nil {
		return err
	}
	defer stop(srv.cmd)
	rssEmpty := srv.rss()
	// One heartbeat from every host, gently: the per-host state (auth
	// cache, fingerprints, keep-alive times) is now in memory.
	oneRound(ctx, srv.base, f.ids)
	rssHosts := srv.rss()

	var rows []loadRow
	if *rolloutOnly {
		o.conns = nil
	}
	var cpus [][2]float64 // CPU seconds of the echo and of poolserver in each step
	for _, c := range o.conns {
		e0 := (&server{cmd: echo}).cpu()
		b := load(ctx, "http://"+echoAddr+"/", true, f.ids, c, o.duration)
		e1, s0 := (&server{cmd: echo}).cpu(), srv.cpu()
		s := load(ctx, srv.base, false, f.ids, c, o.duration)
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
	if ro.interval != o.interval {
		// The rollout's hosts check in every ro.interval: a server told
		// another interval would take them for silent between two
		// heartbeats (inactive_after is counted in intervals) and hold
		// their jobs until they were heard again. Same data, new config.
		stop(srv.cmd)
		if srv, err = startServer(ctx, bin, f.dir, ro, ""); err != nil {
			return err
		}
		defer stop(srv.cmd)
	}
	roll, err := rollout(ctx, srv, f, ro, goodRollout)
	if err != nil {
		return err
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
		oneRound(ctx, psrv.base, pf.ids)
		for i, c := range o.conns {
			s := load(ctx, psrv.base, false, pf.ids, c, o.duration)
			pgRows = append(pgRows, loadRow{c, s, rows[i].base})
		}
		stop(psrv.cmd)
	}

	// Rollout safety on a fresh fleet each: a bad release against a 5%
	// error budget, and download starts with and without splay.
	scenarioRun := func(name string, sc scenario) (rolloutResult, error) {
		ff, fs, err := fresh(name)
		if err != nil {
			return rolloutResult{}, err
		}
		defer stop(fs.cmd)
		return rollout(ctx, fs, ff, o, sc)
	}
	const guardBound = 50
	budget, err := scenarioRun("budget", scenario{settings: fmt.Sprintf(`{"maxUnavailable":%d}`, guardBound),
		update: `{"targetVersion":"1.1.0","rollout":{"errorBudget":{"percent":5}}}`, fail: true, want: okta.JobFailed})
	if err != nil {
		return fmt.Errorf("error budget scenario: %w", err)
	}
	noSplay, err := scenarioRun("nosplay", scenario{update: `{"targetVersion":"1.1.0"}`, download: true, want: okta.JobSuccess})
	if err != nil {
		return fmt.Errorf("no-splay scenario: %w", err)
	}
	splay, err := scenarioRun("splay", scenario{update: `{"targetVersion":"1.1.0","rollout":{"splayMinutes":1}}`, download: true, want: okta.JobSuccess})
	if err != nil {
		return fmt.Errorf("splay scenario: %w", err)
	}
	simHWM := selfHWM()

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
	rolloutRows(o.hosts, ro, roll)
	fmt.Printf("| server peak RSS (VmHWM) after the rollout | %.1f MB | - | - | - |\n", mb(hwm))
	fmt.Printf("| server memory per 10,000 registered hosts | %.1f MB | RSS before any heartbeat: %.1f MB | - | - |\n",
		mb(rssHosts-rssEmpty)*10000/float64(o.hosts), mb(rssEmpty))
	fmt.Printf("| bad release, error budget 5%%, maxUnavailable %d: hosts attempted before the halt | %d of %d (%.1f%%) | the budget: %d failures (5%%) | - | halts near 5%% |\n",
		guardBound, budget.jobs, o.hosts, 100*float64(budget.jobs)/float64(o.hosts), o.hosts*5/100)
	fmt.Printf("| availability guard: most hosts installing at once, over every simulated step | %d | maxUnavailable %d | - | never above |\n",
		budget.maxInFlight, guardBound)
	fmt.Printf("| peak artifact download starts in one second, splay 1 min | %d/s | no splay, same fleet: %d/s | %.2f | below the unsplayed peak |\n",
		splay.peakStarts, noSplay.peakStarts, float64(splay.peakStarts)/float64(max(noSplay.peakStarts, 1)))
	simRows(o.hosts, base.setupTook, roll.simRSS, simHWM)
	fmt.Fprintf(os.Stderr, "error budget: %s\n", budget.halted)
	fmt.Fprintf(os.Stderr, "rollout: %d heartbeats, %d jobs, %d 429s, %d errors\n", roll.beats, roll.jobs, roll.limited, roll.errs)
	return nil
}

// runBig is -rollout-only and -heartbeat-only: one fleet at
// o.interval, on SQLite or (with -pg) PostgreSQL, for big runs.
func runBig(ctx context.Context, bin, self, work string, o options, hbOnly time.Duration) error {
	backend := "SQLite"
	if o.pg != "" {
		backend = "PostgreSQL"
	}
	var floor rolloutResult
	if hbOnly == 0 && o.floor {
		var err error
		if floor, err = runFloor(ctx, self, o); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "fleet: the floor's rollout took %.1f s (last taken %.1f s, last done %.1f s)\n", floor.took.Seconds(), floor.lastTaken.Seconds(), floor.lastDone.Seconds())
	}
	f, err := setup(ctx, work, o.hosts, o.pg)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "fleet: registered %d hosts in %.1f s (simulator peak RSS so far %.1f MB)\n", o.hosts, f.setupTook.Seconds(), mb(selfHWM()))
	srv, err := startServer(ctx, bin, f.dir, o, o.pg)
	if err != nil {
		return err
	}
	defer stop(srv.cmd)
	rssEmpty := srv.rss()
	var res rolloutResult
	var runErr error
	// A host's first heartbeat records its facts (a write); the idle
	// server and the rollout are measured after every host has sent it.
	first := time.Now()
	if failed := oneRound(ctx, srv.base, f.ids); failed > 0 {
		fmt.Fprintf(os.Stderr, "fleet: %d of the first heartbeats failed\n", failed)
	}
	fmt.Fprintf(os.Stderr, "fleet: every host's first heartbeat (%d at once) took %.1f s\n", firstRoundConns, time.Since(first).Seconds())
	if hbOnly > 0 {
		res, runErr = heartbeatOnly(ctx, srv, f, o, hbOnly)
	} else {
		res, runErr = rollout(ctx, srv, f, o, goodRollout)
	}
	rssHosts, hwm := srv.rss(), srv.hwm()
	fmt.Printf("| fleet simulator, %d hosts at a %s interval, poolserver on %s, 2 cores shared by server and simulator | measured | baseline | ratio | goal |\n",
		o.hosts, o.interval, backend)
	fmt.Println("|---|---|---|---|---|")
	switch {
	case runErr != nil:
		fmt.Printf("| %s | failed: %v | - | - | - |\n", map[bool]string{true: "heartbeats", false: "rollout"}[hbOnly > 0], runErr)
	case hbOnly > 0:
		want := float64(o.hosts) / o.interval.Seconds()
		rate := float64(res.rolloutBeats) / res.took.Seconds()
		fmt.Printf("| heartbeats/s, every host once per interval, over %.0f s (p50 / p99) | %.0f/s (%.2f / %.2f ms) | hosts / interval: %.0f/s | %.2f | 1.0 |\n",
			res.took.Seconds(), rate, res.p50*1e3, res.p99*1e3, want, rate/want)
		fmt.Printf("| idle server CPU per host per heartbeat interval | %.1f µs (%.0f%% of one core) | - | - | - |\n",
			res.cpu/(res.took.Seconds()/o.interval.Seconds())/float64(o.hosts)*1e6, 100*res.cpu/res.took.Seconds())
		fmt.Printf("| heartbeat errors / 429s | %d / %d of %d | - | - | 0 |\n", res.errs, res.limited, res.beats)
		simCPURow(res)
	default:
		rolloutRows(o.hosts, o, res)
		if floor.took > 0 {
			floorRow(o, floor, res)
		}
	}
	fmt.Printf("| server RSS with every host known / peak (VmHWM) | %.1f MB / %.1f MB | RSS before any heartbeat: %.1f MB | - | - |\n", mb(rssHosts), mb(hwm), mb(rssEmpty))
	simRows(o.hosts, f.setupTook, res.simRSS, selfHWM())
	if runErr == nil {
		fmt.Fprintf(os.Stderr, "%d heartbeats, %d jobs, %d 429s, %d errors\n", res.beats, res.jobs, res.limited, res.errs)
	}
	return runErr
}

// rolloutRows prints the timed rollout's rows.
func rolloutRows(hosts int, o options, r rolloutResult) {
	goal := (o.interval + o.install).Seconds()
	fmt.Printf("| rollout of 1 update to %d hosts: create to all Success | %.1f s | heartbeat interval %s + install %s = %.1f s | %.2f | ≤ 1.1 |\n",
		hosts, r.took.Seconds(), o.interval, o.install, goal, r.took.Seconds()/goal)
	fmt.Printf("| the create request (POST .../updates?agents=none) alone | %.2f s | - | - | - |\n", r.create.Seconds())
	fmt.Printf("| the last job taken / the last reported done, after the create | %.1f s / %.1f s (heartbeats a whole interval late: %d; sent early at the server's nextHeartbeat: %d) | - | - | - |\n",
		r.lastTaken.Seconds(), r.lastDone.Seconds(), r.behind, r.hinted)
	fmt.Printf("| server CPU during the rollout | %.2f s CPU over %.1f s (%.0f%% of one core) | - | - | - |\n",
		r.cpu, r.took.Seconds(), 100*r.cpu/r.took.Seconds())
	fmt.Printf("| heartbeat latency over the whole run (p50 / p99) | %.2f / %.2f ms | - | - | - |\n", r.p50*1e3, r.p99*1e3)
	if r.commits > 0 {
		fmt.Printf("| the heartbeat writer's group commits during the rollout | %.0f (%.1f jobs reported a commit) | - | - | - |\n",
			r.commits, float64(r.jobs)/r.commits)
	}
	simCPURow(r)
}

// writerCommits reads how many group commits poolserver's heartbeat
// writer has made (from /metrics; -1 when unreadable).
func writerCommits(ctx context.Context, base string) float64 {
	v, err := strconv.ParseFloat(metricValue(ctx, base, `poolserver_store_duration_seconds_count{op="ApplyHeartbeats"}`), 64)
	if err != nil {
		return -1
	}
	return v
}

// simCPURow prints the simulator's CPU over the measured time.
func simCPURow(r rolloutResult) {
	fmt.Printf("| simulator CPU over the same time | %.2f s (%.0f%% of one core, %.0f µs per heartbeat) | - | - | - |\n",
		r.simCPU, 100*r.simCPU/r.took.Seconds(), r.simCPU/float64(max(r.rolloutBeats, 1))*1e6)
}

// simRows prints the simulator's own figures.
func simRows(hosts int, setupTook time.Duration, rss, hwm int64) {
	fmt.Printf("| registering the %d hosts (the store's CreateClient, %d at once) | %.1f s (%.0f hosts/s) | - | - | - |\n",
		hosts, setupWorkers, setupTook.Seconds(), float64(hosts)/setupTook.Seconds())
	fmt.Printf("| simulator RSS with every host playing / peak (VmHWM) | %.1f MB / %.1f MB | - | - | - |\n", mb(rss), mb(hwm))
	fmt.Printf("| simulator peak RSS per simulated host | %.2f KB | before the event-driven simulator: ~12 KB at 100,000 hosts | %.2f | - |\n",
		float64(hwm)/1024/float64(hosts), float64(hwm)/float64(hosts)/12288)
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

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

type server struct {
	cmd  *exec.Cmd
	base string
}

func startServer(ctx context.Context, bin, dir string, o options, dsn string) (*server, error) {
	addr := freeAddr()
	cfg := fmt.Sprintf(`listen = %q
data_dir = %q
db = %q
log_level = %q
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
[artifacts]
max_concurrent_downloads = %d
`, addr, dir, dsn, cmp.Or(os.Getenv("FLEET_LOG_LEVEL"), "warn"), os.Getenv("FLEET_PPROF"), o.interval, o.maxDownloads)
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

// procStatus reads a field (in kB) of the server's /proc/PID/status, in
// bytes.
func (s *server) procStatus(field string) int64 {
	return procStatus(strconv.Itoa(s.cmd.Process.Pid), field)
}

// selfRSS and selfHWM are the simulator's own RSS and peak RSS.
func selfRSS() int64 { return procStatus("self", "VmRSS") }
func selfHWM() int64 { return procStatus("self", "VmHWM") }

// procStatus reads a field (in kB) of /proc/<pid>/status, in bytes; 0
// where there is no /proc.
func procStatus(pid, field string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
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
func (s *server) cpu() float64 { return procCPU(strconv.Itoa(s.cmd.Process.Pid)) }

// selfCPU returns the simulator's own user+system CPU seconds so far.
func selfCPU() float64 { return procCPU("self") }

// procCPU returns a process's user+system CPU seconds so far; 0 where
// there is no /proc.
func procCPU(pid string) float64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start at ") ".
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

type rolloutResult struct {
	took, create               time.Duration // create to done; the create request alone
	lastTaken, lastDone        time.Duration // create to the last job taken, to the last reported done
	behind                     int64         // heartbeats a whole interval late during the rollout
	hinted                     int64         // heartbeats sent early at the server's nextHeartbeat during the rollout
	cpu, simCPU                float64       // server's and simulator's CPU seconds over took
	beats, jobs, limited, errs int64
	rolloutBeats               int64   // heartbeats over took
	p50, p99                   float64 // heartbeat latency, seconds
	maxInFlight                int64
	peakStarts                 int    // most download starts in one second
	halted                     string // the update's rollout state at the end
	simRSS                     int64  // the simulator's RSS with every host playing
	// commits is how many group commits the heartbeat writer made over
	// took (0: unknown, the bare control plane has none).
	commits float64
	// Artifact bytes the hosts read from poolserver, full files and
	// patches, and how many downloads of each.
	fullBytes, patchBytes, fullGets, patchGets int64
	mirrorBytes, mirrorGets                    int64
	// The fleet rollback (rollback.go): hosts that ran the bad release,
	// reverts finished, the rollback's end and the last host back, after
	// the halt was seen.
	badHosts, reverted     int64
	rollbackDone, lastBack time.Duration
	rollbackState          string
	// stoppedOnPause: the update paused within its budget and the
	// simulator stopped it with ?rollback=true (scenario.stopOnPause).
	stoppedOnPause bool
}

// scenario is one rollout the simulator plays: every host heartbeats at
// its interval, a PENDING job is started at once (RUNNING), its artifact
// optionally downloaded (not before startAfter), installed for o.install,
// then reported FINISHED with the new version (or FAILED).
type scenario struct {
	settings string // the pool's settings body
	update   string // the update body
	fail     bool   // hosts report their jobs FAILED (a bad release)
	download bool   // hosts download the artifact (or its patch, when offered), not before the job's startAfter
	// downloadRate paces each host's download, bytes a second (0: as
	// fast as loopback goes).
	downloadRate int64
	want         okta.AgentUpdateJobStatus
	// installedSHA is the SHA-256 of the hosts' installed binary (1.0.0),
	// reported in their heartbeats; "" reports none.
	installedSHA string
	// regressAfter > 0: the release installs fine, each host reports its
	// agent healthy from the install on and unhealthy this long after it
	// (as poolagent's health watch, rollback.go); revert jobs finish
	// normally.
	regressAfter time.Duration
	// waitRollback: once the update reached want, wait for its fleet
	// rollback to be Done (rollback.go).
	waitRollback bool
	// stopOnPause: an update Paused (a wave held with failures within the
	// budget) is stopped with ?rollback=true, as an operator would, and
	// counts as reaching want.
	stopOnPause bool
}

var goodRollout = scenario{update: `{"name":"bench","targetVersion":"1.1.0"}`, want: okta.JobSuccess}

// rollout plays every host heartbeating at o.interval (spread evenly),
// obeying its jobs per sc, and times one update from its creation to the
// status sc.want.
func rollout(ctx context.Context, srv *server, f *fixture, o options, sc scenario) (rolloutResult, error) {
	var res rolloutResult
	client := &http.Client{}
	// api calls the management API and returns the answer's top-level id,
	// status and rollout (skimmed: a big update lists every agent), or the
	// start of an error's body. A request gets 30 s, except creating the
	// update, which may take longer on a big pool (bounded by -timeout
	// alone, so the run shows how long it took).
	type answer struct {
		code               int
		id, status, errMsg string
		rollout            []byte
	}
	api := func(method, path, body string) (answer, error) {
		ctx := ctx
		if !(method == "POST" && strings.Contains(path, "/updates?")) {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
		}
		req, _ := http.NewRequestWithContext(ctx, method, srv.base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "SSWS "+f.token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return answer{}, err
		}
		defer resp.Body.Close()
		a := answer{code: resp.StatusCode}
		if a.code/100 != 2 {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
			a.errMsg = string(b)
			return a, nil
		}
		top, err := skimTop(resp.Body, "id", "status", "rollout")
		_ = json.Unmarshal(top["id"], &a.id)
		_ = json.Unmarshal(top["status"], &a.status)
		a.rollout = top["rollout"]
		return a, err
	}
	settings := sc.settings
	if settings == "" {
		settings = fmt.Sprintf(`{"maxUnavailable":%d}`, f.ids.n)
	}
	if a, err := api("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates/settings", settings); err != nil || a.code != 201 {
		return res, fmt.Errorf("settings: %d %s %v", a.code, a.errMsg, err)
	}

	s := newSim(srv.base, f.ids, o.interval, o.install, sc)
	hctx, stopHosts := context.WithCancel(ctx)
	defer stopHosts()
	done := make(chan struct{})
	go func() { s.run(hctx); close(done) }()
	defer func() { stopHosts(); <-done }()
	// Let every host check in once before the update exists, and the
	// fleet settle into its slots: a host's first heartbeat (authenticate
	// from the store, write its facts and agent) costs several times a
	// later one, so at 300,000 hosts the first round takes longer than one
	// interval.
	warm := time.Now()
	select {
	case <-time.After(o.interval + time.Second):
	case <-ctx.Done():
		return res, errors.New("the hosts' first heartbeats did not end before -timeout")
	}
	if s.beats.Load() < int64(f.ids.n) {
		for s.beats.Load() < int64(f.ids.n) {
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return res, errors.New("the hosts' first heartbeats did not end before -timeout")
			}
		}
		select { // one more round at the fleet's own pace
		case <-time.After(o.interval):
		case <-ctx.Done():
			return res, errors.New("the hosts' first heartbeats did not end before -timeout")
		}
	}
	fmt.Fprintf(os.Stderr, "fleet: every host checked in; warm-up took %.1f s\n", time.Since(warm).Seconds())
	res.simRSS = selfRSS()

	commits0 := writerCommits(ctx, srv.base)
	cpu0, simCPU0 := srv.cpu(), selfCPU()
	beats0, behind0, hinted0 := s.beats.Load(), s.behind.Load(), s.hinted.Load()
	t0 := time.Now()
	s.created.Store(t0.UnixNano())
	defer s.created.Store(0)
	// agents=none: the reply without the pool's every agent (90 MB at
	// 300,000 hosts), as a script at this scale creates (docs/api.md).
	u, err := api("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates?agents=none", sc.update)
	if err != nil || u.code != 201 || u.id == "" {
		return res, fmt.Errorf("create update (after %.1f s): %d %s %v", time.Since(t0).Seconds(), u.code, u.errMsg, err)
	}
	res.create = time.Since(t0)
	for {
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("rollout did not finish before -timeout (%s; %.0f s after the update's creation)", s, time.Since(t0).Seconds())
		case <-time.After(100 * time.Millisecond):
		}
		// agents=none: the status and counts, not 300,000 agents ten
		// times a second. Every 100 ms (500 ms before): the end is
		// measured to 0.1 s, not to half a second of a 6 s figure.
		cur, err := api("GET", "/api/v1/agentPools/"+f.pool.ID+"/updates/"+u.id+"?agents=none", "")
		if err != nil || cur.code != 200 {
			continue
		}
		if okta.AgentUpdateJobStatus(cur.status) == sc.want {
			res.halted = string(cur.rollout)
			break
		}
		if sc.stopOnPause && okta.AgentUpdateJobStatus(cur.status) == okta.JobPaused {
			st, err := api("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates/"+u.id+"/stop?rollback=true", "")
			if err != nil || st.code/100 != 2 {
				return res, fmt.Errorf("stop?rollback=true: %d %s %v", st.code, st.errMsg, err)
			}
			res.halted, res.stoppedOnPause = string(cur.rollout), true
			break
		}
		if st := okta.AgentUpdateJobStatus(cur.status); st == okta.JobFailed || st == okta.JobSuccess {
			return res, fmt.Errorf("rollout ended %s, want %s (rollout %s)", st, sc.want, cur.rollout)
		}
	}
	res.took = time.Since(t0)
	if sc.waitRollback {
		if err := waitRollback(ctx, s, &res, func() (string, []byte, error) {
			cur, err := api("GET", "/api/v1/agentPools/"+f.pool.ID+"/updates/"+u.id+"?agents=none", "")
			if err == nil && cur.code != 200 {
				err = fmt.Errorf("GET the update: %d %s", cur.code, cur.errMsg)
			}
			return cur.status, cur.rollout, err
		}); err != nil {
			return res, err
		}
	}
	var taken []int64
	for i := range s.takenBy {
		taken = append(taken, s.takenBy[i].Swap(0))
	}
	for len(taken) > 0 && taken[len(taken)-1] == 0 {
		taken = taken[:len(taken)-1]
	}
	fmt.Fprintf(os.Stderr, "fleet: jobs taken per 5 s after the create: %v; heartbeats of hosts not yet updated answered with neither a job nor a hint: %d\n",
		taken, s.missed.Swap(0))
	res.lastTaken = time.Duration(s.lastTaken.Load() - t0.UnixNano())
	res.lastDone = time.Duration(s.lastDone.Load() - t0.UnixNano())
	res.behind = s.behind.Load() - behind0
	res.hinted = s.hinted.Load() - hinted0
	res.cpu, res.simCPU = srv.cpu()-cpu0, selfCPU()-simCPU0
	res.rolloutBeats = s.beats.Load() - beats0
	if c1 := writerCommits(ctx, srv.base); c1 > 0 && commits0 >= 0 {
		res.commits = c1 - commits0
	}
	if sc.fail {
		// Jobs already handed out finish; nothing new must be.
		time.Sleep(2*o.interval + o.install)
	}
	res.maxInFlight = s.maxInFlight.Load()
	res.peakStarts = s.peakStarts()
	res.p50, res.p99 = s.lat.quantile(0.5), s.lat.quantile(0.99)
	res.beats, res.jobs, res.limited, res.errs = s.beats.Load(), s.jobsTaken.Load(), s.limited.Load(), s.errs.Load()
	res.fullBytes, res.patchBytes, res.fullGets, res.patchGets = s.fullBytes.Load(), s.patchBytes.Load(), s.fullGets.Load(), s.patchGets.Load()
	res.mirrorBytes, res.mirrorGets = s.mirrorBytes.Load(), s.mirrorGets.Load()
	return res, nil
}

// heartbeatOnly plays the hosts heartbeating at o.interval for d with no
// update: the simulator's own cost, and the server's when idle.
func heartbeatOnly(ctx context.Context, srv *server, f *fixture, o options, d time.Duration) (rolloutResult, error) {
	var res rolloutResult
	s := newSim(srv.base, f.ids, o.interval, o.install, goodRollout)
	hctx, stopHosts := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s.run(hctx); close(done) }()
	// Every host's first heartbeat went out before (runBig); one interval
	// more opens the simulator's connections and reaches its steady
	// rate, as the rollout's warm-up does. Measure after it.
	warm := min(o.interval+time.Second, d/2)
	select {
	case <-time.After(warm):
	case <-ctx.Done():
	}
	cpu0, simCPU0, beats0, t0 := srv.cpu(), selfCPU(), s.beats.Load(), time.Now()
	select {
	case <-time.After(d - warm):
	case <-ctx.Done():
	}
	res.took = time.Since(t0)
	res.cpu, res.simCPU = srv.cpu()-cpu0, selfCPU()-simCPU0
	res.rolloutBeats = s.beats.Load() - beats0
	res.simRSS = selfRSS()
	stopHosts()
	<-done
	res.p50, res.p99 = s.lat.quantile(0.5), s.lat.quantile(0.99)
	res.beats, res.limited, res.errs = s.beats.Load(), s.limited.Load(), s.errs.Load()
	if ctx.Err() != nil {
		return res, fmt.Errorf("heartbeats cut short by -timeout (%s)", s)
	}
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
