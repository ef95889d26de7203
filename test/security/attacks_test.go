// Package security_test plays The Update Framework's attacks against a real
// poolagent process: a malicious control plane (an httptest server speaking
// the heartbeat protocol) hands it crafted jobs and artifacts, and each
// test checks what the host reports and that the installed binary is
// still the old one, runnable. docs/security.md links every row here.
package security_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"aead.dev/minisign"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/internal/e2e"
	"github.com/poolagent/poolagent/signing"
)

var (
	bins    *e2e.Bins
	samples = map[string][]byte{} // sample agent binaries by version
	sampleP = map[string]string{}
)

func TestMain(m *testing.M) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "poolagent-security")
	if err != nil {
		panic(err)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		ctx := context.Background()
		if bins, err = e2e.Build(ctx, dir, "0.9.0"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		for _, v := range []string{"0.9.0", "1.0.0", "1.1.0", "1.2.0"} {
			p, err := bins.BuildSample(ctx, v, true)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			sampleP[v] = p
			samples[v], _ = os.ReadFile(p)
		}
		return m.Run()
	}()
	os.Exit(code)
}

type key struct {
	pub  minisign.PublicKey
	priv minisign.PrivateKey
}

func newKey(t *testing.T) key {
	pub, priv, err := signing.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return key{pub, priv}
}

func (k key) sign(t *testing.T, data []byte, m signing.Meta) string {
	t.Helper()
	sig, err := signing.SignReader(k.priv, strings.NewReader(string(data)), m)
	if err != nil {
		t.Fatal(err)
	}
	return string(sig)
}

// evil is a malicious control plane: it hands out one scripted job and
// records what the host reports.
type evil struct {
	t       *testing.T
	srv     *httptest.Server
	skew    time.Duration // its clock minus the real one
	mu      sync.Mutex
	offered *sailpoint.Job
	cancel  []string // jobs answered CANCELLED, as poolserver does for jobs it no longer wants
	files   map[string]func(w http.ResponseWriter, r *http.Request)
	report  map[string]sailpoint.JobReport
	agents  []sailpoint.AgentReport
	beats   int
	gets    map[string]int // requests per served file
}

func newEvil(t *testing.T) *evil {
	e := &evil{t: t, files: map[string]func(http.ResponseWriter, *http.Request){}, report: map[string]sailpoint.JobReport{}, gets: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /beta/managed-clients", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(sailpoint.EnrollReply{ID: "host-1", ClientID: "host-1", ClusterID: "pool", Secret: "pcs_evil"})
	})
	mux.HandleFunc("POST /beta/managed-clients/{id}/status", func(w http.ResponseWriter, r *http.Request) {
		var req sailpoint.StatusRequest
		json.NewDecoder(r.Body).Decode(&req)
		now := time.Now().Add(e.skew).UTC()
		e.mu.Lock()
		e.beats++
		e.agents = req.Body.Agents
		for _, j := range req.Body.Jobs {
			e.report[j.UUID] = j
		}
		var jobs []sailpoint.Job
		for _, id := range e.cancel {
			if rep, ok := e.report[id]; ok && rep.State == sailpoint.JobPending || ok && rep.State == sailpoint.JobRunning {
				jobs = append(jobs, sailpoint.Job{UUID: id, Cookbook: id, State: sailpoint.JobCancelled, Type: sailpoint.JobTypeUpgrade,
					TargetID: "host-1", ManagedProcessConfiguration: map[string]sailpoint.ManagedProcess{}, ExpiresAt: now.Add(time.Minute)})
			}
		}
		if e.offered != nil {
			if rep, ok := e.report[e.offered.UUID]; !ok || (rep.State != sailpoint.JobFinished && rep.State != sailpoint.JobFailed && rep.State != sailpoint.JobCancelled) {
				jobs = append(jobs, *e.offered)
			}
		}
		e.mu.Unlock()
		typ := sailpoint.TypeVA
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Date", now.Format(http.TimeFormat)) // a skewed server's Date is skewed too
		json.NewEncoder(w).Encode(sailpoint.StatusReply{Status: "NORMAL", Type: &typ, Timestamp: now,
			Body: sailpoint.ReplyBody{ID: "host-1", ClientID: "host-1", ClusterID: "pool", Jobs: jobs,
				Configuration: map[string]string{"heartbeatInterval": "1"}}})
	})
	mux.HandleFunc("GET /files/{name}", func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		h := e.files[r.PathValue("name")]
		e.gets[r.PathValue("name")]++
		e.mu.Unlock()
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	})
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// serve publishes data at /files/name.
func (e *evil) serve(name string, data []byte) string {
	e.mu.Lock()
	e.files[name] = func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, name, time.Now(), strings.NewReader(string(data)))
	}
	e.mu.Unlock()
	return e.srv.URL + "/files/" + name
}

