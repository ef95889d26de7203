package controlplane_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/controlplane/store"
	"go.uber.org/zap"
)

// fleet is a poolserver with an engine driven by hand and simulated hosts.
type fleet struct {
	*env
	srv     *controlplane.Server
	dataDir string
	pool    *store.Pool
}

type host struct {
	id, secret, hostname, version string
	self                          string                         // poolagent's own version
	jobs                          map[string]sailpoint.JobReport // reported job states
	status                        sailpoint.ClientStatus         // default NORMAL
	health                        *sailpoint.AgentHealth         // the agent's watch result, if any
}

func newFleet(t *testing.T, mutate ...func(*controlplane.Config)) *fleet {
	t.Helper()
	return newFleetLog(t, nil, mutate...)
}

// newFleetLog is newFleet with the server logging to log.
func newFleetLog(t *testing.T, log *zap.Logger, mutate ...func(*controlplane.Config)) *fleet {
	t.Helper()
	return newFleetOpts(t, log, nil, mutate...)
}

// newFleetOpts is newFleetLog with more server options.
func newFleetOpts(t *testing.T, log *zap.Logger, opts []controlplane.Option, mutate ...func(*controlplane.Config)) *fleet {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := openTestStore(ctx, t, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := controlplane.DefaultConfig()
	cfg.DataDir = dir
	for _, m := range mutate {
		m(&cfg)
	}
	clock := &fakeClock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)} // a Monday
	srv := controlplane.New(cfg, st, log, append([]controlplane.Option{controlplane.WithClock(clock)}, opts...)...)
	t.Cleanup(srv.Close)
	hs := httptestServer(t, srv.Handler())
	e := &env{t: t, srv: hs, st: st, clock: clock}
	e.manage, _, _ = controlplane.CreateToken(ctx, st, "manage", []store.Scope{store.ScopeManage}, 0, clock.Now())
	e.read, _, _ = controlplane.CreateToken(ctx, st, "read", []store.Scope{store.ScopeRead}, 0, clock.Now())
	f := &fleet{env: e, srv: srv, dataDir: dir}
	f.pool = &store.Pool{ID: store.NewID("pol"), Name: "ad", Type: okta.AgentTypeAD, CreatedAt: clock.Now()}
	if err := st.CreatePool(ctx, f.pool); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fleet) tick() {
	f.t.Helper()
	if err := f.srv.Engine().Tick(context.Background()); err != nil {
		f.t.Fatalf("tick: %v", err)
	}
}

func (f *fleet) publish(version string) { f.publishAs("AD", version) }

func (f *fleet) publishAs(name, version string) { f.publishOn(name, version, "linux", okta.ChannelGA) }

