package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/poolagent/poolagent/agent/config"
	"github.com/poolagent/poolagent/platform/daemon"
)

// TestInstallUnit checks the unit `poolagent install` would write for this
// binary and a configuration with its own state dir, socket and install
// roots: the package's sandbox, with every path poolagent writes writable.
func TestInstallUnit(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.LocalAPI.Socket = filepath.Join(dir, "run", "poolagent.sock")
	cfg.InstallRoots = []string{"/opt/okta", filepath.Join(dir, "agents")}
	svc, unlisted, err := serviceConfig(cfg, filepath.Join(dir, "poolagent.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(unlisted) > 0 {
		t.Errorf("unlisted paths %q", unlisted)
	}
	unit, err := daemon.SystemdUnit(svc)
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	exe, _ = filepath.EvalSymlinks(exe)
	wantRW := "ReadWritePaths=-/opt -/usr/local -" + filepath.Dir(exe) + " " + cfg.StateDir + " -" +
		filepath.Join(dir, "agents") + " -" + filepath.Join(dir, "run") + "\n"
	for _, want := range []string{
		"ExecStart=" + exe + ` "run" "--service" "--config" "` + filepath.Join(dir, "poolagent.toml") + "\"\n",
		wantRW, "ProtectSystem=strict\n", "RestartForceExitStatus=10\n", "TimeoutStopSec=70\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("install unit lacks %q:\n%s", want, unit)
		}
	}
}
