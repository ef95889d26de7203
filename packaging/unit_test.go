package packaging

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/poolagent/poolagent/agent/agentsvc"
	"github.com/poolagent/poolagent/platform/daemon"
)

var update = flag.Bool("update", false, "rewrite packaging/systemd/poolagent.service from agent/agentsvc")

// TestPackagedUnitIsInstallUnit keeps packaging/systemd/poolagent.service
// equal to the unit `poolagent install` writes, rendered for the packages'
// paths: one definition (agent/agentsvc, platform/daemon) for both. After
// changing either, run: go test ./packaging -run TestPackagedUnitIsInstallUnit -update
func TestPackagedUnitIsInstallUnit(t *testing.T) {
	cfg, skipped := agentsvc.Config(agentsvc.Packaged)
	if len(skipped) > 0 {
		t.Fatalf("the packaged paths could not all be listed: %q", skipped)
	}
	want, err := daemon.SystemdUnit(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("systemd", "poolagent.service")
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s differs from the unit `poolagent install` renders for the packaged paths; "+
			"run go test ./packaging -run TestPackagedUnitIsInstallUnit -update\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestInstallUnitVerify renders the unit `poolagent install` writes for a
// binary and a configuration outside the packages' paths (own state_dir,
// install_roots) and has systemd-analyze verify it.
func TestInstallUnitVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "bin", "poolagent")
	if err := os.MkdirAll(filepath.Dir(exe), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(dir, "state")
	cfg, skipped := agentsvc.Config(agentsvc.Options{
		Executable:    exe,
		ConfigPath:    filepath.Join(dir, "poolagent.toml"),
		StateDir:      stateDir,
		WritablePaths: []string{"/opt/okta", filepath.Join(dir, "agents"), "/srv/with space"},
		GOOS:          "linux",
	})
	if len(skipped) != 1 || skipped[0] != "/srv/with space" {
		t.Errorf("unlisted paths %q, want the one with a space", skipped)
	}
	unit, err := daemon.SystemdUnit(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ExecStart=" + exe + ` "run" "--service" "--config" "` + filepath.Join(dir, "poolagent.toml") + `"` + "\n",
		"ReadWritePaths=-/opt -/usr/local -" + filepath.Dir(exe) + " " + stateDir + " -" + filepath.Join(dir, "agents") + "\n",
		"ProtectSystem=strict\n", "ProtectHome=yes\n", "PrivateTmp=yes\n", "RestartForceExitStatus=10\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("install unit lacks %q:\n%s", want, unit)
		}
	}
	if strings.Contains(unit, "StateDirectory=") {
		t.Errorf("install unit for state_dir %s sets StateDirectory=:\n%s", stateDir, unit)
	}
	verifyUnit(t, sa, "poolagent", []byte(unit))
}

// verifyUnit runs systemd-analyze verify on unit written as <name>.service;
// any diagnostic about it fails the test.
func verifyUnit(t *testing.T, sa, name string, unit []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".service")
	if err := os.WriteFile(path, unit, 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(sa, "verify", path)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var diags []string
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, path) || strings.HasPrefix(line, name+".service") {
			diags = append(diags, line)
		}
	}
	if err != nil || len(diags) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s\n%s", name+".service", err, strings.Join(diags, "\n"), unit)
	}
}