// publishOn publishes a release of name for goos/amd64 on a channel.
func (f *fleet) publishOn(name, version, goos string, channel okta.ReleaseChannel) {
	f.t.Helper()
	dir := f.t.TempDir()
	file, sig := filepath.Join(dir, "agent"), filepath.Join(dir, "agent.minisig")
	os.WriteFile(file, []byte("#!/bin/sh\necho "+version+"\n"), 0o755)
	os.WriteFile(sig, []byte("untrusted comment: signature\nRUQ...\ntrusted comment: name=AD version="+version+"\nsig\n"), 0o644)
	_, err := controlplane.PublishRelease(context.Background(), f.st, f.dataDir, controlplane.Publish{Name: name, Version: version,
		OS: goos, Arch: "amd64", Channel: channel, File: file, SignatureFile: sig}, f.clock.Now())
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fleet) host(name, version string) *host {
	f.t.Helper()
	secret, c, err := controlplane.CreateClient(context.Background(), f.st, f.pool.ID, "", f.clock.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	h := &host{id: c.ID, secret: secret, hostname: name, version: version, jobs: map[string]sailpoint.JobReport{}}
	f.beat(h) // registers its agent
	return h
}

// beat sends one heartbeat for h and returns the reply.
func (f *fleet) beat(h *host) sailpoint.StatusReply {
	f.t.Helper()
	r := f.beatRaw(h.secret, h.id, f.body(h))
	if r.status != 200 {
		f.t.Fatalf("heartbeat of %s: %d %s", h.hostname, r.status, r.body)
	}
	var rep sailpoint.StatusReply
	r.decode(f.t, &rep)
	return rep
}

func (f *fleet) body(h *host) string {
	st := h.status
	if st == "" {
		st = sailpoint.StatusNormal
	}
	req := sailpoint.StatusRequest{Status: st, Timestamp: f.clock.Now().Format("2006-01-02T15:04:05.000000Z07:00"),
		Body: sailpoint.ClientBody{Hostname: sailpoint.Flex(h.hostname), OS: "linux", Arch: "amd64", InternalIP: "10.0.0.1", AgentVersion: sailpoint.Flex(h.self),
			Agents: []sailpoint.AgentReport{{Name: "ad-agent", Type: "AD", Version: h.version, Health: h.health}}}}
	for _, j := range h.jobs {
		req.Body.Jobs = append(req.Body.Jobs, j)
	}
	b, _ := json.Marshal(req)
	return string(b)
}

func (f *fleet) beatRaw(secret, id, body string) reply {
	f.t.Helper()
	auth := ""
	if secret != "" {
		auth = "Bearer " + secret
	}
	return f.do("POST", "/beta/managed-clients/"+id+"/status", auth, body)
}

func (f *fleet) update(id string) okta.AgentPoolUpdate {
	f.t.Helper()
	var u okta.AgentPoolUpdate
	f.do("GET", "/api/v1/agentPools/"+f.pool.ID+"/updates/"+id, f.read, "").decode(f.t, &u)
	return u
}

func statuses(u okta.AgentPoolUpdate) string {
	var s []string
	for _, a := range u.Agents {
		s = append(s, string(a.UpdateStatus))
	}
	return string(u.Status) + ":" + strings.Join(s, ",")
}

func TestHeartbeatErrors(t *testing.T) {
	f := newFleet(t, func(c *controlplane.Config) { c.Heartbeat.RateLimit = 5 })
	h := f.host("dc1", "1.0.0")
	other := f.host("dc2", "1.0.0")
	good := f.body(h)
	tests := []struct {
		name, secret, id, body string
		status                 int
		detail                 string // SailPoint detailCode, or "" for the 401 shape
	}{
		{"no credentials", "", h.id, good, 401, ""},
		{"bad secret", "pcs_nope", h.id, good, 401, ""},
		{"another client's status", h.secret, other.id, good, 403, "403 Forbidden"},
		{"unknown client", h.secret, "mcl-unknown", good, 404, "404 Not found"},
		{"malformed JSON", h.secret, h.id, `{"status":`, 400, "400.1 Bad Request Content"},
		{"unknown status", h.secret, h.id, `{"status":"FINE","body":{}}`, 400, "400.1 Bad Request Content"},
		{"unknown type", h.secret, h.id, `{"status":"NORMAL","type":"ROBOT","body":{}}`, 400, "400.1 Bad Request Content"},
		{"bad timestamp", h.secret, h.id, `{"status":"NORMAL","timestamp":"yesterday","body":{}}`, 400, "400.1 Bad Request Content"},
		{"bad job state", h.secret, h.id, `{"status":"NORMAL","body":{"jobs":[{"uuid":"x","state":"DONE"}]}}`, 400, "400.1 Bad Request Content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.clock.Advance(time.Minute) // keep clear of the rate limit
			r := f.beatRaw(tt.secret, tt.id, tt.body)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.detail == "" {
				var e sailpoint.AuthError
				if r.decode(t, &e); e.Error == "" {
					t.Errorf("401 body %s lacks error", r.body)
				}
				return
			}
			var e sailpoint.Error
			r.decode(t, &e)
			if e.DetailCode != tt.detail || e.TrackingID == "" || len(e.Messages) != 1 || e.Messages[0].Locale != "en-US" {
				t.Errorf("error = %s", r.body)
			}
		})
	}
	// The SailPoint client may send type null and microsecond timestamps.
	f.clock.Advance(time.Minute)
	if r := f.beatRaw(h.secret, h.id, `{"status":"NORMAL","type":null,"timestamp":"`+f.clock.Now().Format("2006-01-02T15:04:05.000000Z")+`","body":{"hostname":"dc1","lastSeen":"1620843964604","localDev":false}}`); r.status != 200 {
		t.Errorf("type null: %d %s", r.status, r.body)
	} else {
		var raw map[string]any
		r.decode(t, &raw)
		for _, k := range []string{"body", "status", "type", "timestamp"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("reply lacks required %q: %s", k, r.body)
			}
		}
	}
	// Rate limit: 5 a minute per client.
	f.clock.Advance(time.Minute)
	var last reply
	for range 6 {
		last = f.beatRaw(h.secret, h.id, good)
	}
	if last.status != 429 || last.header.Get("Retry-After") == "" || !strings.Contains(string(last.body), "Rate Limit Exceeded") {
		t.Errorf("6th heartbeat in a minute: %d %v %s", last.status, last.header, last.body)
	}
	// Failed authentications count against their address, never against
	// a client: not even one an operator named like that address.
	f.clock.Advance(time.Minute)
	secret, named, err := controlplane.CreateClient(context.Background(), f.st, f.pool.ID, "127.0.0.1", f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	for range 6 {
		last = f.beatRaw("pcs_nope", named.ID, good)
	}
	if last.status != 429 {
		t.Errorf("6th failed authentication from one address in a minute: %d %s", last.status, last.body)
	}
	if r := f.beatRaw(secret, named.ID, `{"status":"NORMAL","body":{"hostname":"lb"}}`); r.status != 200 {
		t.Errorf("client %s after its address's failed authentications: %d %s", named.ID, r.status, r.body)
	}
}

