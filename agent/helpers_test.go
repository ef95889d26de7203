package agent

import (
	"runtime"
	"testing"

	"go.uber.org/zap"

	"github.com/poolagent/poolagent/agent/config"
	"github.com/poolagent/poolagent/agent/state"
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
	pub, _, err := updater.GenerateKey()
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
