// Package dashboard_test drives poolserver's dashboard (/ui/) in a real
// headless Chromium against an in-process poolserver with simulated hosts
// heartbeating over HTTP: sign in, create an update, watch it roll out,
// pause and resume it from the keyboard, see the API's errors, and keep a
// screenshot in test/e2e/artifacts/ (a CI artifact, ignored by git).
//
// Without Chromium the test is skipped, except in CI (CI=true), where it
// fails: .ci/run installs the chromium package.
package dashboard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/controlplane/store/sqlite"
)

// artifacts is where the screenshots go, relative to this package.
const artifacts = "../artifacts"

// wait is the deadline for one state to show on the page: generous, since
// the test moves on as soon as the state is there.
const wait = 45 * time.Second

func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed: the dashboard's browser test needs it in CI (.ci/run installs the chromium package)")
	}
	t.Skip("chromium is not installed: skipping the dashboard's browser test (apt-get install chromium to run it)")
	return ""
}

// server is an in-process poolserver on 127.0.0.1 with the rollout engine
// running, an AD pool, a published 1.1.0 and two tokens.
type server struct {
	url, pool     string
	manage, read  string
	st            store.Store
	client        http.Client
	stop          func()
	releasedHosts chan struct{} // closed: hosts finish their jobs
}

func startServer(t *testing.T) *server {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := controlplane.DefaultConfig()
	cfg.DataDir = dir
	cfg.Heartbeat.RateLimit = 100000 // hosts beat every 100 ms
	cfg.Heartbeat.FlushInterval = controlplane.Duration{Duration: 500 * time.Millisecond}
	cfg.Rollout.Tick = controlplane.Duration{Duration: 200 * time.Millisecond}
	cfg.ShutdownTimeout = controlplane.Duration{Duration: 5 * time.Second}
	now := time.Now()
	// Its own transport, so stop can close the connections it keeps.
	s := &server{st: st, releasedHosts: make(chan struct{}),
		client: http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}}
	s.manage, _, err = controlplane.CreateToken(ctx, st, "dashboard", []store.Scope{store.ScopeManage}, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	s.read, _, _ = controlplane.CreateToken(ctx, st, "test", []store.Scope{store.ScopeRead}, 0, now)
	pool := &store.Pool{ID: store.NewID("pol"), Name: "AD connectors", Type: okta.AgentTypeAD, CreatedAt: now}
	if err := st.CreatePool(ctx, pool); err != nil {
		t.Fatal(err)
	}
	s.pool = pool.ID
	file, sig := filepath.Join(dir, "ad-agent"), filepath.Join(dir, "ad-agent.minisig")
	os.WriteFile(file, []byte("#!/bin/sh\necho 1.1.0\n"), 0o755)
	os.WriteFile(sig, []byte("untrusted comment: signature\nRUQ...\ntrusted comment: name=AD version=1.1.0\nsig\n"), 0o644)
	if _, err := controlplane.PublishRelease(ctx, st, dir, controlplane.Publish{Name: "AD", Version: "1.1.0", OS: "linux", Arch: "amd64",
		Channel: okta.ChannelGA, File: file, SignatureFile: sig}, now); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.url = "http://" + l.Addr().String()
	srv := controlplane.New(cfg, st, nil)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, l) }()
	s.stop = func() {
		// A heartbeat cancelled while its connection was being dialed
		// leaves that connection in the client's pool, never used: the
		// server counts a connection that has not sent its first request
		// as in flight for 5 s (net/http's grace for new connections), as
		// long as this shutdown_timeout, and the drain would fail. The
		// hosts have stopped: close what the client keeps.
		s.client.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		st.Close()
	}
	return s
}

// updateStatus reads an update's status through the API, not the page.
func (s *server) updateStatus(t *testing.T, id string) okta.AgentUpdateJobStatus {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url+"/api/v1/agentPools/"+s.pool+"/updates/"+id, nil)
	req.Header.Set("Authorization", "SSWS "+s.read)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var u okta.AgentPoolUpdate
	if err := json.NewDecoder(resp.Body).Decode(&u); err != nil {
		t.Fatalf("GET update %s: %d %v", id, resp.StatusCode, err)
	}
	return u.Status
}

