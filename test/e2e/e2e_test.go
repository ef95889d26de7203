// Package e2e_test runs the whole system as real processes: poolserver,
// poolagents as simulated hosts, and the sample managed agent, on
// 127.0.0.1 (see internal/e2e). It asserts the demo's scenarios and the
// failure cases an operator meets: windows, pause and resume, stop, a
// poolagent killed mid-update, a poolserver restarted mid-rollout,
// poolagent updating itself, and a pool's compliance through a rollout.
//
// Most tests run in parallel: each owns its poolserver, data dir, signing
// keys, published copies and hosts; they share only the binaries TestMain
// builds, which nothing writes after. The heartbeat load test, the
// PostgreSQL replicas and the tmpfs (disk full, read-only) tests run
// alone.
package e2e_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/internal/e2e"
)

var (
	bins    *e2e.Bins
	samples = map[string]string{}
	agentV2 string // poolagent stamped 1.0.0 (the hosts run 0.9.0)
)

func TestMain(m *testing.M) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		fmt.Println("e2e tests run on Linux and macOS only")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "poolagent-e2e")
	if err != nil {
		panic(err)
	}
	flag.Parse()
	raiseParallel(parallelTests)
	code := func() int {
		defer os.RemoveAll(dir)
		ctx := context.Background()
		if bins, err = e2e.Build(ctx, dir, "0.9.0"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
			if samples[v], err = bins.BuildSample(ctx, v, v != "1.2.0"); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		agentV2 = dir + "/poolagent-1.0.0"
		if err := bins.BuildAgent(ctx, agentV2, "1.0.0"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// parallelTests is how many tests marked parallel run at once unless
// -test.parallel says otherwise. Each waits most of its time on real
// processes (heartbeats, rollout ticks, health checks), so more of them
// than the machine has cores overlap their waiting.
const parallelTests = 8

// raiseParallel sets -test.parallel to n when the command line did not set
// it and its default (GOMAXPROCS) is lower.
func raiseParallel(n int) {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set && runtime.GOMAXPROCS(0) < n {
		if err := flag.Set("test.parallel", strconv.Itoa(n)); err != nil {
			panic(err)
		}
	}
}

// fleet is one poolserver, its signing keys, an AD pool and n hosts at
// sample agent 1.0.0, all heartbeating.
type fleet struct {
	t     *testing.T
	ctx   context.Context
	srv   *e2e.Server
	keys  e2e.Keys
	pool  string
	hosts []*e2e.Host
}

func newFleet(t *testing.T, n int) *fleet {
	t.Helper()
	return newFleetWith(t, n, e2e.ServerOptions{})
}

// newFleetWith is newFleet with a server started with o.
func newFleetWith(t *testing.T, n int, o e2e.ServerOptions) *fleet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	dir := t.TempDir()
	srv, err := e2e.StartServerWith(ctx, bins, dir, o)
	if err != nil {
		t.Fatal(err)
	}
	f := &fleet{t: t, ctx: ctx, srv: srv}
	t.Cleanup(func() {
		for _, h := range f.hosts {
			h.KillAll()
		}
		_ = srv.Stop()
		if t.Failed() {
			if b, err := os.ReadFile(srv.Log); err == nil {
				t.Logf("--- poolserver log tail:\n%s", b[max(0, len(b)-3000):])
			}
			for _, h := range f.hosts {
				t.Logf("--- %s poolagent log tail:\n%s", h.Name, h.LogTail(3000))
			}
		}
	})
	if f.keys, err = srv.GenerateKeys(ctx, dir); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		if err := srv.Publish(ctx, f.keys, "AD", v, runtime.GOOS, runtime.GOARCH, samples[v], "GA"); err != nil {
			t.Fatal(err)
		}
	}
	if f.pool, err = srv.CLI(ctx, "pool", "create", "--name", "ad", "--type", "AD"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		f.addHost(fmt.Sprintf("dc%d", i), "")
	}
	f.waitAgents(n)
	return f
}

// addHost enrolls and starts a host; more may set SelfConfirmTimeout and
// WatchInterval.
func (f *fleet) addHost(name, poolagent string, more ...e2e.HostOptions) *e2e.Host {
	f.t.Helper()
	o := e2e.HostOptions{Name: name, AgentType: "AD", SampleAgent: samples["1.0.0"],
		TrustedKey: f.keys.Public, ServerURL: f.srv.URL, ServerCA: f.srv.CA, Poolagent: poolagent}
	for _, m := range more {
		o.SelfConfirmTimeout, o.WatchInterval = m.SelfConfirmTimeout, m.WatchInterval
		o.AgentEnv = m.AgentEnv
		o.Timezone = m.Timezone
		o.Env = m.Env
	}
	h, err := e2e.NewHost(bins, f.t.TempDir(), o)
	if err != nil {
		f.t.Fatal(err)
	}
	tok, err := f.srv.CLI(f.ctx, "enroll-token", "create", "--pool", f.pool)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := h.Enroll(f.ctx, f.srv.URL, tok); err != nil {
		f.t.Fatal(err)
	}
	if err := h.Start(); err != nil {
		f.t.Fatal(err)
	}
	f.hosts = append(f.hosts, h)
	return h
}

func (f *fleet) waitAgents(n int) {
	f.t.Helper()
	f.eventually(30*time.Second, "hosts check in", func() (bool, error) {
		var pools []okta.AgentPool
		if _, err := f.srv.API(f.ctx, "GET", "/api/v1/agentPools", "", &pools); err != nil {
			return false, err
		}
		return len(pools) == 1 && len(pools[0].Agents) == n, nil
	})
}

func (f *fleet) eventually(timeout time.Duration, what string, cond func() (bool, error)) {
	f.t.Helper()
	if err := e2e.Eventually(f.ctx, timeout, cond); err != nil {
		f.t.Fatalf("%s: %v", what, err)
	}
}

func (f *fleet) api(method, path, body string, out any) {
	f.t.Helper()
	if _, err := f.srv.API(f.ctx, method, path, body, out); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fleet) create(body string) string {
	f.t.Helper()
	var u okta.AgentPoolUpdate
	f.api("POST", "/api/v1/agentPools/"+f.pool+"/updates", body, &u)
	return u.ID
}

func (f *fleet) update(id string) okta.AgentPoolUpdate {
	f.t.Helper()
	u, err := f.srv.Update(f.ctx, f.pool, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return u
}

func (f *fleet) waitStatus(id string, want okta.AgentUpdateJobStatus) okta.AgentPoolUpdate {
	f.t.Helper()
	var u okta.AgentPoolUpdate
	f.eventually(90*time.Second, "update "+string(want), func() (bool, error) {
		u = f.update(id)
		return u.Status == want, nil
	})
	return u
}

// versions returns what each host's installed agent binary says.
func (f *fleet) versions() []string {
	f.t.Helper()
	var out []string
	for _, h := range f.hosts {
		v, err := h.InstalledVersion(f.ctx)
		if err != nil {
			f.t.Fatalf("%s: the installed agent does not run: %v", h.Name, err)
		}
		out = append(out, v)
	}
	return out
}

// versionOf returns what the installed agent binary of the host named
// name says.
func (f *fleet) versionOf(name string) string {
	f.t.Helper()
	for _, h := range f.hosts {
		if h.Name == name {
			v, err := h.InstalledVersion(f.ctx)
			if err != nil {
				f.t.Fatalf("%s: the installed agent does not run: %v", h.Name, err)
			}
			return v
		}
	}
	f.t.Fatalf("no host named %q", name)
	return ""
}

func count(u okta.AgentPoolUpdate, s okta.AgentUpdateInstanceStatus) int {
	n := 0
	for _, a := range u.Agents {
		if a.UpdateStatus == s {
			n++
		}
	}
	return n
}

// openNow is a schedule whose window opened a minute ago and lasts an hour.
func openNow() string {
	t := time.Now().UTC().Add(-time.Minute)
	return fmt.Sprintf(`{"cron":"%d %d %d * *","timezone":"UTC","duration":60,"delay":0}`, t.Minute(), t.Hour(), t.Day())
}

func TestRolloutThenRollback(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 3)
	id := f.create(`{"targetVersion":"1.1.0","schedule":` + openNow() + `}`)
	u := f.waitStatus(id, okta.JobSuccess)
	if count(u, okta.InstanceSuccess) != 3 {
		t.Errorf("agents = %+v", u.Agents)
	}
	for _, a := range u.Agents {
		if a.Version != "1.1.0" {
			t.Errorf("agent %s reports version %s", a.Name, a.Version)
		}
	}
	if got := strings.Join(f.versions(), ","); got != "1.1.0,1.1.0,1.1.0" {
		t.Errorf("installed = %s", got)
	}
	// A release whose health check fails: every host tries, fails, rolls back.
	f.api("POST", "/api/v1/agentPools/"+f.pool+"/updates/settings", `{"continueOnError":true}`, nil)
	id = f.create(`{"targetVersion":"1.2.0"}`)
	u = f.waitStatus(id, okta.JobFailed)
	for _, a := range u.Agents {
		if a.UpdateStatus != okta.InstanceFailed || !strings.Contains(a.UpdateMessage, "HEALTH") {
			t.Errorf("agent %s: %s %q", a.Name, a.UpdateStatus, a.UpdateMessage)
		}
	}
	if got := strings.Join(f.versions(), ","); got != "1.1.0,1.1.0,1.1.0" {
		t.Errorf("after the bad release, installed = %s (want every host rolled back to 1.1.0)", got)
	}
}

func TestScheduledUpdateWaitsForItsWindow(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 1)
	// Eligible 30 days after the release: nothing happens now.
	id := f.create(`{"targetVersion":"1.1.0","schedule":{"cron":"0 2 * * 2#1","timezone":"UTC","delay":30}}`)
	time.Sleep(4 * time.Second) // several heartbeats and ticks
	if u := f.update(id); u.Status != okta.JobScheduled || u.Agents[0].UpdateStatus != okta.InstanceScheduled {
		t.Fatalf("before the window: %s %+v", u.Status, u.Agents)
	}
	if v := f.versions()[0]; v != "1.0.0" {
		t.Fatalf("installed %s before the window", v)
	}
	// Move the window to now: the update runs.
	f.api("POST", "/api/v1/agentPools/"+f.pool+"/updates/"+id, `{"schedule":`+openNow()+`}`, nil)
	f.waitStatus(id, okta.JobSuccess)
	if v := f.versions()[0]; v != "1.1.0" {
		t.Errorf("installed %s in the window", v)
	}
}