func (e *evil) serveFunc(name string, h func(w http.ResponseWriter, r *http.Request)) string {
	e.mu.Lock()
	e.files[name] = h
	e.mu.Unlock()
	return e.srv.URL + "/files/" + name
}

// window returns a maintenance window by the evil server's clock,
// opening at from and closing at to (relative to its now).
func (e *evil) window(from, to time.Duration) *sailpoint.Maintenance {
	now := time.Now().Add(e.skew).UTC()
	open := from <= 0 && to > 0
	return &sailpoint.Maintenance{Window: fmt.Sprint(open), WindowStartTime: now.Add(from).Format(time.RFC3339),
		WindowClusterTime: now.Format(time.RFC3339), WindowFinishTime: now.Add(to).Format(time.RFC3339)}
}

// offer sets the job the server hands out from now on; the one it
// replaces is answered CANCELLED while the host still holds it.
func (e *evil) offer(j sailpoint.Job) {
	e.mu.Lock()
	if e.offered != nil && e.offered.UUID != j.UUID {
		e.cancel = append(e.cancel, e.offered.UUID)
	}
	e.offered = &j
	e.mu.Unlock()
}

func (e *evil) reportOf(uuid string) (sailpoint.JobReport, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.report[uuid]
	return r, ok
}

// requests counts the requests for /files/name.
func (e *evil) requests(name string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.gets[name]
}

func (e *evil) heartbeats() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.beats
}

// job is a well-formed job for version v of the sample agent.
func (e *evil) job(id, v string, a sailpoint.Artifact, seq int64) sailpoint.Job {
	now := time.Now().Add(e.skew).UTC()
	return sailpoint.Job{UUID: id, Cookbook: id, State: sailpoint.JobPending, Type: sailpoint.JobTypeUpgrade, TargetID: "host-1",
		UpdateID: "upd-1", PoolID: "pool", Sequence: seq, ExpiresAt: now.Add(10 * time.Minute), Maintenance: e.window(-time.Minute, time.Hour),
		ManagedProcessConfiguration: map[string]sailpoint.ManagedProcess{"ad-agent": {Version: v, Path: "AD/ad-agent", Type: "AD", Artifact: &a}}}
}

func meta(v string) signing.Meta {
	return signing.Meta{Name: "AD", Version: v, OS: runtime.GOOS, Arch: runtime.GOARCH}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// artifact is a correct descriptor of data served at url.
func artifact(url string, data []byte, m signing.Meta, sig string) sailpoint.Artifact {
	return sailpoint.Artifact{Name: m.Name, Version: m.Version, OS: m.OS, Arch: m.Arch, URL: url, Size: int64(len(data)), SHA256: sum(data), Signature: sig}
}

type rig struct {
	t    *testing.T
	e    *evil
	host *e2e.Host
	k    key
}

func newRig(t *testing.T, mutate func(*e2e.HostOptions)) *rig {
	t.Helper()
	return newSkewedRig(t, 0, mutate)
}

// newSkewedRig's server clock is off by skew from the host's from the
// first heartbeat on.
func newSkewedRig(t *testing.T, skew time.Duration, mutate func(*e2e.HostOptions)) *rig {
	t.Helper()
	e := newEvil(t)
	e.skew = skew
	k := newKey(t)
	o := e2e.HostOptions{Name: "victim", AgentType: "AD", SampleAgent: sampleP["1.0.0"], TrustedKey: k.pub.String(), ServerURL: e.srv.URL,
		StallTimeout: 2 * time.Second}
	if mutate != nil {
		mutate(&o)
	}
	h, err := e2e.NewHost(bins, t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := h.Enroll(ctx, e.srv.URL, "pet_any"); err != nil {
		t.Fatal(err)
	}
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.KillAll()
		if t.Failed() {
			t.Logf("poolagent log:\n%s", h.LogTail(4000))
		}
	})
	r := &rig{t: t, e: e, host: h, k: k}
	r.waitFor(20*time.Second, "first heartbeat", func() bool { return e.heartbeats() > 0 })
	return r
}