func TestHeartbeatShowsInAgentPoolsAPI(t *testing.T) {
	f := newFleet(t)
	f.publish("1.1.0")
	h := f.host("dc1.example.com", "1.0.0")
	f.host("dc2.example.com", "1.1.0")
	var pools []okta.AgentPool
	f.do("GET", "/api/v1/agentPools", f.read, "").decode(t, &pools)
	if len(pools) != 1 || len(pools[0].Agents) != 2 {
		t.Fatalf("pools = %+v", pools)
	}
	a, b := pools[0].Agents[0], pools[0].Agents[1]
	if a.Name != "dc1.example.com" || a.Version != "1.0.0" || a.OperationalStatus != okta.OperationalStatusOperational ||
		a.LastConnection == nil || !a.LastConnection.Equal(f.clock.Now()) || a.IsLatestGAedVersion == nil || *a.IsLatestGAedVersion {
		t.Errorf("agent a = %+v", a)
	}
	if b.IsLatestGAedVersion == nil || !*b.IsLatestGAedVersion {
		t.Errorf("agent b on the latest GA: %+v", b)
	}
	if pools[0].OperationalStatus != okta.OperationalStatusOperational {
		t.Errorf("pool status %s", pools[0].OperationalStatus)
	}
	// The latest release on the pool's channel shows in the settings.
	var set okta.AgentPoolUpdateSetting
	f.do("GET", "/api/v1/agentPools/"+f.pool.ID+"/updates/settings", f.read, "").decode(t, &set)
	if set.LatestVersion != "1.1.0" {
		t.Errorf("latestVersion = %q", set.LatestVersion)
	}
	// Silent for more than 3 intervals: INACTIVE; the pool is degraded.
	f.clock.Advance(2 * time.Minute)
	f.beat(h)
	f.do("GET", "/api/v1/agentPools", f.read, "").decode(t, &pools)
	if pools[0].Agents[0].OperationalStatus != okta.OperationalStatusOperational || pools[0].Agents[1].OperationalStatus != okta.OperationalStatusInactive ||
		pools[0].OperationalStatus != okta.OperationalStatusDegraded {
		t.Errorf("after silence: %+v", pools[0])
	}
}

// run plays a host's job to its end: RUNNING, then FINISHED (installing
// the version) or FAILED.
func (f *fleet) run(h *host, j sailpoint.Job, ok bool) {
	f.t.Helper()
	h.jobs[j.UUID] = sailpoint.JobReport{UUID: j.UUID, State: sailpoint.JobRunning, Progress: 50, Phase: "download"}
	f.beat(h)
	if ok {
		h.version = j.ManagedProcessConfiguration["ad-agent"].Version
		h.jobs[j.UUID] = sailpoint.JobReport{UUID: j.UUID, State: sailpoint.JobFinished, Progress: 100}
	} else {
		h.jobs[j.UUID] = sailpoint.JobReport{UUID: j.UUID, State: sailpoint.JobFailed, Progress: 100,
			UpdateStatus: "Failed", UpdateMessage: "HEALTH_CHECK: the new version exited at start"}
	}
	f.beat(h)
	f.tick()
}

func TestRolloutAdHoc(t *testing.T) {
	f := newFleet(t)
	f.publish("1.1.0")
	h1, h2 := f.host("dc1", "1.0.0"), f.host("dc2", "1.0.0")
	u := f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0"}`)
	f.tick()
	r1, r2 := f.beat(h1), f.beat(h2)
	if len(r1.Body.Jobs) != 1 || len(r2.Body.Jobs) != 0 {
		t.Fatalf("maxUnavailable 1: jobs %d and %d", len(r1.Body.Jobs), len(r2.Body.Jobs))
	}
	j := r1.Body.Jobs[0]
	mp := j.ManagedProcessConfiguration["ad-agent"]
	if j.State != sailpoint.JobPending || j.Type != "VA_UPGRADE" || j.TargetID != h1.id || mp.Version != "1.1.0" || mp.Artifact == nil ||
		mp.Artifact.Size == 0 || len(mp.Artifact.SHA256) != 64 || !strings.HasPrefix(mp.Artifact.URL, f.env.srv.URL+"/artifacts/AD/1.1.0/linux/amd64") ||
		!strings.HasPrefix(mp.Artifact.Signature, "untrusted comment:") || j.Sequence < 1 || !j.ExpiresAt.After(f.clock.Now()) {
		t.Errorf("job = %+v", j)
	}
	if r1.Body.Maintenance == nil || r1.Body.Maintenance.Window != "true" || r1.Body.ClusterID != f.pool.ID {
		t.Errorf("reply body = %+v", r1.Body)
	}
	// The artifact downloads with the client's secret, with Range and ETag.
	req, _ := http.NewRequest("GET", mp.Artifact.URL, nil)
	req.Header.Set("Authorization", "Bearer "+h1.secret)
	req.Header.Set("Range", "bytes=2-")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 206 || resp.Header.Get("ETag") != `"`+mp.Artifact.SHA256+`"` || int64(len(part)) != mp.Artifact.Size-2 {
		t.Errorf("ranged download: %d %v %d bytes", resp.StatusCode, resp.Header, len(part))
	}
	if r := f.do("GET", strings.TrimPrefix(mp.Artifact.URL, f.env.srv.URL), "", ""); r.status != 401 {
		t.Errorf("anonymous download: %d", r.status)
	}

	h1.jobs[j.UUID] = sailpoint.JobReport{UUID: j.UUID, State: sailpoint.JobRunning, Progress: 40, Phase: "download"}
	f.beat(h1)
	if got := statuses(f.update(u.ID)); got != "InProgress:InProgress,Scheduled" {
		t.Errorf("while host 1 runs: %s", got)
	}
	f.run(h1, j, true)
	if got := statuses(f.update(u.ID)); got != "InProgress:Success,Scheduled" {
		t.Errorf("after host 1: %s", got)
	}
	r2 = f.beat(h2)
	if len(r2.Body.Jobs) != 1 {
		t.Fatalf("host 2 got no job after host 1 finished")
	}
	f.run(h2, r2.Body.Jobs[0], true)
	got := f.update(u.ID)
	if statuses(got) != "Success:Success,Success" {
		t.Errorf("at the end: %s", statuses(got))
	}
	// The heartbeat's version shows in the API.
	if got.Agents[0].Version != "1.1.0" {
		t.Errorf("agent version %s", got.Agents[0].Version)
	}
	// A finished job is not handed out again.
	if r := f.beat(h1); len(r.Body.Jobs) != 0 {
		t.Errorf("jobs after success: %+v", r.Body.Jobs)
	}
}