func TestPauseAndResumeMidRollout(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 3)
	id := f.create(`{"targetVersion":"1.1.0"}`)
	f.eventually(60*time.Second, "first host done", func() (bool, error) { return count(f.update(id), okta.InstanceSuccess) >= 1, nil })
	f.api("POST", "/api/v1/agentPools/"+f.pool+"/updates/"+id+"/pause", "", nil)
	time.Sleep(4 * time.Second)
	u := f.update(id)
	if u.Status != okta.JobPaused {
		t.Fatalf("status %s after pause", u.Status)
	}
	// At most the host already running when paused finishes; the last one waits.
	// The pool lists its agents in the order they first checked in, which
	// is not the order the hosts started: the host is found by name.
	last := u.Agents[2]
	if done := count(u, okta.InstanceSuccess); done > 2 || last.UpdateStatus != okta.InstanceScheduled {
		t.Errorf("while paused: %d done, agents %+v", done, u.Agents)
	}
	if v := f.versionOf(last.Name); v != "1.0.0" {
		t.Errorf("the last host (%s) was updated while paused: %s", last.Name, v)
	}
	f.api("POST", "/api/v1/agentPools/"+f.pool+"/updates/"+id+"/resume", "", nil)
	f.waitStatus(id, okta.JobSuccess)
	if got := strings.Join(f.versions(), ","); got != "1.1.0,1.1.0,1.1.0" {
		t.Errorf("installed = %s", got)
	}
}