func (r *rig) waitFor(d time.Duration, what string, cond func() bool) {
	r.t.Helper()
	if err := e2e.Eventually(context.Background(), d, func() (bool, error) { return cond(), nil }); err != nil {
		r.t.Fatalf("%s: %v", what, err)
	}
}

// refused waits for the job to be reported FAILED with a message starting
// with one of codes, and checks the installed binary is still 1.0.0.
func (r *rig) refused(uuid string, codes ...string) {
	r.t.Helper()
	var rep sailpoint.JobReport
	r.waitFor(45*time.Second, "the job's FAILED report", func() bool {
		var ok bool
		rep, ok = r.e.reportOf(uuid)
		return ok && rep.State == sailpoint.JobFailed
	})
	match := false
	for _, c := range codes {
		match = match || strings.HasPrefix(rep.UpdateMessage, c+":")
	}
	if !match {
		r.t.Errorf("updateMessage %q does not start with one of %v", rep.UpdateMessage, codes)
	}
	r.unchanged()
}

func (r *rig) unchanged() {
	r.t.Helper()
	v, err := r.host.InstalledVersion(context.Background())
	if err != nil || v != "1.0.0" {
		r.t.Errorf("installed agent: %q, %v; want the old 1.0.0, runnable", v, err)
	}
}

// installed waits for the job to finish and checks the new version.
func (r *rig) installed(uuid, v string) {
	r.t.Helper()
	r.waitFor(45*time.Second, "the job's FINISHED report", func() bool {
		rep, ok := r.e.reportOf(uuid)
		if ok && rep.State == sailpoint.JobFailed {
			r.t.Fatalf("job failed: %s", rep.UpdateMessage)
		}
		return ok && rep.State == sailpoint.JobFinished
	})
	if got, err := r.host.InstalledVersion(context.Background()); err != nil || got != v {
		r.t.Errorf("installed %q, %v; want %s", got, err, v)
	}
}

func TestArbitrarySoftwareInstallation(t *testing.T) {
	t.Parallel()
	data := samples["1.1.0"]
	stranger := newKey(t)
	for _, tc := range []struct {
		name  string
		sig   func(r *rig) string
		codes []string
	}{
		{"unsigned", func(*rig) string { return "" }, []string{"SIGNATURE"}},
		{"garbage signature", func(*rig) string { return "untrusted comment: x\nAAAA\n" }, []string{"SIGNATURE"}},
		{"signed by a key that is not pinned", func(*rig) string { return stranger.sign(t, data, meta("1.1.0")) }, []string{"UNTRUSTED_KEY"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			url := r.e.serve("a", data)
			r.e.offer(r.e.job("j1", "1.1.0", artifact(url, data, meta("1.1.0"), tc.sig(r)), 1))
			r.refused("j1", tc.codes...)
		})
	}
}

func TestWrongSoftwareInstallation(t *testing.T) {
	t.Parallel()
	data := samples["1.1.0"]
	other := func(f func(*signing.Meta)) signing.Meta { m := meta("1.1.0"); f(&m); return m }
	for _, tc := range []struct {
		name   string
		signed signing.Meta
	}{
		{"signed as another program", other(func(m *signing.Meta) { m.Name = "LDAP" })},
		{"signed for another OS", other(func(m *signing.Meta) { m.OS = "windows" })},
		{"signed for another arch", other(func(m *signing.Meta) { m.Arch = "riscv64" })},
		{"signed as another version", other(func(m *signing.Meta) { m.Version = "9.9.9" })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			url := r.e.serve("a", data)
			// The descriptor claims AD 1.1.0 for this platform; the signature says otherwise.
			r.e.offer(r.e.job("j1", "1.1.0", artifact(url, data, meta("1.1.0"), r.k.sign(t, data, tc.signed)), 1))
			r.refused("j1", "METADATA")
		})
	}
}

// failed waits for the job's FAILED report and checks its code.
func (r *rig) failed(uuid, code string) sailpoint.JobReport {
	r.t.Helper()
	var rep sailpoint.JobReport
	r.waitFor(45*time.Second, "the job's FAILED report", func() bool {
		var ok bool
		rep, ok = r.e.reportOf(uuid)
		if ok && rep.State == sailpoint.JobFinished {
			r.t.Fatalf("job %s was installed; want it refused with %s", uuid, code)
		}
		return ok && rep.State == sailpoint.JobFailed
	})
	if !strings.HasPrefix(rep.UpdateMessage, code+":") {
		r.t.Errorf("updateMessage %q does not start with %s:", rep.UpdateMessage, code)
	}
	return rep
}

