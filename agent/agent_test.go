package agent

import (
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/poolagent/poolagent/agent/config"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/updater"
)

func goodJob() *sailpoint.Job {
	return &sailpoint.Job{UUID: "j1", Type: sailpoint.JobTypeUpgrade, Sequence: 3,
		ManagedProcessConfiguration: map[string]sailpoint.ManagedProcess{"ad-agent": {Version: "1.1.0", Path: "AD/ad-agent", Type: "AD",
			Artifact: &sailpoint.Artifact{Name: "AD", Version: "1.1.0", OS: runtime.GOOS, Arch: runtime.GOARCH,
				URL: "https://ps.example.com/artifacts/AD/1.1.0/x", Size: 10, SHA256: strings.Repeat("a", 64), Signature: "sig"}}}}
}

func TestCheckJob(t *testing.T) {
	cfg := config.Default()
	cfg.InstallRoots = []string{"/opt/okta"}
	cfg.Agents = []config.Agent{{Name: "ad-agent", Type: "AD", Binary: "/opt/okta/ad/agent"}}
	cfg.Artifacts.AllowedURLs = []string{"https://cdn.example.com"}
	server, _ := url.Parse("https://ps.example.com")
	mp := func(f func(*sailpoint.ManagedProcess)) func(*sailpoint.Job) {
		return func(j *sailpoint.Job) {
			for k, v := range j.ManagedProcessConfiguration {
				a := *v.Artifact
				v.Artifact = &a
				f(&v)
				j.ManagedProcessConfiguration[k] = v
			}
		}
	}
	tests := []struct {
		name   string
		mutate func(*sailpoint.Job)
		want   string
	}{
		{"ok", func(*sailpoint.Job) {}, ""},
		{"abs path is the binary", mp(func(m *sailpoint.ManagedProcess) { m.Path = "/opt/okta/ad/agent" }), ""},
		{"allowed cdn", mp(func(m *sailpoint.ManagedProcess) { m.Artifact.URL = "https://cdn.example.com/a" }), ""},
		{"unknown process", func(j *sailpoint.Job) {
			j.ManagedProcessConfiguration = map[string]sailpoint.ManagedProcess{"ldap": j.ManagedProcessConfiguration["ad-agent"]}
		}, `no managed agent "ldap"`},
		{"two processes", func(j *sailpoint.Job) { j.ManagedProcessConfiguration["x"] = sailpoint.ManagedProcess{} }, "exactly one"},
		{"type mismatch", mp(func(m *sailpoint.ManagedProcess) { m.Type = "LDAP" }), `type "LDAP" in the job`},
		{"dotdot path", mp(func(m *sailpoint.ManagedProcess) { m.Path = "AD/../../etc/passwd" }), "contains a .."},
		{"path outside", mp(func(m *sailpoint.ManagedProcess) { m.Path = "/usr/bin/passwd" }), "not the configured binary"},
		{"other relative path", mp(func(m *sailpoint.ManagedProcess) { m.Path = "LDAP/x" }), "does not name"},
		{"no artifact", mp(func(m *sailpoint.ManagedProcess) { m.Artifact = nil }), "no artifact"},
		{"artifact of another program", mp(func(m *sailpoint.ManagedProcess) { m.Artifact.Name = "LDAP" }), "the artifact is LDAP"},
		{"artifact of another platform", mp(func(m *sailpoint.ManagedProcess) { m.Artifact.OS = "plan9" }), "this host needs"},
		{"foreign url", mp(func(m *sailpoint.ManagedProcess) { m.Artifact.URL = "https://evil.example.com/a" }), "neither on the server"},
		{"scheme differs", mp(func(m *sailpoint.ManagedProcess) { m.Artifact.URL = "http://ps.example.com/a" }), "neither on the server"},
		{"dotdot url", mp(func(m *sailpoint.ManagedProcess) { m.Artifact.URL = "https://ps.example.com/a/../b" }), "contains a .."},
		{"bad version", mp(func(m *sailpoint.ManagedProcess) { m.Version = "" }), "not a version"},
		{"self disabled", func(j *sailpoint.Job) {
			j.ManagedProcessConfiguration = map[string]sailpoint.ManagedProcess{"poolagent": {Version: "2.0.0", Path: "poolagent", Type: "poolagent"}}
		}, "self-update is disabled"},
		{"wrong job type", func(j *sailpoint.Job) { j.Type = "REBOOT" }, "job type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := goodJob()
			tt.mutate(j)
			c := cfg
			c.SelfUpdate.Enabled = false
			err := checkJob(c, server, j)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrJobRefused)):
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestWindow(t *testing.T) {
	recv := time.Now()
	m := func(open, start, cluster, finish string) *sailpoint.Maintenance {
		return &sailpoint.Maintenance{Window: open, WindowStartTime: start, WindowClusterTime: cluster, WindowFinishTime: finish}
	}
	tests := []struct {
		name   string
		m      *sailpoint.Maintenance
		after  time.Duration
		margin time.Duration
		want   bool
	}{
		{"no window", nil, 0, 0, true},
		{"open now", m("true", "2026-03-02T02:00:00Z", "2026-03-02T02:30:00Z", "2026-03-02T04:00:00Z"), 0, 0, true},
		// The host's clock does not matter: only the offsets from the
		// server's clock, measured from when the reply arrived.
		{"opens in 10m, not yet", m("false", "2026-03-02T02:00:00Z", "2026-03-02T01:50:00Z", "2026-03-02T04:00:00Z"), 9 * time.Minute, 0, false},
		{"opens in 10m, now open", m("false", "2026-03-02T02:00:00Z", "2026-03-02T01:50:00Z", "2026-03-02T04:00:00Z"), 11 * time.Minute, 0, true},
		{"closed after finish", m("true", "2026-03-02T02:00:00Z", "2026-03-02T03:59:00Z", "2026-03-02T04:00:00Z"), 2 * time.Minute, 0, false},
		{"margin", m("true", "2026-03-02T02:00:00Z", "2026-03-02T03:50:00Z", "2026-03-02T04:00:00Z"), 0, 15 * time.Minute, false},
		{"open ended", m("true", "2026-03-02T02:00:00Z", "2026-03-02T03:50:00Z", ""), 48 * time.Hour, 0, true},
		{"unreadable times use the flag", m("true", "soon", "now", ""), 0, 0, true},
		{"unreadable times, flag false", m("false", "soon", "now", ""), 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := parseWindow(tt.m, recv)
			if got := w.open(recv.Add(tt.after), tt.margin); got != tt.want {
				t.Errorf("open = %v, want %v", got, tt.want)
			}
		})
	}
	w := parseWindow(m("false", "2026-03-02T02:00:00Z", "2026-03-02T01:50:00Z", "2026-03-02T04:00:00Z"), recv)
	if n := w.next(recv, 0); n != 10*time.Minute {
		t.Errorf("next = %s", n)
	}
}

