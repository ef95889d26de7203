package agent

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/poolagent/poolagent/agent/config"
	"github.com/poolagent/poolagent/agent/state"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/internal/version"
	"github.com/poolagent/poolagent/platform/process"
	"github.com/poolagent/poolagent/signing"
	"github.com/poolagent/poolagent/updater"
)

// diskFullWant: ENOSPC is a disk-full error on Unix only.
func diskFullWant() string {
	if runtime.GOOS == "windows" {
		return "DOWNLOAD: "
	}
	return "DISK_FULL: "
}

func testDaemon(t *testing.T) *Daemon {
	t.Helper()
	pub, _, err := signing.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.StateDir = t.TempDir()
	upd, err := updater.New(updater.Config{StateDir: cfg.StateDir, TrustedKeys: []string{pub.String()}})
	if err != nil {
		t.Fatal(err)
	}
	return &Daemon{cfg: cfg, upd: upd, log: zap.NewNop(), st: &state.State{Agents: map[string]*state.Agent{}},
		windows: map[string]window{}, runs: map[string]*jobRun{}, wake: make(chan struct{}), beatNow: make(chan struct{}, 1)}
}

func TestPrecheck(t *testing.T) {
	const size = 100 << 20
	dev := version.String() == "dev"
	binDir := filepath.Join(t.TempDir(), "opt")
	for _, tc := range []struct {
		name     string
		pc       *sailpoint.Precheck
		free     map[string]uint64 // by dir; "state" and "bin"
		installd string
		code     string // "" passes
		msg      string
	}{
		{"no precheck: old behaviour", nil, map[string]uint64{"state": 0, "bin": 0}, "1.0.0", "", ""},
		{"enough space", &sailpoint.Precheck{FreeBytes: 300 << 20}, map[string]uint64{"state": 400 << 20, "bin": 400 << 20}, "1.0.0", "", ""},
		{"state dir too small", &sailpoint.Precheck{FreeBytes: 310 << 20}, map[string]uint64{"state": 120 << 20, "bin": 1 << 30}, "1.0.0",
			codePrecheckDisk, "120 MiB free in STATE, the update needs 310 MiB"},
		{"install root too small", &sailpoint.Precheck{FreeBytes: 310 << 20}, map[string]uint64{"state": 1 << 30, "bin": 120 << 20}, "1.0.0",
			codePrecheckDisk, "120 MiB free in BIN, the update needs 310 MiB"},
		{"default need: twice the artifact plus 16 MiB", &sailpoint.Precheck{}, map[string]uint64{"state": 2*size + 16<<20 - 1, "bin": 1 << 30}, "1.0.0",
			codePrecheckDisk, "the update needs 216 MiB"},
		{"default need met", &sailpoint.Precheck{}, map[string]uint64{"state": 2*size + 16<<20, "bin": 2*size + 16<<20}, "1.0.0", "", ""},
		{"from version matches", &sailpoint.Precheck{FromVersion: "1.0.0", FreeBytes: 1}, map[string]uint64{"state": 10, "bin": 10}, "1.0.0", "", ""},
		{"from version differs", &sailpoint.Precheck{FromVersion: "1.0.0", FreeBytes: 1}, map[string]uint64{"state": 10, "bin": 10}, "1.0.5",
			codePrecheckVersion, "ad-agent is at 1.0.5 on this host, the update expected 1.0.0"},
		{"installed version unknown", &sailpoint.Precheck{FromVersion: "1.0.0", FreeBytes: 1}, map[string]uint64{"state": 10, "bin": 10}, "",
			codePrecheckVersion, "of an unknown version"},
		{"poolagent too old", &sailpoint.Precheck{MinPoolagentVersion: "999.0.0", FreeBytes: 1}, map[string]uint64{"state": 10, "bin": 10}, "1.0.0",
			map[bool]string{true: "", false: codePrecheckAgent}[dev], "the job needs 999.0.0 or newer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := testDaemon(t)
			freeSpace = func(dir string) (uint64, error) {
				switch dir {
				case d.cfg.StateDir:
					return tc.free["state"], nil
				case binDir:
					return tc.free["bin"], nil
				}
				t.Fatalf("free space asked for %s", dir)
				return 0, nil
			}
			t.Cleanup(func() { freeSpace = diskFree })
			j := &state.Job{UUID: "j1", Name: "ad-agent", Version: "1.1.0", Spec: *goodJob()}
			a := *j.Spec.ManagedProcessConfiguration["ad-agent"].Artifact
			a.Size = size
			mp := j.Spec.ManagedProcessConfiguration["ad-agent"]
			mp.Artifact = &a
			j.Spec.ManagedProcessConfiguration = map[string]sailpoint.ManagedProcess{"ad-agent": mp}
			j.Spec.Precheck = tc.pc
			err := d.precheck(j, updater.Target{Name: "ad-agent", Path: filepath.Join(binDir, "ad-agent"), Version: tc.installd})
			if tc.code == "" {
				if err != nil {
					t.Fatalf("precheck: %v; want a pass", err)
				}
				return
			}
			msg := failureMessage(err)
			want := strings.NewReplacer("STATE", d.cfg.StateDir, "BIN", binDir).Replace(tc.msg)
			if !strings.HasPrefix(msg, tc.code+": ") || !strings.Contains(msg, want) {
				t.Errorf("failure %q; want code %s and %q", msg, tc.code, want)
			}
		})
	}
}