// binaryIs checks the managed agent's binary byte for byte.
func (r *rig) binaryIs(want []byte, what string) {
	r.t.Helper()
	got, err := os.ReadFile(r.host.Binary)
	if err != nil {
		r.t.Fatal(err)
	}
	if sum(got) != sum(want) {
		r.t.Errorf("the agent's binary changed: SHA-256 %s, want %s (%s)", sum(got), sum(want), what)
	}
}

// signedJob serves data as file and offers a job for it, validly signed
// as version v, with the server's allowDowngrade set as given.
func (r *rig) signedJob(id, file, v string, data []byte, seq int64, allowDowngrade bool) {
	r.t.Helper()
	url := r.e.serve(file, data)
	j := r.e.job(id, v, artifact(url, data, meta(v), r.k.sign(r.t, data, meta(v))), seq)
	j.AllowDowngrade = allowDowngrade
	r.e.offer(j)
}

// TestRollbackAttack: a compromised control plane offers a validly signed
// older release. The host decides: without artifacts.allow_downgrade it
// refuses before downloading anything, whatever the job says.
func TestRollbackAttack(t *testing.T) {
	t.Parallel()
	old := samples["0.9.0"]
	for _, tc := range []struct {
		name           string
		allowDowngrade bool // the job's, i.e. the server's word
	}{
		{"without allowDowngrade", false},
		{"with allowDowngrade", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil) // the default config: allow_downgrade = false
			r.signedJob("j1", "old", "0.9.0", old, 1, tc.allowDowngrade)
			rep := r.failed("j1", "DOWNGRADE_REFUSED")
			if tc.allowDowngrade && !strings.Contains(rep.UpdateMessage, "artifacts.allow_downgrade") {
				t.Errorf("updateMessage %q does not name the host's setting", rep.UpdateMessage)
			}
			r.binaryIs(samples["1.0.0"], "a refused downgrade")
			r.unchanged()
			if n := r.e.requests("old"); n != 0 {
				t.Errorf("the refused release was downloaded (%d requests)", n)
			}
		})
	}
}

// TestDowngradeAllowedByTheHost: with artifacts.allow_downgrade = true in
// the host's own config, a job that asks for the downgrade installs it.
func TestDowngradeAllowedByTheHost(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(o *e2e.HostOptions) { o.Artifacts = "allow_downgrade = true\n" })
	r.signedJob("j1", "old", "0.9.0", samples["0.9.0"], 1, true)
	r.installed("j1", "0.9.0")
	r.binaryIs(samples["0.9.0"], "an allowed downgrade")
	// The host's consent alone is not enough: the job must ask too.
	r.signedJob("j2", "older", "0.8.0", samples["1.0.0"], 2, false)
	r.failed("j2", "DOWNGRADE_REFUSED")
	r.binaryIs(samples["0.9.0"], "a downgrade the job did not ask for")
}

// TestRevertToThePreviousRelease: after a real update 1.0.0 -> 1.1.0, a job
// back to exactly the 1.0.0 binary the host ran before is allowed by
// default (artifacts.allow_revert), refused with allow_revert = false, and
// another validly signed build of 1.0.0 is refused.
func TestRevertToThePreviousRelease(t *testing.T) {
	t.Parallel()
	v100, v110 := samples["1.0.0"], samples["1.1.0"]
	// Another build of 1.0.0, signed by the pinned key: trailing bytes
	// after the executable leave it runnable, with another SHA-256.
	rebuilt := append(append([]byte{}, v100...), "another build"...)
	for _, tc := range []struct {
		name     string
		artifact string // "revert" to the 1.0.0 the host ran, or "rebuilt"
		mutate   func(*e2e.HostOptions)
		allowed  bool
	}{
		{"the same build, allow_revert by default", "revert", nil, true},
		{"the same build, allow_revert = false", "revert", func(o *e2e.HostOptions) { o.Artifacts = "allow_revert = false\n" }, false},
		{"another build of 1.0.0", "rebuilt", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.mutate)
			r.signedJob("j1", "new", "1.1.0", v110, 1, false)
			r.installed("j1", "1.1.0")
			data := v100
			if tc.artifact == "rebuilt" {
				data = rebuilt
			}
			r.signedJob("j2", "back", "1.0.0", data, 2, true)
			if tc.allowed {
				r.installed("j2", "1.0.0")
				r.binaryIs(v100, "the revert")
				return
			}
			r.failed("j2", "DOWNGRADE_REFUSED")
			r.binaryIs(v110, "a refused revert")
			if n := r.e.requests("back"); n != 0 {
				t.Errorf("the refused release was downloaded (%d requests)", n)
			}
			if v, err := r.host.InstalledVersion(context.Background()); err != nil || v != "1.1.0" {
				t.Errorf("installed %q, %v; want 1.1.0 still running", v, err)
			}
		})
	}
}

