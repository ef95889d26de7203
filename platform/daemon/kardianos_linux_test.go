package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kardianos/service"
)

// renderWithKardianos installs cfg with kardianos's own systemd backend as a
// user service under a temporary HOME, with a stand-in systemctl, and
// returns the unit file kardianos wrote: the real rendering of our
// template by kardianos's template engine.
func renderWithKardianos(t *testing.T, cfg Config) string {
	t.Helper()
	var systemd service.System
	for _, s := range service.AvailableSystems() {
		if s.String() == "linux-systemd" {
			systemd = s
		}
	}
	if systemd == nil {
		t.Fatal("kardianos offers no linux-systemd backend")
	}
	home, bin := t.TempDir(), t.TempDir()
	calls := filepath.Join(bin, "calls")
	stub := "#!/bin/sh\necho \"systemctl $*\" >>" + calls + "\n"
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte(stub), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	cfg = withDefaults(cfg)
	if err := cfg.validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	k := toKardianos(cfg, "linux")
	k.Option["UserService"] = true
	s, err := systemd.New(&program{}, k)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Install(); err != nil {
		t.Fatalf("kardianos Install: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(home, ".config", "systemd", "user", cfg.Name+".service"))
	if err != nil {
		t.Fatalf("the unit kardianos wrote: %v", err)
	}
	if c, _ := os.ReadFile(calls); !strings.Contains(string(c), "enable") {
		t.Errorf("kardianos did not enable the unit; systemctl calls:\n%s", c)
	}
	return string(b)
}

// TestSystemdUnitMatchesKardianos checks that SystemdUnit (which packages
// ship) is exactly what kardianos writes from the same Config on install.
func TestSystemdUnitMatchesKardianos(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "pool agent") // a space: cmdEscape
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
	}{
		{"minimal", Config{Name: "poolagent-test", Executable: exe}},
		{"everything", Config{
			Name: "poolagent-test", Description: "keeps agents up to date", Executable: exe,
			Arguments:        []string{"run", "--config", `/etc/pool agent/"x".toml`},
			User:             "nobody",
			WorkingDirectory: "/var/lib/pool agent",
			Env:              map[string]string{"A": "1 %", "B": `"q"`},
			Dependencies:     []string{"systemd-resolved.service"},
			Restart:          RestartAlways, RestartDelay: 3 * time.Second, StopTimeout: time.Minute, LimitNOFILE: 1024,
			RestartForceExitStatus: []int{10, 11},
			StateDirectory:         "poolagent-test",
			Documentation:          "https://example.com/docs",
			SystemdNotes:           []string{"first", "", "third"},
			Hardening:              &SystemdHardening{ProtectSystem: "strict", ReadWritePaths: []string{"-/opt", "/srv"}, PrivateTmp: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := SystemdUnit(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := renderWithKardianos(t, tt.cfg); got != want {
				t.Errorf("kardianos wrote:\n%s\nSystemdUnit renders:\n%s", got, want)
			}
		})
	}
}