func TestFailureHaltsUnlessContinueOnError(t *testing.T) {
	for _, cont := range []bool{false, true} {
		t.Run(fmt.Sprint("continueOnError=", cont), func(t *testing.T) {
			f := newFleet(t)
			f.publish("1.1.0")
			f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates/settings", f.manage, fmt.Sprintf(`{"continueOnError":%v}`, cont))
			h1, h2 := f.host("dc1", "1.0.0"), f.host("dc2", "1.0.0")
			u := f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0"}`)
			f.tick()
			f.run(h1, f.beat(h1).Body.Jobs[0], false)
			got := f.update(u.ID)
			if got.Agents[0].UpdateMessage != "HEALTH_CHECK: the new version exited at start" {
				t.Errorf("updateMessage = %q", got.Agents[0].UpdateMessage)
			}
			jobs := f.beat(h2).Body.Jobs
			if !cont {
				if statuses(got) != "Failed:Failed,Scheduled" || len(jobs) != 0 {
					t.Errorf("halted: %s, host 2 jobs %d", statuses(got), len(jobs))
				}
				// Retry hands the failed host a new job.
				f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates/"+u.ID+"/retry", f.manage, "")
				f.tick()
				if jobs := f.beat(h1).Body.Jobs; len(jobs) != 1 {
					t.Errorf("after retry host 1 has %d jobs", len(jobs))
				}
				return
			}
			if len(jobs) != 1 {
				t.Fatalf("continueOnError: host 2 got %d jobs", len(jobs))
			}
			f.run(h2, jobs[0], true)
			if got := statuses(f.update(u.ID)); got != "Failed:Failed,Success" {
				t.Errorf("end = %s", got)
			}
		})
	}
}

func TestPauseStopChangeWhatHostsReceive(t *testing.T) {
	f := newFleet(t)
	f.publish("1.1.0")
	h := f.host("dc1", "1.0.0")
	u := f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0"}`)
	base := "/api/v1/agentPools/" + f.pool.ID + "/updates/" + u.ID
	f.tick()
	j := f.beat(h).Body.Jobs[0]
	// The host acknowledges the job (PENDING); pause takes it back.
	h.jobs[j.UUID] = sailpoint.JobReport{UUID: j.UUID, State: sailpoint.JobPending}
	f.beat(h)
	f.do("POST", base+"/pause", f.manage, "")
	f.tick()
	rep := f.beat(h)
	if len(rep.Body.Jobs) != 1 || rep.Body.Jobs[0].UUID != j.UUID || rep.Body.Jobs[0].State != sailpoint.JobCancelled {
		t.Fatalf("after pause: %+v", rep.Body.Jobs)
	}
	h.jobs[j.UUID] = sailpoint.JobReport{UUID: j.UUID, State: sailpoint.JobCancelled, UpdateMessage: "cancelled by the server"}
	f.beat(h)
	delete(h.jobs, j.UUID)
	if got := statuses(f.update(u.ID)); got != "Paused:Scheduled" {
		t.Errorf("paused: %s", got)
	}
	// Resume hands out a new job.
	f.do("POST", base+"/resume", f.manage, "")
	f.tick()
	rep = f.beat(h)
	if len(rep.Body.Jobs) != 1 || rep.Body.Jobs[0].UUID == j.UUID || rep.Body.Jobs[0].State != sailpoint.JobPending || rep.Body.Jobs[0].Sequence <= j.Sequence {
		t.Fatalf("after resume: %+v", rep.Body.Jobs)
	}
	j2 := rep.Body.Jobs[0]
	// Running when stopped: the host is told to cancel, and reports it.
	h.jobs[j2.UUID] = sailpoint.JobReport{UUID: j2.UUID, State: sailpoint.JobRunning, Progress: 10}
	f.beat(h)
	f.do("POST", base+"/stop", f.manage, "")
	f.tick()
	rep = f.beat(h)
	if len(rep.Body.Jobs) != 1 || rep.Body.Jobs[0].State != sailpoint.JobCancelled {
		t.Fatalf("after stop: %+v", rep.Body.Jobs)
	}
	h.jobs[j2.UUID] = sailpoint.JobReport{UUID: j2.UUID, State: sailpoint.JobCancelled, UpdateStatus: "Cancelled", UpdateMessage: "CANCELLED_BY_SERVER"}
	f.beat(h)
	f.tick()
	got := f.update(u.ID)
	if statuses(got) != "Cancelled:Cancelled" || got.Schedule != nil {
		t.Errorf("stopped: %s", statuses(got))
	}
}