func TestBackoff(t *testing.T) {
	for n := 1; n < 30; n++ {
		d := backoff(n, 30*time.Second)
		hi := min(time.Second<<(n-1), 5*time.Minute)
		if n > 20 {
			hi = 5 * time.Minute
		}
		if d < hi/2 || d > hi {
			t.Errorf("backoff(%d) = %s, want in [%s, %s]", n, d, hi/2, hi)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		h    string
		want time.Duration
	}{
		{"", 0}, {"7", 7 * time.Second}, {"-1", 0}, {"soon", 0},
		{now.Add(90 * time.Second).Format(http1123), 90 * time.Second},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.h, now); got != tt.want {
			t.Errorf("retryAfter(%q) = %s, want %s", tt.h, got, tt.want)
		}
	}
}

const http1123 = "Mon, 02 Jan 2006 15:04:05 GMT"

func TestFailureMessage(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("install AD 1.1.0: %w: /healthz answered 503", updater.ErrHealthCheck), "HEALTH_CHECK: install AD 1.1.0"},
		{fmt.Errorf("download: %w", updater.ErrSignature), "SIGNATURE: "},
		{fmt.Errorf("%w: nope", ErrJobRefused), "JOB_REFUSED: job refused: nope"},
		{errors.New("boom"), "INTERNAL: boom"},
		{fmt.Errorf("download: connection lost: %w: write x: %w", updater.ErrDownload, syscall.ENOSPC), diskFullWant()},
		{fmt.Errorf("download: %w: %w", updater.ErrDiskFull, syscall.ENOSPC), "DISK_FULL: "},
		{fmt.Errorf("install: %w (rolling back: %w: restore failed)", updater.ErrHealthCheck, updater.ErrRollback), "ROLLBACK_FAILED: "},
		{rolledBack{errors.New("install AD 1.1.0: rollback interrupted (agent restarted)")}, "ROLLBACK: install AD 1.1.0: rollback interrupted"},
		{rolledBack{fmt.Errorf("x: %w", updater.ErrHealthCheck)}, "HEALTH_CHECK: x"},
		{&precheckError{codePrecheckDisk, "120 MiB free in /opt, the update needs 310 MiB"}, "PRECHECK_DISK: 120 MiB free in /opt, the update needs 310 MiB"},
		{fmt.Errorf("wrapped: %w", &precheckError{codePrecheckVersion, "v"}), "PRECHECK_VERSION: v"},
	}
	for _, tt := range tests {
		if got := failureMessage(tt.err); !strings.HasPrefix(got, tt.want) {
			t.Errorf("failureMessage(%v) = %q, want prefix %q", tt.err, got, tt.want)
		}
	}
}
