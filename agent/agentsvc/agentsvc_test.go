package agentsvc

import (
	"slices"
	"testing"

	"github.com/poolagent/poolagent/agent"
	"github.com/poolagent/poolagent/platform/daemon"
)

func TestExitRestartIsTheAgents(t *testing.T) {
	if ExitRestart != agent.ExitRestart {
		t.Errorf("ExitRestart = %d, agent.ExitRestart = %d", ExitRestart, agent.ExitRestart)
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name        string
		o           Options
		wantPaths   []string
		wantState   string
		wantSkipped []string
	}{
		{"packaged", Packaged, []string{"-/opt", "-/usr/local", "-/usr/bin"}, "poolagent", nil},
		{"binary and roots under /opt, default state dir", Options{
			Executable: "/opt/poolagent/poolagent", ConfigPath: "/etc/poolagent/poolagent.toml",
			StateDir: "/var/lib/poolagent", WritablePaths: []string{"/opt/okta", "/srv/agents", "/srv/agents/x"}, GOOS: "linux",
		}, []string{"-/opt", "-/usr/local", "-/srv/agents"}, "poolagent", nil},
		{"own state dir", Options{
			Executable: "/usr/local/bin/poolagent", ConfigPath: "/etc/pa.toml", StateDir: "/data/poolagent/",
			WritablePaths: []string{"/srv/a b", "/srv/100%"}, GOOS: "linux",
		}, []string{"-/opt", "-/usr/local", "/data/poolagent"}, "", []string{"/srv/a b", "/srv/100%"}},
		{"windows", Options{
			Executable: `C:\Program Files\poolagent\poolagent.exe`, ConfigPath: `C:\ProgramData\poolagent\poolagent.toml`,
			StateDir: `C:\ProgramData\poolagent`, WritablePaths: []string{`C:\Okta`}, GOOS: "windows",
		}, nil, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, skipped := Config(tt.o)
			if !slices.Equal(c.Hardening.ReadWritePaths, tt.wantPaths) {
				t.Errorf("ReadWritePaths = %q, want %q", c.Hardening.ReadWritePaths, tt.wantPaths)
			}
			if c.StateDirectory != tt.wantState {
				t.Errorf("StateDirectory = %q, want %q", c.StateDirectory, tt.wantState)
			}
			if !slices.Equal(skipped, tt.wantSkipped) {
				t.Errorf("unlisted paths = %q, want %q", skipped, tt.wantSkipped)
			}
			if !slices.Equal(c.Arguments, []string{"run", "--service", "--config", tt.o.ConfigPath}) || c.Executable != tt.o.Executable {
				t.Errorf("command %s %q", c.Executable, c.Arguments)
			}
			if !slices.Equal(c.RestartForceExitStatus, []int{ExitRestart}) || c.StopTimeout != StopTimeout {
				t.Errorf("restart on %v, stop timeout %v", c.RestartForceExitStatus, c.StopTimeout)
			}
			if _, err := daemon.New(c, nil); err != nil {
				t.Errorf("daemon.New rejects the service definition: %v", err)
			}
		})
	}
}

// TestRegisteredCommandDeclaresServiceMode checks the command line each
// service manager is given: `run --service`, so that poolagent talks to the
// Windows Service Control Manager without guessing whether it runs under it.
func TestRegisteredCommandDeclaresServiceMode(t *testing.T) {
	for _, tt := range []struct{ goos, exe, cfg string }{
		{"windows", `C:\Program Files\poolagent\poolagent.exe`, `C:\ProgramData\poolagent\poolagent.toml`},
		{"linux", "/usr/bin/poolagent", "/etc/poolagent/poolagent.toml"},
		{"darwin", "/usr/local/bin/poolagent", "/usr/local/etc/poolagent.toml"},
	} {
		t.Run(tt.goos, func(t *testing.T) {
			c, _ := Config(Options{Executable: tt.exe, ConfigPath: tt.cfg, GOOS: tt.goos})
			got := daemon.ServiceArguments(c, tt.goos)
			if want := []string{"run", ServiceFlag, "--config", tt.cfg}; !slices.Equal(got, want) {
				t.Errorf("registered arguments %q, want %q", got, want)
			}
		})
	}
}