func TestStopCancelsHostsNotYetSwapped(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 3)
	id := f.create(`{"targetVersion":"1.1.0"}`)
	f.eventually(60*time.Second, "first host done", func() (bool, error) { return count(f.update(id), okta.InstanceSuccess) >= 1, nil })
	f.api("POST", "/api/v1/agentPools/"+f.pool+"/updates/"+id+"/stop", "", nil)
	var u okta.AgentPoolUpdate
	f.eventually(30*time.Second, "agents settle", func() (bool, error) {
		u = f.update(id)
		return count(u, okta.InstanceSuccess)+count(u, okta.InstanceCancelled) == 3, nil
	})
	if u.Status != okta.JobCancelled || u.Agents[2].UpdateStatus != okta.InstanceCancelled {
		t.Errorf("after stop: %s %+v", u.Status, u.Agents)
	}
	// Each API agent against the host of its name: the pool's order is the
	// order the hosts first checked in, not the order they started.
	for _, a := range u.Agents {
		want := "1.0.0"
		if a.UpdateStatus == okta.InstanceSuccess {
			want = "1.1.0"
		}
		if v := f.versionOf(a.Name); v != want {
			t.Errorf("host %s is %s on disk, %s in the API", a.Name, v, a.UpdateStatus)
		}
	}
}