func TestEndlessData(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	data := samples["1.1.0"]
	url := r.e.serveFunc("endless", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		chunk := make([]byte, 64<<10)
		for i := 0; i < 4096; i++ { // 256 MiB at most, then give up
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	r.e.offer(r.e.job("j1", "1.1.0", artifact(url, data, meta("1.1.0"), r.k.sign(t, data, meta("1.1.0"))), 1))
	r.refused("j1", "TOO_LARGE", "SIZE")
}

func TestSlowRetrieval(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil) // artifacts.stall_timeout = 2s
	data := samples["1.1.0"]
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	url := r.e.serveFunc("slow", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.Write(data[:100])
		w.(http.Flusher).Flush()
		select { // then a trickle of nothing
		case <-release:
		case <-req.Context().Done():
		case <-time.After(time.Minute):
		}
	})
	r.e.offer(r.e.job("j1", "1.1.0", artifact(url, data, meta("1.1.0"), r.k.sign(t, data, meta("1.1.0"))), 1))
	r.refused("j1", "STALLED", "DOWNLOAD")
}

func TestMixAndMatch(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	good, other := samples["1.1.0"], samples["1.2.0"]
	// The descriptor and signature of 1.1.0, with the file of 1.2.0.
	url := r.e.serve("mixed", other)
	a := artifact(url, good, meta("1.1.0"), r.k.sign(t, good, meta("1.1.0")))
	r.e.offer(r.e.job("j1", "1.1.0", a, 1))
	r.refused("j1", "HASH", "SIZE")
	// And the descriptor rewritten to the other file's hash, keeping 1.1.0's signature.
	a.SHA256, a.Size = sum(other), int64(len(other))
	r.e.offer(r.e.job("j2", "1.1.0", a, 2))
	r.refused("j2", "SIGNATURE")
}

func TestMaliciousMirror(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	data := samples["1.1.0"]
	mirror := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Authorization") != "" {
			t.Errorf("the client secret was sent to another origin")
		}
		w.Write(data)
	}))
	defer mirror.Close()
	r.e.offer(r.e.job("j1", "1.1.0", artifact(mirror.URL+"/a", data, meta("1.1.0"), r.k.sign(t, data, meta("1.1.0"))), 1))
	r.refused("j1", "JOB_REFUSED")
}

func TestPathTraversal(t *testing.T) {
	t.Parallel()
	data := samples["1.1.0"]
	for _, tc := range []struct {
		name   string
		mutate func(j *sailpoint.Job)
	}{
		{"a managed process the host does not have", func(j *sailpoint.Job) {
			mp := j.ManagedProcessConfiguration["ad-agent"]
			j.ManagedProcessConfiguration = map[string]sailpoint.ManagedProcess{"sshd": mp}
		}},
		{"a .. name", func(j *sailpoint.Job) {
			mp := j.ManagedProcessConfiguration["ad-agent"]
			j.ManagedProcessConfiguration = map[string]sailpoint.ManagedProcess{"../../../usr/bin/sudo": mp}
		}},
		{"a path outside the install roots", func(j *sailpoint.Job) {
			mp := j.ManagedProcessConfiguration["ad-agent"]
			mp.Path = "../../../../etc/cron.d/evil"
			j.ManagedProcessConfiguration["ad-agent"] = mp
		}},
		{"a type that is not the agent's", func(j *sailpoint.Job) {
			mp := j.ManagedProcessConfiguration["ad-agent"]
			mp.Type = "LDAP"
			j.ManagedProcessConfiguration["ad-agent"] = mp
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			url := r.e.serve("a", data)
			j := r.e.job("j1", "1.1.0", artifact(url, data, meta("1.1.0"), r.k.sign(t, data, meta("1.1.0"))), 1)
			tc.mutate(&j)
			r.e.offer(j)
			r.refused("j1", "JOB_REFUSED")
		})
	}
}

