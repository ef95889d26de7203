package security_test

// Rollout safety on the host, against a real poolagent process driven by
// the scripted control plane of attacks_test.go: prechecks leave the host
// untouched, the splay follows the server's clock, the download rate limit
// holds, a failing release's diagnostics reach the server, and a full disk
// and a server's cancel carry their codes.

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/internal/e2e"
)

// countingServe publishes data at /files/name and counts the requests for
// it, remembering when the first one arrived.
func (r *rig) countingServe(name string, data []byte) (url string, hits *atomic.Int32, first func() time.Time) {
	hits = &atomic.Int32{}
	var mu sync.Mutex
	var at time.Time
	url = r.e.serveFunc(name, func(w http.ResponseWriter, req *http.Request) {
		if hits.Add(1) == 1 {
			mu.Lock()
			at = time.Now()
			mu.Unlock()
		}
		http.ServeContent(w, req, name, time.Now(), strings.NewReader(string(data)))
	})
	return url, hits, func() time.Time { mu.Lock(); defer mu.Unlock(); return at }
}

// untouched checks a failed precheck's promise: nothing downloaded and the
// managed agent never stopped (started once, by poolagent's own start).
func (r *rig) untouched(hits *atomic.Int32) {
	r.t.Helper()
	if n := hits.Load(); n != 0 {
		r.t.Errorf("the artifact was requested %d times after a failed precheck", n)
	}
	if n := strings.Count(r.host.LogTail(1<<20), "supervised process started"); n != 1 {
		r.t.Errorf("the managed agent was started %d times; a failed precheck must not stop it", n)
	}
	r.unchanged()
}

func TestPrechecksLeaveTheHostUntouched(t *testing.T) {
	t.Parallel()
	data := samples["1.1.0"]
	for _, tc := range []struct {
		name string
		pc   sailpoint.Precheck
		code string
	}{
		{"the installed version is not the one the server planned from", sailpoint.Precheck{FromVersion: "0.9.0"}, "PRECHECK_VERSION"},
		{"poolagent older than the job requires", sailpoint.Precheck{MinPoolagentVersion: "5.0.0"}, "PRECHECK_AGENT"},
		{"more free space than any disk has", sailpoint.Precheck{FreeBytes: 1 << 60, FromVersion: "1.0.0"}, "PRECHECK_DISK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			url, hits, _ := r.countingServe("a", data)
			j := r.e.job("j1", "1.1.0", artifact(url, data, meta("1.1.0"), r.k.sign(t, data, meta("1.1.0"))), 1)
			pc := tc.pc
			j.Precheck = &pc
			r.e.offer(j)
			r.refused("j1", tc.code)
			r.untouched(hits)
		})
	}
	t.Run("all prechecks pass", func(t *testing.T) {
		r := newRig(t, nil)
		url, _, _ := r.countingServe("a", data)
		j := r.e.job("j1", "1.1.0", artifact(url, data, meta("1.1.0"), r.k.sign(t, data, meta("1.1.0"))), 1)
		j.Precheck = &sailpoint.Precheck{FromVersion: "1.0.0", MinPoolagentVersion: "0.9.0"}
		r.e.offer(j)
		r.installed("j1", "1.1.0")
	})
}

// mountTmpfs mounts a tmpfs of size at a new directory, or skips the test
// where mounting is not permitted (not root, no CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("this test needs to mount a tmpfs (root with CAP_SYS_ADMIN): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// TestPrecheckDiskOnASmallStateDir: the state dir is a tmpfs smaller than
// twice the artifact plus the margin; the job's precheck (without
// freeBytes: the host's own formula) fails with PRECHECK_DISK.
func TestPrecheckDiskOnASmallStateDir(t *testing.T) {
	t.Parallel()
	state := mountTmpfs(t, "12m")
	data := samples["1.1.0"]
	r := newRig(t, func(o *e2e.HostOptions) { o.StateDir = state })
	url, hits, _ := r.countingServe("a", data)
	j := r.e.job("j1", "1.1.0", artifact(url, data, meta("1.1.0"), r.k.sign(t, data, meta("1.1.0"))), 1)
	j.Precheck = &sailpoint.Precheck{}
	r.e.offer(j)
	r.refused("j1", "PRECHECK_DISK")
	rep, _ := r.e.reportOf("j1")
	if !strings.Contains(rep.UpdateMessage, state) || !strings.Contains(rep.UpdateMessage, "MiB") {
		t.Errorf("the message %q does not name the state dir and the sizes", rep.UpdateMessage)
	}
	r.untouched(hits)
}