func TestScheduledUpdateWaitsForItsWindow(t *testing.T) {
	f := newFleet(t)
	f.publish("1.1.0")
	h := f.host("dc1", "1.0.0")
	// The 3rd of the month 02:00-03:00 UTC; the clock is the 2nd 10:00.
	u := f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0","schedule":{"cron":"0 2 3 * *","timezone":"UTC","duration":60}}`)
	f.tick()
	if rep := f.beat(h); len(rep.Body.Jobs) != 0 || f.update(u.ID).Status != okta.JobScheduled {
		t.Fatalf("before the window: jobs %+v", rep.Body.Jobs)
	}
	f.clock.Advance(16*time.Hour + 5*time.Minute) // the 3rd, 02:05
	f.beat(h)
	f.tick()
	rep := f.beat(h)
	if len(rep.Body.Jobs) != 1 || f.update(u.ID).Status != okta.JobInProgress {
		t.Fatalf("in the window: jobs %+v status %s", rep.Body.Jobs, f.update(u.ID).Status)
	}
	m := rep.Body.Maintenance
	if m == nil || m.Window != "true" || m.WindowStartTime != "2026-03-03T02:00:00Z" || m.WindowFinishTime != "2026-03-03T03:00:00Z" ||
		m.WindowClusterTime != "2026-03-03T02:05:00Z" {
		t.Errorf("maintenance = %+v", m)
	}
	// The window closes before the host starts: the job is taken back and
	// the update waits for the next window.
	j := rep.Body.Jobs[0]
	h.jobs[j.UUID] = sailpoint.JobReport{UUID: j.UUID, State: sailpoint.JobPending}
	f.beat(h)
	f.clock.Advance(time.Hour)
	f.beat(h)
	f.tick()
	rep = f.beat(h)
	if len(rep.Body.Jobs) != 1 || rep.Body.Jobs[0].State != sailpoint.JobCancelled || f.update(u.ID).Status != okta.JobScheduled {
		t.Errorf("after the window: jobs %+v status %s", rep.Body.Jobs, f.update(u.ID).Status)
	}
}