func TestPoolagentKilledMidUpdateConverges(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 1)
	h := f.hosts[0]
	id := f.create(`{"targetVersion":"1.1.0"}`)
	// Kill the daemon and its agent (as a power loss would) once the job
	// is past the download.
	f.eventually(60*time.Second, "job in progress", func() (bool, error) {
		st, err := h.Status(f.ctx)
		if err != nil {
			return false, nil
		}
		for _, j := range st.Jobs {
			if j.Phase == "swap" || j.Phase == "health" || j.Phase == "verify" || j.Progress >= 50 {
				return true, nil
			}
		}
		return false, nil
	})
	h.KillAll()
	if _, err := h.InstalledVersion(f.ctx); err != nil {
		t.Fatalf("after SIGKILL the installed binary does not run: %v", err)
	}
	if err := h.Restart(); err != nil {
		t.Fatal(err)
	}
	f.waitStatus(id, okta.JobSuccess)
	if v := f.versions()[0]; v != "1.1.0" {
		t.Errorf("converged to %s", v)
	}
}

func TestPoolserverRestartedMidRolloutLosesNothing(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 3)
	id := f.create(`{"name":"keep me","targetVersion":"1.1.0"}`)
	f.eventually(60*time.Second, "first host done", func() (bool, error) { return count(f.update(id), okta.InstanceSuccess) >= 1, nil })
	if err := f.srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := f.srv.Start(f.ctx); err != nil {
		t.Fatal(err)
	}
	u := f.waitStatus(id, okta.JobSuccess)
	if u.Name != "keep me" || count(u, okta.InstanceSuccess) != 3 {
		t.Errorf("after the restart: %+v", u)
	}
	var list []okta.AgentPoolUpdate
	f.api("GET", "/api/v1/agentPools/"+f.pool+"/updates", "", &list)
	if len(list) != 1 {
		t.Errorf("%d updates after the restart", len(list))
	}
	if got := strings.Join(f.versions(), ","); got != "1.1.0,1.1.0,1.1.0" {
		t.Errorf("installed = %s", got)
	}
}

func TestPoolagentUpdatesItself(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 1)
	h := f.hosts[0]
	st, err := h.Status(f.ctx)
	if err != nil || st.Version != "0.9.0" {
		t.Fatalf("before: %+v %v", st, err)
	}
	if err := f.srv.Publish(f.ctx, f.keys, "poolagent", "1.0.0", runtime.GOOS, runtime.GOARCH, agentV2, "GA"); err != nil {
		t.Fatal(err)
	}
	f.eventually(90*time.Second, "poolagent 1.0.0 heartbeating", func() (bool, error) {
		st, err := h.Status(f.ctx)
		return err == nil && st.Version == "1.0.0" && st.Connected, nil
	})
	// The self-update job ends FINISHED on the host (`poolagent status
	// --json`, the local API) once the new binary confirmed, never
	// FAILED on the way.
	job := f.selfJob(h, "FINISHED")
	if job.UpdateStatus != "Success" || job.UpdateMessage != "" || job.Version != "1.0.0" {
		t.Errorf("the self-update job on the host: %+v, want FINISHED/Success for 1.0.0", job)
	}
	if a := selfAgent(t, h); a.UpdateStatus != "Success" || a.Version != "1.0.0" {
		t.Errorf("poolagent in the host's agents: %+v, want 1.0.0 Success", a)
	}
	// The server saw it finish: its log says so for this host, and its
	// job counters have one success and no failure.
	f.eventually(30*time.Second, "the server logs the finished self-update", func() (bool, error) {
		e, err := f.srv.LogEntries("poolagent self-update finished")
		return err == nil && len(e) == 1 && e[0]["job"] == job.UUID && e[0]["state"] == "FINISHED" && e[0]["updateStatus"] == "Success", err
	})
	if e, err := f.srv.LogEntries("poolagent self-update failed"); err != nil || len(e) > 0 {
		t.Errorf("the server logged failed self-updates: %v %v", e, err)
	}
	f.metricIs(`poolserver_jobs_finished_total{outcome="succeeded"}`, 1)
	f.metricIs(`poolserver_jobs_finished_total{outcome="failed"}`, 0)
	// It keeps heartbeating with the new version: an update still works.
	id := f.create(`{"targetVersion":"1.1.0"}`)
	f.waitStatus(id, okta.JobSuccess)
}