// simHost is a host that heartbeats every 100 ms and obeys its jobs: a new
// job runs at once and finishes once the server's releasedHosts is closed.
type simHost struct {
	id, secret, name, version string
	jobs                      map[string]sailpoint.JobReport
	target                    map[string]string // job -> version it installs
}

func (s *server) addHost(t *testing.T, ctx context.Context, wg *sync.WaitGroup, name string) {
	t.Helper()
	secret, c, err := controlplane.CreateClient(context.Background(), s.st, s.pool, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	h := &simHost{id: c.ID, secret: secret, name: name, version: "1.0.0", jobs: map[string]sailpoint.JobReport{}, target: map[string]string{}}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if err := s.beat(ctx, h); err != nil && ctx.Err() == nil {
				t.Errorf("host %s: %v", name, err)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}

func (s *server) beat(ctx context.Context, h *simHost) error {
	released := false
	select {
	case <-s.releasedHosts:
		released = true
	default:
	}
	for id, j := range h.jobs {
		if j.State == sailpoint.JobRunning && released {
			h.version = h.target[id]
			h.jobs[id] = sailpoint.JobReport{UUID: id, State: sailpoint.JobFinished, Progress: 100}
		}
	}
	req := sailpoint.StatusRequest{Status: sailpoint.StatusNormal, Timestamp: time.Now().UTC().Format("2006-01-02T15:04:05.000000Z07:00"),
		Body: sailpoint.ClientBody{Hostname: sailpoint.Flex(h.name), OS: "linux", Arch: "amd64", InternalIP: "127.0.0.1",
			Agents: []sailpoint.AgentReport{{Name: "ad-agent", Type: "AD", Version: h.version}}}}
	for _, j := range h.jobs {
		req.Body.Jobs = append(req.Body.Jobs, j)
	}
	for id, j := range h.jobs {
		if j.State == sailpoint.JobCancelled {
			delete(h.jobs, id) // reported once
		}
	}
	body, _ := json.Marshal(req)
	hr, err := http.NewRequestWithContext(ctx, "POST", s.url+"/beta/managed-clients/"+h.id+"/status", bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Authorization", "Bearer "+h.secret)
	hr.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(hr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("heartbeat: HTTP %d", resp.StatusCode)
	}
	var rep sailpoint.StatusReply
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return err
	}
	for _, j := range rep.Body.Jobs {
		switch {
		case j.State == sailpoint.JobCancelled:
			if _, ok := h.jobs[j.UUID]; ok && h.jobs[j.UUID].State != sailpoint.JobFinished {
				h.jobs[j.UUID] = sailpoint.JobReport{UUID: j.UUID, State: sailpoint.JobCancelled, UpdateStatus: "Cancelled", UpdateMessage: "cancelled by the server"}
			}
		case j.State == sailpoint.JobPending:
			if _, ok := h.jobs[j.UUID]; !ok {
				h.target[j.UUID] = j.ManagedProcessConfiguration["ad-agent"].Version
				h.jobs[j.UUID] = sailpoint.JobReport{UUID: j.UUID, State: sailpoint.JobRunning, Progress: 50, Phase: "download"}
			}
		}
	}
	return nil
}

func TestDashboardInChromium(t *testing.T) {
	exe := chromium(t)
	os.Remove(filepath.Join(artifacts, "dashboard-failure.png")) // from an earlier run
	s := startServer(t)
	hctx, stopHosts := context.WithCancel(context.Background())
	var hosts sync.WaitGroup
	for _, n := range []string{"dc1.example.com", "dc2.example.com", "dc3.example.com"} {
		s.addHost(t, hctx, &hosts, n)
	}
	defer func() { stopHosts(); hosts.Wait(); s.stop() }()

	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"), // nothing beyond 127.0.0.1
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	)
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(actx)
	defer cancelTab()
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute) // a hung browser, not a threshold
	defer cancelTimeout()

	// Console errors: uncaught exceptions and CSP refusals fail the test.
	var consoleMu sync.Mutex
	var problems []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") || (m.Type == chromedp.ConsoleError && m.Source != "network") {
				consoleMu.Lock()
				problems = append(problems, fmt.Sprintf("%s %s:%d %s", m.Type, m.URL, m.Line+1, m.Text))
				consoleMu.Unlock()
			}
		}
	}()

	failed := func(what string, err error) {
		t.Helper()
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		if png, serr := chromedp.Run(ctx, chromedp.FullScreenshot(100)); serr == nil {
			saveArtifact(t, "dashboard-failure.png", png)
		}
		t.Fatalf("%s: %v\npage text:\n%s", what, err, text)
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			failed(what, err)
		}
	}
	until := func(what, js string) {
		t.Helper()
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(wait)))
		if err != nil {
			failed("waiting for "+what, err)
		}
	}
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			failed("evaluate "+js, err)
		}
		return v
	}

	// Sign in: a wrong token shows Okta's error; the right one, typed and
	// submitted from the keyboard, is kept in sessionStorage only.
	do("open the dashboard", chromedp.Navigate(s.url+"/ui/"), chromedp.WaitVisible(chromedp.ID("token")))
	do("sign in with a bad token", chromedp.SendKeys(chromedp.ID("token"), "00not-a-token\r"))
	until("the sign-in error", `!document.getElementById("error").hidden && document.getElementById("error").innerText.includes("Invalid token provided") && document.getElementById("error").innerText.includes("E0000011")`)
	do("sign in", clear("token"), chromedp.SendKeys(chromedp.ID("token"), s.manage+"\r"))
	until("the pool and its three operational agents", `document.querySelector('#pools tbody tr[data-id="`+s.pool+`"]') &&
		[...document.querySelectorAll('#agents tbody tr[data-id]')].filter(r => r.innerText.includes("OPERATIONAL") && r.innerText.includes("1.0.0")).length === 3`)
	if got := eval(`sessionStorage.getItem("poolserver.token") === "` + s.manage + `" && localStorage.length === 0 && document.cookie === "" ? "ok" : "leak"`); got != "ok" {
		t.Errorf("token storage: %s", got)
	}

	// Search by host name.
	do("search", chromedp.SendKeys(chromedp.ID("f-search"), "dc2"))
	until("one agent matching dc2", `document.querySelectorAll('#agents tbody tr[data-id]').length === 1 && document.querySelector('#agents tbody th').innerText === "dc2.example.com"`)
	do("clear the search", clear("f-search"))

	// Show the pool's updates and create one: first with a bad time zone
	// (the API's errorSummary and errorCauses show), then a good one.
	do("show updates", chromedp.Click(chromedp.CSS(`#pools tbody tr[data-id="`+s.pool+`"] button`)))
	until("the updates section", `!document.getElementById("updates-section").hidden && document.getElementById("settings").innerText.includes("Latest version 1.1.0")`)
	// The pool's compliance: three hosts on 1.0.0, below the latest 1.1.0.
	until("the compliance section: three hosts outdated", `(() => { const c = document.getElementById("compliance-section");
		return !c.hidden && c.querySelector('li[data-state="outdated"] strong')?.innerText === "3" && c.querySelector('li[data-state="latest"] strong').innerText === "0" &&
			document.getElementById("compliance-versions").innerText.includes("Latest version 1.1.0") &&
			[...c.querySelectorAll("tbody tr[data-id]")].filter(r => r.innerText.includes("1.0.0") && r.querySelector(".compliance-states").innerText === "Outdated").length === 3; })()`)
	do("fill the create form",
		chromedp.Click(chromedp.CSS(`#create summary`)),
		chromedp.SendKeys(chromedp.ID("c-version"), "1.1.0"),
		chromedp.SendKeys(chromedp.ID("c-name"), "AD 1.1.0"),
		chromedp.SendKeys(chromedp.ID("c-cron"), "0 2 * * 2#1"),
		chromedp.SendKeys(chromedp.ID("c-tz"), "Mars/Olympus"),
		chromedp.Click(chromedp.CSS(`#create-form button[type=submit]`)))
	until("the validation error", `(() => { const e = document.getElementById("error"); return !e.hidden && e.innerText.includes("Api validation failed: agentPoolUpdate") &&
		e.innerText.includes("E0000001") && [...e.querySelectorAll("li")].some(li => li.innerText.includes('unknown IANA time zone "Mars/Olympus"')); })()`)
	do("create an update that starts now",
		clear("c-cron"), clear("c-tz"),
		chromedp.Click(chromedp.CSS(`#create-form button[type=submit]`)))
	until("the update running on one host (maxUnavailable 1)", `(() => { const a = document.querySelector('#updates article[data-status="InProgress"]');
		return a && document.getElementById("error").hidden && a.querySelector('li[data-count="InProgress"] strong').innerText === "1" &&
			a.querySelector('li[data-count="Scheduled"] strong').innerText === "2" && a.querySelector(".next-window").innerText.includes("always open"); })()`)
	until("the compliance section: one host updating, two outdated", `(() => { const c = document.getElementById("compliance-section");
		return c.querySelector('li[data-state="updating"] strong').innerText === "1" && c.querySelector('li[data-state="outdated"] strong').innerText === "2" &&
			[...c.querySelectorAll("tbody .compliance-states")].filter(td => td.innerText === "Updating").length === 1; })()`)
	id := eval(`document.querySelector("#updates article").dataset.id`)

	// Pause and resume from the keyboard: Enter on Pause; focus lands on
	// Resume; Enter again.
	do("pause with the keyboard", chromedp.Focus(chromedp.CSS(`#updates article button[data-action="pause"]`)), chromedp.KeyEvent("\r"))
	until("Paused on the page, and focus on Resume", `document.querySelector('#updates article[data-status="Paused"] .status')?.innerText.includes("Paused") &&
		document.activeElement && document.activeElement.dataset.action === "resume"`)
	if st := s.updateStatus(t, id); st != okta.JobPaused {
		t.Fatalf("after Pause on the page the API says %s", st)
	}
	do("resume with the keyboard", chromedp.KeyEvent("\r"))
	until("InProgress again", `document.querySelector('#updates article[data-status="InProgress"] button[data-action="pause"]') !== null`)
	if st := s.updateStatus(t, id); st != okta.JobInProgress {
		t.Fatalf("after Resume on the page the API says %s", st)
	}

	// Let the hosts finish: the page follows the rollout to Success.
	close(s.releasedHosts)
	until("the rollout's Success", `(() => { const a = document.querySelector('#updates article[data-status="Success"]');
		return a && a.querySelector('li[data-count="Success"] strong').innerText === "3" && a.querySelector(".progress-text").innerText === "3 of 3 agents Success" &&
			a.querySelectorAll(".actions button").length === 0; })()`)
	until("the compliance section: all three hosts on the latest version", `(() => { const c = document.getElementById("compliance-section");
		return c.querySelector('li[data-state="latest"] strong')?.innerText === "3" && c.querySelector('li[data-state="outdated"] strong').innerText === "0" &&
			c.querySelector('li[data-state="updating"] strong').innerText === "0" && document.getElementById("compliance-note").innerText === "All 3 agents are compliant." &&
			c.querySelectorAll("tbody tr[data-id]").length === 0; })()`)
	until("every agent at 1.1.0, the latest GA", `[...document.querySelectorAll('#agents tbody tr[data-id]')].filter(r => r.innerText.includes("1.1.0") && r.cells[5].innerText === "yes").length === 3`)
	do("open the per-agent list", chromedp.Click(chromedp.CSS(`#updates article details summary`)))
	until("three agents Success in the per-agent list", `[...document.querySelectorAll('#updates article details tbody tr')].filter(r => r.querySelector(".update-status").innerText === "Success").length === 3`)
	until("each host's own progress bar full", `[...document.querySelectorAll('#updates article details tbody tr .agent-progress')].filter(c => c.querySelector("progress")?.value === 100 && c.innerText.includes("100%")).length === 3`)
	// The per-agent list is fetched filtered and paged (agentStatus, limit):
	// no agent failed, and the counts label the filter's choices.
	eval(`(() => { const s = document.querySelector('#updates article[data-status="Success"] details select');
		s.value = "Failed"; s.dispatchEvent(new Event("change")); return s.value; })()`)
	until("no agent Failed", `document.querySelector('#updates article[data-status="Success"] details tbody')?.innerText.includes("No agent Failed.") &&
		document.querySelector('#updates article[data-status="Success"] details select option[value="Success"]').innerText === "Success (3)"`)
	if st := s.updateStatus(t, id); st != okta.JobSuccess {
		t.Errorf("API status at the end: %s", st)
	}
	// A scheduled update shows its schedule and next window (the
	// nextWindow extension) until an operator stops it.
	do("create a scheduled update",
		chromedp.SendKeys(chromedp.ID("c-name"), "Patch Tuesday"),
		chromedp.SendKeys(chromedp.ID("c-cron"), "0 2 * * 2#1"),
		chromedp.SendKeys(chromedp.ID("c-tz"), "Europe/Berlin"),
		chromedp.SendKeys(chromedp.ID("c-duration"), "90"),
		chromedp.Click(chromedp.CSS(`#create-form button[type=submit]`)))
	until("the scheduled update with its next window", `(() => { const a = document.querySelector('#updates article[data-status="Scheduled"]');
		return a && a.innerText.includes("cron 0 2 * * 2#1, Europe/Berlin, 90 min window") && a.querySelectorAll(".next-window time").length === 2; })()`)
	do("stop it", chromedp.Click(chromedp.CSS(`#updates article[data-status="Scheduled"] button[data-action="stop"]`)))
	until("Cancelled, with Retry offered", `(() => { const a = document.querySelector('#updates article[data-status="Cancelled"]');
		return a && a.querySelector(".status").innerText.includes("Cancelled") && a.querySelector('button[data-action="retry"]') !== null &&
			a.querySelector(".next-window").innerText === "none pending"; })()`)
	// A schedule in each host's zone lists the zones' windows; these hosts
	// report none: UTC. A year's delay keeps the window closed.
	do("create a host-zoned update",
		clear("c-name"), chromedp.SendKeys(chromedp.ID("c-name"), "Local night"),
		clear("c-cron"), chromedp.SendKeys(chromedp.ID("c-cron"), "0 2 * * 2#1"),
		clear("c-tz"), chromedp.SendKeys(chromedp.ID("c-tz"), "host"),
		clear("c-duration"), chromedp.SendKeys(chromedp.ID("c-duration"), "60"),
		clear("c-delay"), chromedp.SendKeys(chromedp.ID("c-delay"), "365"),
		chromedp.Click(chromedp.CSS(`#create-form button[type=submit]`)))
	until("the host-zoned update with each zone's window", `(() => { const a = [...document.querySelectorAll('#updates article[data-status="Scheduled"]')].find(x => x.innerText.includes("Local night"));
		return a && a.innerText.includes("each host's local time") && a.querySelector('.zone-windows li[data-zone="UTC"]')?.innerText.includes("3 hosts to update"); })()`)
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		failed("screenshot", err)
	}
	saveArtifact(t, "dashboard.png", png)

	// A narrow window: nothing wider than the viewport but the tables'
	// own scroll boxes.
	do("narrow viewport", chromedp.EmulateViewport(360, 800))
	until("no horizontal page scroll at 360 px", `document.documentElement.scrollWidth <= window.innerWidth`)
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		saveArtifact(t, "dashboard-narrow.png", png)
	}

	// Sign out forgets the token.
	do("sign out", chromedp.EmulateViewport(1280, 1000), chromedp.Click(chromedp.ID("signout")))
	if got := eval(`(sessionStorage.getItem("poolserver.token") === null && !document.getElementById("signin").hidden) ? "ok" : "still signed in"`); got != "ok" {
		t.Errorf("sign out: %s", got)
	}
	consoleMu.Lock()
	defer consoleMu.Unlock()
	if len(problems) > 0 {
		t.Errorf("browser console:\n%s", strings.Join(problems, "\n"))
	}
}

// clear empties a form field as a user would, firing its input event.
func clear(id string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](`(() => { const f = document.getElementById("` + id + `"); f.value = ""; f.dispatchEvent(new Event("input", {bubbles: true})); })()`)
}

func saveArtifact(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Errorf("artifacts: %v", err)
		return
	}
	p := filepath.Join(artifacts, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Errorf("write %s: %v", p, err)
		return
	}
	abs, _ := filepath.Abs(p)
	t.Logf("screenshot: %s", abs)
}