// TestDiskFullDuringDownload: no precheck, a state dir too small for the
// artifact: the download fails with DISK_FULL, the old binary stays.
func TestDiskFullDuringDownload(t *testing.T) {
	t.Parallel()
	state := mountTmpfs(t, "2m")
	data := samples["1.1.0"]
	r := newRig(t, func(o *e2e.HostOptions) { o.StateDir = state })
	url := r.e.serve("a", data)
	r.e.offer(r.e.job("j1", "1.1.0", artifact(url, data, meta("1.1.0"), r.k.sign(t, data, meta("1.1.0"))), 1))
	r.refused("j1", "DISK_FULL")
}

// TestSplayFollowsTheServersClock: the server's clock is an hour ahead,
// so by the host's own clock the start time passed long ago. The job
// stays PENDING in phase splay and nothing is requested before the start
// time by the server's clock.
func TestSplayFollowsTheServersClock(t *testing.T) {
	t.Parallel()
	const skew = time.Hour
	r := newSkewedRig(t, skew, nil)
	data := samples["1.1.0"]
	url, _, first := r.countingServe("a", data)
	j := r.e.job("j1", "1.1.0", artifact(url, data, meta("1.1.0"), r.k.sign(t, data, meta("1.1.0"))), 1)
	startAfter := time.Now().Add(skew + 5*time.Second).UTC().Truncate(time.Second)
	j.StartAfter = startAfter.Format(time.RFC3339)
	r.e.offer(j)
	r.waitFor(20*time.Second, "a PENDING report in phase splay", func() bool {
		rep, ok := r.e.reportOf("j1")
		return ok && rep.State == sailpoint.JobPending && rep.Phase == "splay"
	})
	r.installed("j1", "1.1.0")
	if at := first().Add(skew); at.Before(startAfter) {
		t.Errorf("the download started at %s by the server's clock, before startAfter %s", at.Format(time.RFC3339Nano), j.StartAfter)
	}
}

// TestDownloadRateLimit: the artifact at a quarter of its size per second
// cannot arrive in less than about 3.75 s; 2.5 s is a generous bound. The
// window is closed, so the host downloads early and then waits: the
// download's end is when its status says "waiting".
func TestDownloadRateLimit(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	data := samples["1.1.0"]
	url, _, first := r.countingServe("a", data)
	j := r.e.job("j1", "1.1.0", artifact(url, data, meta("1.1.0"), r.k.sign(t, data, meta("1.1.0"))), 1)
	j.Maintenance = r.e.window(time.Hour, 2*time.Hour)
	j.DownloadRateLimit = int64(len(data)) / 4
	r.e.offer(j)
	var done time.Time
	r.waitFor(60*time.Second, "the early download", func() bool {
		st, err := r.host.Status(context.Background())
		if err != nil {
			return false
		}
		for _, js := range st.Jobs {
			if js.UUID == "j1" && js.Phase == "waiting" {
				done = time.Now()
				return true
			}
		}
		return false
	})
	if el := done.Sub(first()); first().IsZero() || el < 2500*time.Millisecond {
		t.Errorf("%d bytes at %d bytes/s arrived in %s; want at least 2.5 s", len(data), j.DownloadRateLimit, el)
	}
	r.unchanged()
}

var (
	badOnce sync.Once
	badBin  []byte
	badErr  error
)