// TestPoolagentSelfUpdateRolledBack: a new poolagent that never has a good
// heartbeat (its server_url leads nowhere) is rolled back at its deadline;
// the previous binary runs again and the job ends FAILED with
// SELF_ROLLED_BACK on the host and at the server, which does not offer that
// version to the host again.
func TestPoolagentSelfUpdateRolledBack(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 0)
	h := f.addHost("dc1", "", e2e.HostOptions{SelfConfirmTimeout: 5 * time.Second})
	h.StatusBin = bins.Poolagent // not the wrapper script, which the rollback replaces
	f.waitAgents(1)
	cfg, err := os.ReadFile(h.Config)
	if err != nil {
		t.Fatal(err)
	}
	dead, err := e2e.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	// The release is poolagent 1.0.0 behind a wrapper that runs the
	// daemon with a config whose server is unreachable.
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.toml")
	if err := os.WriteFile(broken, []byte(strings.Replace(string(cfg), fmt.Sprintf("server_url = %q", f.srv.URL),
		fmt.Sprintf("server_url = %q", "https://"+dead), 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	wrapper := filepath.Join(dir, "poolagent-unreachable")
	script := fmt.Sprintf("#!/bin/sh\nif [ \"$1\" = run ]; then exec %q run --config %q; fi\nexec %q \"$@\"\n", agentV2, broken, agentV2)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(h.AgentBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.srv.Publish(f.ctx, f.keys, "poolagent", "1.0.0", runtime.GOOS, runtime.GOARCH, wrapper, "GA"); err != nil {
		t.Fatal(err)
	}
	job := f.selfJob(h, "FAILED")
	if !strings.HasPrefix(job.UpdateMessage, "SELF_ROLLED_BACK: ") || job.Version != "1.0.0" {
		t.Errorf("the self-update job on the host: %+v, want FAILED with SELF_ROLLED_BACK", job)
	}
	if st, err := h.Status(f.ctx); err != nil || st.Version != "0.9.0" {
		t.Errorf("after the rollback poolagent runs %+v (%v), want 0.9.0", st, err)
	}
	if after, err := os.ReadFile(h.AgentBin); err != nil || !bytes.Equal(after, before) {
		t.Errorf("after the rollback the binary on disk is not the previous one (%v)", err)
	}
	f.eventually(30*time.Second, "the server logs the failed self-update", func() (bool, error) {
		e, err := f.srv.LogEntries("poolagent self-update failed")
		return err == nil && len(e) == 1 && e[0]["job"] == job.UUID && e[0]["state"] == "FAILED" &&
			strings.HasPrefix(fmt.Sprint(e[0]["updateMessage"]), "SELF_ROLLED_BACK: "), err
	})
	f.metricIs(`poolserver_jobs_finished_total{outcome="failed"}`, 1)
	f.metricIs(`poolserver_jobs_rolled_back_total`, 1)
	// An update of the managed agent still works, and poolagent stays at
	// the version it rolled back to: 1.0.0 is not offered again.
	id := f.create(`{"targetVersion":"1.1.0"}`)
	f.waitStatus(id, okta.JobSuccess)
	st, err := h.Status(f.ctx)
	if err != nil || st.Version != "0.9.0" {
		t.Fatalf("after a later update poolagent runs %+v (%v), want 0.9.0", st, err)
	}
	n := 0
	for _, j := range st.Jobs {
		if j.Name == "poolagent" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the host holds %d self-update jobs, want the one rolled back: %+v", n, st.Jobs)
	}
}

// selfJob waits until the host's `poolagent status --json` shows its
// self-update job in state want, and returns it.
func (f *fleet) selfJob(h *e2e.Host, want string) e2e.AgentJob {
	f.t.Helper()
	var job e2e.AgentJob
	f.eventually(90*time.Second, "self-update job "+want, func() (bool, error) {
		st, err := h.Status(f.ctx)
		if err != nil {
			return false, nil // restarting
		}
		for _, j := range st.Jobs {
			if j.Name == "poolagent" {
				job = j
			}
		}
		if job.State != "" && job.State != want && (job.State == "FINISHED" || job.State == "FAILED") {
			return false, fmt.Errorf("the self-update job ended %s/%s: %s", job.State, job.UpdateStatus, job.UpdateMessage)
		}
		return job.State == want, nil
	})
	return job
}

// selfAgent is poolagent's own entry in the host's agents.
func selfAgent(t *testing.T, h *e2e.Host) e2e.AgentReport {
	t.Helper()
	st, err := h.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range st.Agents {
		if a.Name == "poolagent" {
			return a
		}
	}
	t.Fatalf("the host's status lists no poolagent agent: %+v", st.Agents)
	return e2e.AgentReport{}
}

// metricIs checks a sample of the server's /metrics.
func (f *fleet) metricIs(sample string, want float64) {
	f.t.Helper()
	f.eventually(30*time.Second, sample, func() (bool, error) {
		v, err := f.srv.Metric(f.ctx, sample)
		return err == nil && v == want, err
	})
}