func TestEnrollment(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	tok, err := controlplane.CreateEnrollToken(ctx, f.st, f.pool.ID, time.Hour, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	body := `{"hostname":"ldap1.example.com","type":"VA","os":"linux","arch":"arm64"}`
	r := f.do("POST", "/beta/managed-clients", "Bearer "+tok, body)
	var er sailpoint.EnrollReply
	r.decode(t, &er)
	if r.status != 201 || er.ClientID == "" || er.ClusterID != f.pool.ID || !strings.HasPrefix(er.Secret, "pcs_") {
		t.Fatalf("enroll = %d %s", r.status, r.body)
	}
	if r := f.beatRaw(er.Secret, er.ClientID, `{"status":"NORMAL","body":{"hostname":"ldap1.example.com"}}`); r.status != 200 {
		t.Errorf("heartbeat with enrolled secret: %d %s", r.status, r.body)
	}
	if r := f.do("POST", "/beta/managed-clients", "Bearer "+tok, body); r.status != 401 || !strings.Contains(string(r.body), "already used") {
		t.Errorf("reuse: %d %s", r.status, r.body)
	}
	old, _ := controlplane.CreateEnrollToken(ctx, f.st, f.pool.ID, time.Minute, f.clock.Now())
	f.clock.Advance(2 * time.Minute)
	if r := f.do("POST", "/beta/managed-clients", "Bearer "+old, body); r.status != 401 || !strings.Contains(string(r.body), "expired") {
		t.Errorf("expired: %d %s", r.status, r.body)
	}
	fresh, _ := controlplane.CreateEnrollToken(ctx, f.st, f.pool.ID, time.Hour, f.clock.Now())
	if r := f.do("POST", "/beta/managed-clients", "Bearer "+fresh, `{"type":"ROBOT"}`); r.status != 400 {
		t.Errorf("bad body: %d %s", r.status, r.body)
	}
}

func TestMinimalSupportedVersionGivesAJob(t *testing.T) {
	f := newFleet(t)
	f.publish("1.1.0")
	old, cur := f.host("dc1", "0.9.0"), f.host("dc2", "1.0.5")
	f.tick()
	if len(f.beat(old).Body.Jobs) != 0 {
		t.Fatal("a job without an update or a minimal version")
	}
	f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates/settings", f.manage, `{"minimalSupportedVersion":"1.0.0"}`)
	f.tick()
	jobs := f.beat(old).Body.Jobs
	if len(jobs) != 1 || jobs[0].ManagedProcessConfiguration["ad-agent"].Version != "1.1.0" {
		t.Fatalf("agent below the minimum: jobs %+v", jobs)
	}
	if len(f.beat(cur).Body.Jobs) != 0 {
		t.Error("an agent above the minimum got a job")
	}
	var list []okta.AgentPoolUpdate
	f.do("GET", "/api/v1/agentPools/"+f.pool.ID+"/updates", f.read, "").decode(t, &list)
	if len(list) != 1 || list[0].Name != "minimalSupportedVersion 1.0.0" || len(list[0].Agents) != 1 {
		t.Errorf("updates = %+v", list)
	}
	// The next tick does not create another one.
	f.tick()
	f.do("GET", "/api/v1/agentPools/"+f.pool.ID+"/updates", f.read, "").decode(t, &list)
	if len(list) != 1 {
		t.Errorf("%d updates after a second tick", len(list))
	}
}

func TestSelfUpdateOffered(t *testing.T) {
	f := newFleet(t)
	h := f.host("dc1", "1.0.0")
	h.self = "0.1.0"
	f.beat(h)
	f.tick()
	if len(f.beat(h).Body.Jobs) != 0 {
		t.Fatal("a self-update without a poolagent release")
	}
	f.publishAs("poolagent", "0.2.0")
	f.tick() // the engine reads the catalog afresh: no wait for the API's snapshot
	jobs := f.beat(h).Body.Jobs
	if len(jobs) != 1 {
		t.Fatalf("jobs = %+v", jobs)
	}
	mp, ok := jobs[0].ManagedProcessConfiguration["poolagent"]
	if !ok || mp.Version != "0.2.0" || mp.Type != "poolagent" || mp.Artifact == nil {
		t.Fatalf("self job = %+v", jobs[0])
	}
	// A failed self-update is not offered again.
	h.jobs[jobs[0].UUID] = sailpoint.JobReport{UUID: jobs[0].UUID, State: sailpoint.JobFailed, UpdateMessage: "HEALTH_CHECK: no heartbeat"}
	f.beat(h)
	delete(h.jobs, jobs[0].UUID)
	f.tick()
	if jobs := f.beat(h).Body.Jobs; len(jobs) != 0 {
		t.Errorf("offered again after failing: %+v", jobs)
	}
	// A host already on the newest poolagent gets nothing.
	h2 := f.host("dc2", "1.0.0")
	h2.self = "0.2.0"
	f.beat(h2)
	f.tick()
	if jobs := f.beat(h2).Body.Jobs; len(jobs) != 0 {
		t.Errorf("up-to-date host got %+v", jobs)
	}
}

func TestMaxUnavailableBoundsJobsInFlight(t *testing.T) {
	f := newFleet(t)
	f.publish("1.1.0")
	f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates/settings", f.manage, `{"maxUnavailable":2}`)
	hosts := []*host{f.host("dc1", "1.0.0"), f.host("dc2", "1.0.0"), f.host("dc3", "1.0.0")}
	f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0"}`)
	f.tick()
	var got []int
	for _, h := range hosts {
		got = append(got, len(f.beat(h).Body.Jobs))
	}
	if fmt.Sprint(got) != "[1 1 0]" {
		t.Errorf("jobs per host = %v, want [1 1 0] (in agent order, two at a time)", got)
	}
}

func sailpointFinished(id string) sailpoint.JobReport {
	return sailpoint.JobReport{UUID: id, State: sailpoint.JobFinished, Progress: 100}
}

// TestDeactivateStopsHandingOutJobs checks what hosts receive around
// deactivate and activate: a deactivated update hands out no job (and
// takes back one not started), and activate resumes the rollout.
func TestDeactivateStopsHandingOutJobs(t *testing.T) {
	f := newFleet(t)
	f.publish("1.1.0")
	f.settings(`{"maxUnavailable":2}`)
	h1, h2 := f.host("dc1", "1.0.0"), f.host("dc2", "1.0.0")
	u := f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0"}`)
	base := "/api/v1/agentPools/" + f.pool.ID + "/updates/" + u.ID

	// Deactivated before the engine ran: nothing is handed out, however
	// often the hosts heartbeat.
	if r := f.do("POST", base+"/deactivate", f.manage, ""); r.status != http.StatusCreated {
		t.Fatalf("deactivate: %d %s", r.status, r.body)
	}
	for range 3 {
		f.tick()
		for _, h := range []*host{h1, h2} {
			if jobs := f.beat(h).Body.Jobs; len(jobs) != 0 {
				t.Fatalf("deactivated: %s got %+v", h.hostname, jobs)
			}
		}
	}
	got := f.update(u.ID)
	if got.Enabled || statuses(got) != "InProgress:Scheduled,Scheduled" {
		t.Errorf("deactivated: enabled %t, %s", got.Enabled, statuses(got))
	}

	// Activate: both hosts get their job on the next heartbeat.
	if r := f.do("POST", base+"/activate", f.manage, ""); r.status != http.StatusCreated {
		t.Fatalf("activate: %d %s", r.status, r.body)
	}
	f.tick()
	j1, j2 := f.beat(h1).Body.Jobs, f.beat(h2).Body.Jobs
	if len(j1) != 1 || len(j2) != 1 || j1[0].State != sailpoint.JobPending {
		t.Fatalf("activated: jobs %+v and %+v", j1, j2)
	}
	// dc1 starts its job; dc2 only acknowledges. Deactivating now lets the
	// running job finish and takes back the one not started.
	h1.jobs[j1[0].UUID] = sailpoint.JobReport{UUID: j1[0].UUID, State: sailpoint.JobRunning, Progress: 30, Phase: "download"}
	h2.jobs[j2[0].UUID] = sailpoint.JobReport{UUID: j2[0].UUID, State: sailpoint.JobPending}
	f.beat(h1)
	f.beat(h2)
	f.do("POST", base+"/deactivate", f.manage, "")
	f.tick()
	if rep := f.beat(h1).Body.Jobs; len(rep) != 1 || rep[0].UUID != j1[0].UUID || rep[0].State == sailpoint.JobCancelled {
		t.Errorf("deactivated while running: dc1 has %+v, want its job to go on", rep)
	}
	rep := f.beat(h2).Body.Jobs
	if len(rep) != 1 || rep[0].UUID != j2[0].UUID || rep[0].State != sailpoint.JobCancelled {
		t.Fatalf("deactivated before start: dc2 has %+v, want its job cancelled", rep)
	}
	h2.jobs[j2[0].UUID] = sailpoint.JobReport{UUID: j2[0].UUID, State: sailpoint.JobCancelled, UpdateMessage: "cancelled by the server"}
	f.beat(h2)
	delete(h2.jobs, j2[0].UUID)
	f.run(h1, j1[0], true)
	for range 2 {
		f.tick()
		if jobs := f.beat(h2).Body.Jobs; len(jobs) != 0 {
			t.Fatalf("deactivated: dc2 got %+v", jobs)
		}
	}
	if got := statuses(f.update(u.ID)); got != "InProgress:Success,Scheduled" {
		t.Errorf("deactivated after dc1 finished: %s", got)
	}

	// Activate again: dc2 gets a new job and the update ends Success.
	f.do("POST", base+"/activate", f.manage, "")
	f.tick()
	jobs := f.beat(h2).Body.Jobs
	if len(jobs) != 1 || jobs[0].UUID == j2[0].UUID || jobs[0].State != sailpoint.JobPending {
		t.Fatalf("re-activated: dc2 has %+v, want a new job", jobs)
	}
	f.run(h2, jobs[0], true)
	if got := f.update(u.ID); statuses(got) != "Success:Success,Success" || !got.Enabled {
		t.Errorf("at the end: enabled %t, %s", got.Enabled, statuses(got))
	}
}

// TestAllAgentsUpdateReadsBackComplete: an update of every agent of the
// pool is stored without rows (the engine writes them); until the engine
// has, reads and lifecycle actions see every agent, Scheduled.
func TestAllAgentsUpdateReadsBackComplete(t *testing.T) {
	f := newFleet(t)
	f.publish("1.1.0")
	for i := range 3 {
		f.host(fmt.Sprintf("dc%d", i), "1.0.0")
	}
	var u okta.AgentPoolUpdate
	f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates", f.manage, `{"name":"all","targetVersion":"1.1.0"}`).decode(t, &u)
	if len(u.Agents) != 3 {
		t.Fatalf("create reply lists %d agents, want 3", len(u.Agents))
	}
	stored, err := f.st.GetUpdate(context.Background(), f.pool.ID, u.ID)
	if err != nil || len(stored.Agents) != 0 {
		t.Fatalf("rows stored at create = %d, %v; want none (the engine writes them)", len(stored.Agents), err)
	}
	if got := statuses(f.update(u.ID)); got != "InProgress:Scheduled,Scheduled,Scheduled" {
		t.Errorf("read back before the engine ran = %s", got)
	}
	// A lifecycle action before the engine ran writes the rows itself.
	f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates/"+u.ID+"/pause", f.manage, "")
	if stored, _ := f.st.GetUpdate(context.Background(), f.pool.ID, u.ID); len(stored.Agents) != 3 {
		t.Errorf("rows after pause = %d, want 3", len(stored.Agents))
	}
	f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates/"+u.ID+"/resume", f.manage, "")
	f.tick()
	if got := statuses(f.update(u.ID)); got != "InProgress:Scheduled,Scheduled,Scheduled" {
		t.Errorf("after a tick = %s", got)
	}
}

// TestBigUpdateSummaryFromTheEngine: polling a big active update with
// agents=none answers from its header and the engine's counts, equal to
// the counts of the full read.
func TestBigUpdateSummaryFromTheEngine(t *testing.T) {
	f := newFleet(t)
	f.publish("1.1.0")
	const n = 2100 // above the reply size read whole
	hosts := make([]*host, n)
	for i := range hosts {
		hosts[i] = f.host(fmt.Sprintf("h%04d", i), "1.0.0")
	}
	f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates/settings", f.manage, `{"maxUnavailable":100}`)
	var u okta.AgentPoolUpdate
	f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates", f.manage, `{"name":"big","targetVersion":"1.1.0"}`).decode(t, &u)
	f.tick()
	var full, summary okta.AgentPoolUpdate
	f.do("GET", "/api/v1/agentPools/"+f.pool.ID+"/updates/"+u.ID, f.read, "").decode(t, &full)
	r := f.do("GET", "/api/v1/agentPools/"+f.pool.ID+"/updates/"+u.ID+"?agents=none", f.read, "")
	r.decode(t, &summary)
	if len(full.Agents) != n || summary.Agents != nil || strings.Contains(string(r.body), `"agents"`) {
		t.Fatalf("full read has %d agents; summary body %.200s", len(full.Agents), r.body)
	}
	if summary.Status != full.Status || fmt.Sprint(summary.AgentCounts) != fmt.Sprint(full.AgentCounts) {
		t.Errorf("summary %s %v, full read %s %v", summary.Status, summary.AgentCounts, full.Status, full.AgentCounts)
	}
	if full.AgentCounts[okta.InstanceScheduled] != n {
		t.Errorf("counts = %v, want %d Scheduled", full.AgentCounts, n)
	}
}

// TestJobReportWritesOnlyTheJob: a heartbeat whose only change is a job
// report writes the job's row, not the host's facts nor its agents.
func TestJobReportWritesOnlyTheJob(t *testing.T) {
	f := newFleet(t)
	f.publish("1.1.0")
	h := f.host("dc1", "1.0.0")
	f.host("dc2", "1.0.0")
	var u okta.AgentPoolUpdate
	f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates", f.manage, `{"name":"u","targetVersion":"1.1.0"}`).decode(t, &u)
	f.tick()
	rep := f.beat(h)
	if len(rep.Body.Jobs) != 1 {
		t.Fatalf("jobs = %+v", rep.Body.Jobs)
	}
	ctx := context.Background()
	before, err := f.st.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h.jobs = map[string]sailpoint.JobReport{rep.Body.Jobs[0].UUID: {UUID: rep.Body.Jobs[0].UUID, State: sailpoint.JobRunning, Progress: 10, Phase: "download"}}
	f.beat(h)
	ch, err := f.st.ChangesSince(ctx, before)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Clients) != 0 || len(ch.Agents) != 0 || len(ch.UpdateAgents) != 1 || ch.UpdateAgents[0].Status != okta.InstanceInProgress {
		t.Errorf("a job report wrote clients %d, agents %d, rows %+v; want the job's row only", len(ch.Clients), len(ch.Agents), ch.UpdateAgents)
	}
	// The finished job changes the agent's version: the agent is written.
	h.version = "1.1.0"
	h.jobs = map[string]sailpoint.JobReport{rep.Body.Jobs[0].UUID: {UUID: rep.Body.Jobs[0].UUID, State: sailpoint.JobFinished, Progress: 100}}
	before, _ = f.st.Revision(ctx)
	f.beat(h)
	if ch, _ = f.st.ChangesSince(ctx, before); len(ch.Agents) != 1 || ch.Agents[0].Version != "1.1.0" || len(ch.UpdateAgents) != 1 {
		t.Errorf("finished job: agents %+v, rows %d", ch.Agents, len(ch.UpdateAgents))
	}
}