func TestSplayFollowsTheServersClock(t *testing.T) {
	d := testDaemon(t)
	// The server's clock is an hour ahead of the host's.
	now := time.Now()
	d.st.ServerTime, d.serverRecv = now.Add(time.Hour), now
	j := &state.Job{UUID: "j1", State: sailpoint.JobPending}
	log := zap.NewNop()

	// Passed by the server's clock (though an hour ahead by the host's).
	j.Spec.StartAfter = now.Add(30 * time.Minute).UTC().Format(time.RFC3339)
	if !d.waitSplay(t.Context(), j, log) || j.Phase == "splay" {
		t.Fatalf("a start time past by the server's clock was waited for (phase %q)", j.Phase)
	}
	// Ahead by the server's clock, though past by the host's: the job
	// waits PENDING in phase splay until its context ends.
	j.Spec.StartAfter = now.Add(time.Hour + 10*time.Minute).UTC().Format(time.RFC3339)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan bool)
	go func() { done <- d.waitSplay(ctx, j, log) }()
	deadline := time.After(10 * time.Second)
	for {
		d.mu.Lock()
		phase := j.Phase
		d.mu.Unlock()
		if phase == "splay" {
			break
		}
		select {
		case ok := <-done:
			t.Fatalf("waitSplay returned %v before the start time", ok)
		case <-deadline:
			t.Fatal("the job never entered phase splay")
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	if <-done {
		t.Error("waitSplay reported the start time reached after its context ended")
	}
	if j.State != sailpoint.JobPending {
		t.Errorf("state %s during the splay; want PENDING", j.State)
	}
}

func TestTail(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abcdef", 3, "def"},
		{"aé", 1, ""}, // the é's second byte alone is not kept
		{"xxé", 2, "é"},
		{"a\xffb", 10, "a\uFFFDb"},
	} {
		got := tail(tc.in, tc.n)
		if got != tc.want || !utf8.ValidString(got) || len(got) > max(tc.n, len(tc.want)) {
			t.Errorf("tail(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// fakeService records nothing; the ring is written by the test.
type fakeService struct{ up bool }

func (f *fakeService) Start(context.Context) error           { f.up = true; return nil }
func (f *fakeService) Stop(context.Context) error            { f.up = false; return nil }
func (f *fakeService) Running(context.Context) (bool, error) { return f.up, nil }

// TestHookedServiceKeepsTheFailedVersionsOutput plays Apply's calls for a
// failed update: stop old, start new (it prints), stop new, start old
// (it prints too). The diagnostics are the new version's words only.
func TestHookedServiceKeepsTheFailedVersionsOutput(t *testing.T) {
	ring := process.NewRing(1 << 10)
	h := &hookedService{Service: &fakeService{up: true}, ring: ring}
	ctx := t.Context()
	ring.Write([]byte("old version chatter\n"))
	if got := h.failedOutput(ctx); got != "" {
		t.Fatalf("before any job: %q", got)
	}
	h.setHook(func() {})
	_ = h.Stop(ctx)
	_ = h.Start(ctx)
	ring.Write([]byte("new version: panic: nil map\n"))
	_ = h.Stop(ctx) // rollback
	_ = h.Start(ctx)
	ring.Write([]byte("old version is back\n"))
	got := h.failedOutput(ctx)
	h.setHook(nil)
	if got != "new version: panic: nil map\n" {
		t.Errorf("failed output %q; want only the new version's", got)
	}
	d := &Daemon{svcs: map[string]*hookedService{"ad-agent": h}}
	diag := d.diagnostics(ctx, "ad-agent", updater.Result{Health: "GET http://127.0.0.1:1/healthz: HTTP 503"},
		errors.New("install: health check failed"))
	if diag == nil || diag.Output != got || diag.Health != "GET http://127.0.0.1:1/healthz: HTTP 503" {
		t.Errorf("diagnostics = %+v", diag)
	}
}
