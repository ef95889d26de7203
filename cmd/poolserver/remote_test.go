package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/controlplane/store/sqlite"
)

// simHost is a simulated poolagent: it heartbeats and finishes every job.
type simHost struct {
	id, secret, version string
	jobs                map[string]sailpoint.JobReport
}

// inProcessServer is a poolserver on a fresh SQLite store in a data dir
// of its own, behind an httptest server, all closed with the test.
func inProcessServer(t *testing.T) (*sqlite.DB, *controlplane.Server, *httptest.Server, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := controlplane.DefaultConfig()
	cfg.DataDir = dir
	srv := controlplane.New(cfg, st, nil)
	t.Cleanup(srv.Close)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return st, srv, hs, dir
}

// TestOperatorCLIDrivesARollout rolls out a release to simulated hosts of
// an in-process poolserver with the operator commands alone, watching it
// to the end, and checks their errors.
func TestOperatorCLIDrivesARollout(t *testing.T) {
	ctx := context.Background()
	st, srv, hs, dir := inProcessServer(t)
	now := time.Now()
	token, _, err := controlplane.CreateToken(ctx, st, "ops", []store.Scope{store.ScopeManage}, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	readOnly, _, _ := controlplane.CreateToken(ctx, st, "viewer", []store.Scope{store.ScopeRead}, 0, now)
	pool := &store.Pool{ID: store.NewID("pol"), Name: "AD connectors", Type: okta.AgentTypeAD, CreatedAt: now}
	if err := st.CreatePool(ctx, pool); err != nil {
		t.Fatal(err)
	}
	file, sig := filepath.Join(dir, "agent"), filepath.Join(dir, "agent.minisig")
	os.WriteFile(file, []byte("#!/bin/sh\necho 1.1.0\n"), 0o755)
	os.WriteFile(sig, []byte("untrusted comment: signature\nRUQ...\ntrusted comment: name=AD version=1.1.0\nsig\n"), 0o644)
	if _, err := controlplane.PublishRelease(ctx, st, dir, controlplane.Publish{Name: "AD", Version: "1.1.0", OS: "linux", Arch: "amd64",
		Channel: okta.ChannelGA, File: file, SignatureFile: sig}, now); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex // the hosts' state, shared with the driver goroutine
	beat := func(h *simHost) {
		mu.Lock()
		req := sailpoint.StatusRequest{Status: sailpoint.StatusNormal, Timestamp: time.Now().UTC().Format(time.RFC3339),
			Body: sailpoint.ClientBody{Hostname: sailpoint.Flex(h.id), OS: "linux", Arch: "amd64",
				Agents: []sailpoint.AgentReport{{Name: "ad-agent", Type: "AD", Version: h.version}}}}
		for _, j := range h.jobs {
			req.Body.Jobs = append(req.Body.Jobs, j)
		}
		mu.Unlock()
		b, _ := json.Marshal(req)
		hreq, _ := http.NewRequest("POST", hs.URL+"/beta/managed-clients/"+h.id+"/status", bytes.NewReader(b))
		hreq.Header.Set("Authorization", "Bearer "+h.secret)
		hreq.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(hreq)
		if err != nil {
			t.Error(err)
			return
		}
		defer resp.Body.Close()
		var rep sailpoint.StatusReply
		if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil || resp.StatusCode != 200 {
			t.Errorf("heartbeat: %d %v", resp.StatusCode, err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, j := range rep.Body.Jobs { // finish every job at once
			h.version = j.ManagedProcessConfiguration["ad-agent"].Version
			h.jobs[j.UUID] = sailpoint.JobReport{UUID: j.UUID, State: sailpoint.JobFinished, Progress: 100}
		}
	}
	var hosts []*simHost
	for range 3 {
		secret, c, err := controlplane.CreateClient(ctx, st, pool.ID, "", now)
		if err != nil {
			t.Fatal(err)
		}
		h := &simHost{id: c.ID, secret: secret, version: "1.0.0", jobs: map[string]sailpoint.JobReport{}}
		hosts = append(hosts, h)
		beat(h)
	}

	remote := []string{"--server", hs.URL, "--token", token}
	cliRun := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append(args, remote...), &out, &out)
		return out.String(), err
	}
	mustRun := func(args ...string) string {
		t.Helper()
		out, err := cliRun(args...)
		if err != nil {
			t.Fatalf("poolserver %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	if out := mustRun("pools", "list"); !strings.Contains(out, pool.ID) || !strings.Contains(out, "AD connectors") {
		t.Errorf("pools list:\n%s", out)
	}
	var agents []okta.Agent
	if err := json.Unmarshal([]byte(mustRun("agents", "list", "--pool", pool.ID, "--json")), &agents); err != nil || len(agents) != 3 {
		t.Fatalf("agents list --json = %v, %v", agents, err)
	}
	if out := mustRun("releases", "list"); !strings.Contains(out, "1.1.0") || !strings.Contains(out, "linux/amd64") {
		t.Errorf("releases list:\n%s", out)
	}
	id := strings.TrimSpace(mustRun("updates", "create", "--pool", pool.ID, "--version", "1.1.0", "--name", "to 1.1.0"))
	if !strings.HasPrefix(id, "upd") {
		t.Fatalf("updates create printed %q", id)
	}
	if out := mustRun("updates", "pause", "--pool", pool.ID, "--update", id); !strings.Contains(out, "Paused") {
		t.Errorf("updates pause: %s", out)
	}
	// An illegal action is the API's error, plainly, and a failure.
	out, err := cliRun("updates", "pause", "--pool", pool.ID, "--update", id)
	if err == nil || !strings.Contains(err.Error(), "HTTP 400") || !strings.Contains(err.Error(), "Paused") {
		t.Errorf("pausing a paused update: %v %s", err, out)
	}
	mustRun("updates", "resume", "--pool", pool.ID, "--update", id)
	if out := mustRun("updates", "list", "--pool", pool.ID); !strings.Contains(out, id) || !strings.Contains(out, "InProgress") {
		t.Errorf("updates list:\n%s", out)
	}

	// Drive the hosts while watch follows the update to its end.
	stop := make(chan struct{})
	driven := make(chan struct{})
	go func() {
		defer close(driven)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := srv.Engine().Tick(ctx); err != nil {
				t.Errorf("tick: %v", err)
				return
			}
			for _, h := range hosts {
				beat(h)
			}
		}
	}()
	watch, err := cliRun("updates", "watch", "--pool", pool.ID, "--update", id, "--interval", "10ms", "--timeout", "2m")
	close(stop)
	<-driven
	if err != nil {
		t.Fatalf("updates watch: %v\n%s", err, watch)
	}
	if !strings.Contains(watch, "[##############################] 100%") || !strings.Contains(watch, "3/3 done") {
		t.Errorf("updates watch:\n%s", watch)
	}
	show := mustRun("updates", "show", "--pool", pool.ID, "--update", id)
	if !strings.Contains(show, "status Success") || strings.Count(show, "Success") < 4 {
		t.Errorf("updates show:\n%s", show)
	}

	// Errors: a read-only token, an unknown pool, missing flags and credentials.
	var rout bytes.Buffer
	err = run(ctx, []string{"updates", "stop", "--pool", pool.ID, "--update", id, "--server", hs.URL, "--token", readOnly}, &rout, &rout)
	if err == nil || !strings.Contains(err.Error(), "HTTP 403") {
		t.Errorf("stop with a read-only token: %v", err)
	}
	if _, err := cliRun("updates", "list", "--pool", "polNope"); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Errorf("unknown pool: %v", err)
	}
	if _, err := cliRun("updates", "show", "--pool", pool.ID); err == nil {
		t.Error("updates show without --update succeeded")
	}
	t.Setenv("POOLSERVER_TOKEN", "")
	if err := run(ctx, []string{"pools", "list", "--server", hs.URL}, &rout, &rout); err == nil || !strings.Contains(err.Error(), "token") {
		t.Errorf("no token: %v", err)
	}
	// The actions are in the audit log under the token's name.
	log, err := st.ListAudit(ctx, store.AuditQuery{Limit: 20})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range log {
		if e.ActorName == "ops" {
			actions = append(actions, e.Action)
		}
	}
	if strings.Join(actions, ",") != "update.resume,update.pause,update.create" {
		t.Errorf("audit trail of the CLI's token = %v", actions)
	}
}

// TestWatchShowsEachHostsProgress checks that `updates show` and `updates
// watch` show the progress and phase a host reported for its job.
func TestWatchShowsEachHostsProgress(t *testing.T) {
	ctx := context.Background()
	st, srv, hs, dir := inProcessServer(t)
	now := time.Now()
	token, _, err := controlplane.CreateToken(ctx, st, "ops", []store.Scope{store.ScopeManage}, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	pool := &store.Pool{ID: store.NewID("pol"), Name: "AD connectors", Type: okta.AgentTypeAD, CreatedAt: now}
	if err := st.CreatePool(ctx, pool); err != nil {
		t.Fatal(err)
	}
	file, sig := filepath.Join(dir, "agent"), filepath.Join(dir, "agent.minisig")
	os.WriteFile(file, []byte("#!/bin/sh\necho 1.1.0\n"), 0o755)
	os.WriteFile(sig, []byte("untrusted comment: signature\nRUQ...\ntrusted comment: name=AD version=1.1.0\nsig\n"), 0o644)
	if _, err := controlplane.PublishRelease(ctx, st, dir, controlplane.Publish{Name: "AD", Version: "1.1.0", OS: "linux", Arch: "amd64",
		Channel: okta.ChannelGA, File: file, SignatureFile: sig}, now); err != nil {
		t.Fatal(err)
	}
	// beat sends one heartbeat of host (hostname = name) with jobs and
	// returns the jobs handed out.
	beat := func(id, secret, name string, jobs ...sailpoint.JobReport) []sailpoint.Job {
		t.Helper()
		req := sailpoint.StatusRequest{Status: sailpoint.StatusNormal, Timestamp: time.Now().UTC().Format(time.RFC3339),
			Body: sailpoint.ClientBody{Hostname: sailpoint.Flex(name), OS: "linux", Arch: "amd64",
				Agents: []sailpoint.AgentReport{{Name: "ad-agent", Type: "AD", Version: "1.0.0"}}, Jobs: jobs}}
		b, _ := json.Marshal(req)
		hreq, _ := http.NewRequest("POST", hs.URL+"/beta/managed-clients/"+id+"/status", bytes.NewReader(b))
		hreq.Header.Set("Authorization", "Bearer "+secret)
		hreq.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(hreq)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rep sailpoint.StatusReply
		if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil || resp.StatusCode != 200 {
			t.Fatalf("heartbeat: %d %v", resp.StatusCode, err)
		}
		return rep.Body.Jobs
	}
	type hostRef struct{ id, secret, name string }
	var hosts []hostRef
	for _, name := range []string{"dc1", "dc2"} {
		secret, c, err := controlplane.CreateClient(ctx, st, pool.ID, "", now)
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, hostRef{c.ID, secret, name})
		beat(c.ID, secret, name)
	}
	remote := []string{"--server", hs.URL, "--token", token}
	cli := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append(args, remote...), &out, &out)
		return out.String(), err
	}
	out, err := cli("updates", "create", "--pool", pool.ID, "--version", "1.1.0")
	if err != nil {
		t.Fatalf("updates create: %v %s", err, out)
	}
	id := strings.TrimSpace(out)
	if err := srv.Engine().Tick(ctx); err != nil {
		t.Fatal(err)
	}
	jobs := beat(hosts[0].id, hosts[0].secret, hosts[0].name)
	if len(jobs) != 1 {
		t.Fatalf("dc1 got %d jobs", len(jobs))
	}
	beat(hosts[0].id, hosts[0].secret, hosts[0].name,
		sailpoint.JobReport{UUID: jobs[0].UUID, State: sailpoint.JobRunning, Progress: 40, Phase: "download"})

	show, err := cli("updates", "show", "--pool", pool.ID, "--update", id)
	if err != nil {
		t.Fatalf("updates show: %v", err)
	}
	if !regexp.MustCompile(`(?m)dc1 .*InProgress\s+40% download`).MatchString(show) ||
		!regexp.MustCompile(`(?m)dc2 .*Scheduled\s+-`).MatchString(show) {
		t.Errorf("updates show has no progress column:\n%s", show)
	}
	// The update cannot end here: watch prints its first block and gives up
	// at --timeout.
	watch, err := cli("updates", "watch", "--pool", pool.ID, "--update", id, "--interval", "10ms", "--timeout", "300ms")
	if err == nil || !strings.Contains(err.Error(), "did not end") {
		t.Fatalf("updates watch: %v\n%s", err, watch)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^\[######\.+\]  20% InProgress +0/2 done, 1 updating$`),
		regexp.MustCompile(`(?m)^  dc1 +\[########\.{12}\]  40% +InProgress +download$`),
		regexp.MustCompile(`(?m)^  dc2 +\[\.{20}\]   0% +Scheduled`),
	} {
		if !want.MatchString(watch) {
			t.Errorf("updates watch output lacks %s:\n%s", want, watch)
		}
	}
}