// TestNextHeartbeatWhileJobsAreMade: a host that checks in between an
// operator's create and the engine's dispatch is told to come back in
// seconds (nextHeartbeat), not a whole interval later; once the engine
// has decided, nobody is (a host left without a slot waits its interval).
func TestNextHeartbeatWhileJobsAreMade(t *testing.T) {
	f := newFleet(t, func(c *controlplane.Config) { c.Heartbeat.Interval.Duration = 60 * time.Second })
	f.publish("1.1.0")
	h1, h2 := f.host("dc1", "1.0.0"), f.host("dc2", "1.0.0")
	if r := f.beat(h1); r.Body.Configuration[sailpoint.ConfigNextHeartbeat] != "" {
		t.Fatalf("nextHeartbeat with no update: %q", r.Body.Configuration[sailpoint.ConfigNextHeartbeat])
	}
	u := f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0"}`)
	r := f.beat(h1) // before the engine's tick
	if len(r.Body.Jobs) != 0 || r.Body.Configuration[sailpoint.ConfigNextHeartbeat] != "5" {
		t.Fatalf("before the dispatch: %d jobs, nextHeartbeat %q; want none and 5 (60 s / 10, at most 5)",
			len(r.Body.Jobs), r.Body.Configuration[sailpoint.ConfigNextHeartbeat])
	}
	if r.Body.Configuration[sailpoint.ConfigHeartbeatInterval] != "60" {
		t.Errorf("heartbeatInterval %q: the interval itself does not change", r.Body.Configuration[sailpoint.ConfigHeartbeatInterval])
	}
	f.tick()
	r1, r2 := f.beat(h1), f.beat(h2)
	if len(r1.Body.Jobs) != 1 || r1.Body.Configuration[sailpoint.ConfigNextHeartbeat] != "" {
		t.Errorf("after the dispatch, host 1: %d jobs, nextHeartbeat %q", len(r1.Body.Jobs), r1.Body.Configuration[sailpoint.ConfigNextHeartbeat])
	}
	// maxUnavailable 1: host 2 waits for a slot, at its own interval.
	if len(r2.Body.Jobs) != 0 || r2.Body.Configuration[sailpoint.ConfigNextHeartbeat] != "" {
		t.Errorf("host 2 without a slot: %d jobs, nextHeartbeat %q", len(r2.Body.Jobs), r2.Body.Configuration[sailpoint.ConfigNextHeartbeat])
	}
	// Pausing is an operator's action too: until the engine has seen it,
	// hosts without a job are asked back soon; then not.
	if rr := f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates/"+u.ID+"/pause", f.manage, ""); rr.status/100 != 2 {
		t.Fatalf("pause: %d %s", rr.status, rr.body)
	}
	f.tick()
	if r := f.beat(h2); r.Body.Configuration[sailpoint.ConfigNextHeartbeat] != "" {
		t.Errorf("after the engine saw the pause: nextHeartbeat %q", r.Body.Configuration[sailpoint.ConfigNextHeartbeat])
	}
}