func TestKeyRotationAndRevocation(t *testing.T) {
	t.Parallel()
	data := samples["1.1.0"]
	next, retired := newKey(t), newKey(t)
	t.Run("a second pinned key signs without reinstalling agents", func(t *testing.T) {
		r := newRig(t, func(o *e2e.HostOptions) { o.MoreTrustedKeys = []string{next.pub.String()} })
		url := r.e.serve("a", data)
		r.e.offer(r.e.job("j1", "1.1.0", artifact(url, data, meta("1.1.0"), next.sign(t, data, meta("1.1.0"))), 1))
		r.installed("j1", "1.1.0")
	})
	t.Run("a revoked key is refused though still pinned", func(t *testing.T) {
		r := newRig(t, func(o *e2e.HostOptions) {
			o.MoreTrustedKeys = []string{retired.pub.String()}
			o.RevokedKeyIDs = []string{signing.FormatKeyID(retired.pub.ID())}
		})
		url := r.e.serve("a", data)
		r.e.offer(r.e.job("j1", "1.1.0", artifact(url, data, meta("1.1.0"), retired.sign(t, data, meta("1.1.0"))), 1))
		r.refused("j1", "SIGNATURE")
	})
}

func TestFreezeAndReplay(t *testing.T) {
	t.Parallel()
	data := samples["1.1.0"]
	t.Run("an expired job is ignored", func(t *testing.T) {
		r := newRig(t, nil)
		url := r.e.serve("a", data)
		j := r.e.job("j1", "1.1.0", artifact(url, data, meta("1.1.0"), r.k.sign(t, data, meta("1.1.0"))), 1)
		j.ExpiresAt = time.Now().Add(-time.Hour)
		r.e.offer(j)
		start := r.e.heartbeats()
		r.waitFor(20*time.Second, "five more heartbeats", func() bool { return r.e.heartbeats() >= start+5 })
		if rep, ok := r.e.reportOf("j1"); ok {
			t.Errorf("an expired job was acted on: %+v", rep)
		}
		r.unchanged()
	})
	t.Run("a replayed job with a lower sequence is ignored", func(t *testing.T) {
		r := newRig(t, nil)
		url := r.e.serve("a", data)
		a := artifact(url, data, meta("1.1.0"), r.k.sign(t, data, meta("1.1.0")))
		r.e.offer(r.e.job("j-new", "1.1.0", a, 50))
		r.installed("j-new", "1.1.0")
		// An old reply replayed: a job of the same update with a lower sequence.
		old := samples["1.0.0"]
		url = r.e.serve("old", old)
		j := r.e.job("j-old", "1.0.0", artifact(url, old, meta("1.0.0"), r.k.sign(t, old, meta("1.0.0"))), 7)
		j.AllowDowngrade = true
		r.e.offer(j)
		start := r.e.heartbeats()
		r.waitFor(20*time.Second, "five more heartbeats", func() bool { return r.e.heartbeats() >= start+5 })
		if rep, ok := r.e.reportOf("j-old"); ok && rep.State != sailpoint.JobPending {
			t.Errorf("a replayed job was acted on: %+v", rep)
		}
		if v, _ := r.host.InstalledVersion(context.Background()); v != "1.1.0" {
			t.Errorf("installed %s after the replay", v)
		}
	})
}

func TestClockSkewWindowsFollowTheServer(t *testing.T) {
	t.Parallel()
	data := samples["1.1.0"]
	for _, skew := range []time.Duration{time.Hour, -time.Hour} {
		t.Run(fmt.Sprint("server clock ", skew), func(t *testing.T) {
			r := newSkewedRig(t, skew, nil)
			url := r.e.serve("a", data)
			// Closed by the server's clock (opens in 30 min), though by the
			// agent's own clock it would be open (skew ±1 h).
			j := r.e.job("j1", "1.1.0", artifact(url, data, meta("1.1.0"), r.k.sign(t, data, meta("1.1.0"))), 1)
			j.Maintenance = r.e.window(30*time.Minute, 90*time.Minute)
			r.e.offer(j)
			start := r.e.heartbeats()
			r.waitFor(20*time.Second, "five more heartbeats", func() bool { return r.e.heartbeats() >= start+5 })
			r.unchanged()
			// Open by the server's clock: it installs.
			j = r.e.job("j2", "1.1.0", *j.ManagedProcessConfiguration["ad-agent"].Artifact, 2)
			r.e.offer(j)
			r.installed("j2", "1.1.0")
		})
	}
}