// badRelease is sample agent 1.3.0 whose health check answers 503.
func badRelease(t *testing.T) []byte {
	badOnce.Do(func() {
		var p string
		if p, badErr = bins.BuildSample(context.Background(), "1.3.0", false); badErr == nil {
			badBin, badErr = os.ReadFile(p)
		}
	})
	if badErr != nil {
		t.Fatal(badErr)
	}
	return badBin
}

// TestDiagnosticsOfAFailingRelease: a release that starts but fails its
// health check is rolled back; the FAILED report carries what it printed
// and the health check's last result, and `poolagent status` shows them.
func TestDiagnosticsOfAFailingRelease(t *testing.T) {
	t.Parallel()
	data := badRelease(t)
	r := newRig(t, nil)
	url := r.e.serve("bad", data)
	r.e.offer(r.e.job("j1", "1.3.0", artifact(url, data, meta("1.3.0"), r.k.sign(t, data, meta("1.3.0"))), 1))
	r.refused("j1", "HEALTH_CHECK")
	rep, _ := r.e.reportOf("j1")
	d := rep.Diagnostics
	if d == nil {
		t.Fatalf("the FAILED report has no diagnostics: %+v", rep)
	}
	if !strings.Contains(d.Output, "version 1.3.0 listening") || strings.Contains(d.Output, "version 1.0.0 listening") {
		t.Errorf("diagnostics output is not the failed version's:\n%s", d.Output)
	}
	if len(d.Output) > sailpoint.MaxDiagnosticsOutput {
		t.Errorf("diagnostics output is %d bytes, over %d", len(d.Output), sailpoint.MaxDiagnosticsOutput)
	}
	if !strings.Contains(d.Health, "503") {
		t.Errorf("diagnostics health %q does not carry the health check's answer", d.Health)
	}

	ctx := context.Background()
	out, err := exec.CommandContext(ctx, r.host.AgentBin, "status", "--config", r.host.Config, "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Jobs []struct {
			UUID        string                 `json:"uuid"`
			Diagnostics *sailpoint.Diagnostics `json:"diagnostics"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, j := range st.Jobs {
		found = found || j.UUID == "j1" && j.Diagnostics != nil && j.Diagnostics.Output == d.Output && j.Diagnostics.Health == d.Health
	}
	if !found {
		t.Errorf("status --json lacks j1's full diagnostics:\n%s", out)
	}
	text, err := exec.CommandContext(ctx, r.host.AgentBin, "status", "--config", r.host.Config).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "diagnostics of j1") || !strings.Contains(string(text), "version 1.3.0 listening") {
		t.Errorf("status does not show the diagnostics:\n%s", text)
	}
}

// TestCancelledByServer: a job the server takes back before its swap is
// reported CANCELLED with CANCELLED_BY_SERVER.
func TestCancelledByServer(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	data := samples["1.1.0"]
	url := r.e.serve("a", data)
	a := artifact(url, data, meta("1.1.0"), r.k.sign(t, data, meta("1.1.0")))
	j := r.e.job("j1", "1.1.0", a, 1)
	j.Maintenance = r.e.window(time.Hour, 2*time.Hour) // closed: it waits
	r.e.offer(j)
	r.waitFor(20*time.Second, "j1 held by the host", func() bool { _, ok := r.e.reportOf("j1"); return ok })
	j2 := r.e.job("j2", "1.1.0", a, 2)
	j2.Maintenance = j.Maintenance
	r.e.offer(j2) // j1 is answered CANCELLED from now on
	r.waitFor(20*time.Second, "j1 CANCELLED", func() bool {
		rep, ok := r.e.reportOf("j1")
		return ok && rep.State == sailpoint.JobCancelled
	})
	if rep, _ := r.e.reportOf("j1"); !strings.HasPrefix(rep.UpdateMessage, "CANCELLED_BY_SERVER: ") {
		t.Errorf("updateMessage %q; want CANCELLED_BY_SERVER", rep.UpdateMessage)
	}
	r.unchanged()
}
