package agent

import (
	"net/http"
	"net/url"
	"runtime"
	"testing"

	"go.uber.org/zap"

	"github.com/poolagent/poolagent/agent/config"
	"github.com/poolagent/poolagent/agent/state"
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

// testDaemon is a daemon made by New with an updater on a temporary state
// dir and an empty state, not running; with changes its collaborators
// before New takes them.
func testDaemon(t *testing.T, with ...func(*Deps)) *Daemon {
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
	deps := Deps{Server: &url.URL{Scheme: "https", Host: "poolserver.test"}, Transport: http.DefaultTransport, Updater: upd}
	for _, f := range with {
		f(&deps)
	}
	d, err := New(cfg, zap.NewNop(), deps)
	if err != nil {
		t.Fatal(err)
	}
	d.st = &state.State{Agents: map[string]*state.Agent{}}
	return d
}