// TestCreateAllAgentsByCount: an update of every agent created with
// agents=none takes its count from the engine (no listing of the pool):
// the reply counts every agent Scheduled, the update reads back complete,
// and the next tick hands out its jobs (one: maxUnavailable 1).
func TestCreateAllAgentsByCount(t *testing.T) {
	f := newFleet(t)
	f.publish("1.1.0")
	hosts := []*host{f.host("dc1", "1.0.0"), f.host("dc2", "1.0.0"), f.host("dc3", "1.0.0")}
	for _, h := range hosts {
		f.beat(h)
	}
	f.tick() // the engine knows the pool's three agents
	base := "/api/v1/agentPools/" + f.pool.ID + "/updates"
	r := f.do("POST", base+"?agents=none", f.manage, `{"targetVersion":"1.1.0"}`)
	var created struct {
		ID          string
		Agents      *json.RawMessage `json:"agents"`
		AgentCounts map[string]int   `json:"agentCounts"`
	}
	r.decode(t, &created)
	if r.status != http.StatusCreated || created.Agents != nil || created.AgentCounts["Scheduled"] != len(hosts) {
		t.Fatalf("create ?agents=none: %d %s; want 201, no agents array, %d Scheduled", r.status, r.body, len(hosts))
	}
	if n := len(f.update(created.ID).Agents); n != len(hosts) {
		t.Errorf("the update reads back %d agents, want %d", n, len(hosts))
	}
	f.tick()
	jobs := 0
	for _, h := range hosts {
		jobs += len(f.beat(h).Body.Jobs)
	}
	if jobs != 1 {
		t.Errorf("%d jobs handed out after the tick, want 1", jobs)
	}
}
