package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/agent/state"
	"github.com/poolagent/poolagent/updater"
)

func TestDecideDowngrade(t *testing.T) {
	const (
		shaOld   = "1111111111111111111111111111111111111111111111111111111111111111"
		shaOther = "2222222222222222222222222222222222222222222222222222222222222222"
	)
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	prev := &state.Previous{Version: "1.0.0", SHA256: shaOld, At: now.Add(-24 * time.Hour)}
	// host: the config's allow_downgrade and allow_revert.
	type host struct{ downgrade, revert bool }
	defaults := host{false, true}
	tests := []struct {
		name             string
		installed, to    string
		sha              string
		jobAllows        bool
		prev             *state.Previous
		now              time.Time
		host             host
		want             downgradeVerdict
		wantReasonSubstr string
	}{
		{"upgrade", "1.0.0", "1.1.0", shaOther, false, nil, now, defaults, notDowngrade, ""},
		{"same version", "1.1.0", "1.1.0", shaOther, false, nil, now, defaults, notDowngrade, ""},
		{"unknown installed version", "", "0.9.0", shaOther, false, nil, now, defaults, notDowngrade, ""},
		{"installed version not comparable", "dev", "0.9.0", shaOther, false, nil, now, defaults, notDowngrade, ""},
		{"pre-release below its release", "1.1.0", "1.1.0-rc1", shaOther, true, nil, now, defaults, downgradeRefused, "allow_downgrade"},

		// The server's flag alone never downgrades.
		{"server allows, host default", "1.1.0", "0.9.0", shaOther, true, prev, now, defaults, downgradeRefused, "only release it may revert to is 1.0.0"},
		{"server allows, host refuses everything", "1.1.0", "0.9.0", shaOther, true, prev, now, host{false, false}, downgradeRefused, "allow_revert are off"},
		{"server allows, host allows", "1.1.0", "0.9.0", shaOther, true, nil, now, host{true, false}, downgradeAllowed, "allow_downgrade"},
		{"host allows, server does not ask", "1.1.0", "0.9.0", shaOther, false, nil, now, host{true, true}, downgradeRefused, "allowDowngrade"},

		// Reverts: exactly the release the last update replaced.
		{"revert", "1.1.0", "1.0.0", shaOld, true, prev, now, defaults, revertAllowed, "allow_revert"},
		{"revert, sha in upper case", "1.1.0", "1.0.0", strings.ToUpper(shaOld), true, prev, now, defaults, revertAllowed, ""},
		{"revert, version spelled v1.0.0", "1.1.0", "v1.0.0", shaOld, true, prev, now, defaults, revertAllowed, ""},
		{"revert, job does not ask", "1.1.0", "1.0.0", shaOld, false, prev, now, defaults, downgradeRefused, "allowDowngrade"},
		{"revert off", "1.1.0", "1.0.0", shaOld, true, prev, now, host{false, false}, downgradeRefused, "allow_revert are off"},
		{"revert to another build of that version", "1.1.0", "1.0.0", shaOther, true, prev, now, defaults, downgradeRefused, "another build"},
		{"revert with nothing remembered", "1.1.0", "1.0.0", shaOld, true, nil, now, defaults, downgradeRefused, "remembers no earlier release"},
		{"revert, remembered sha empty", "1.1.0", "1.0.0", "", true, &state.Previous{Version: "1.0.0", At: now}, now, defaults, downgradeRefused, "remembers no earlier release"},
		{"revert to an older release than the previous", "1.1.0", "0.9.0", shaOld, true, prev, now, defaults, downgradeRefused, "only release it may revert to is 1.0.0"},
		{"revert on the 30th day", "1.1.0", "1.0.0", shaOld, true, &state.Previous{Version: "1.0.0", SHA256: shaOld, At: now.Add(-30 * 24 * time.Hour)}, now, defaults, revertAllowed, ""},
		{"revert after 30 days", "1.1.0", "1.0.0", shaOld, true, &state.Previous{Version: "1.0.0", SHA256: shaOld, At: now.Add(-30*24*time.Hour - time.Second)}, now, defaults, downgradeRefused, "more than 30 days ago"},
		{"revert, host clock behind the update", "1.1.0", "1.0.0", shaOld, true, &state.Previous{Version: "1.0.0", SHA256: shaOld, At: now.Add(time.Hour)}, now, defaults, revertAllowed, ""},
		{"revert off but downgrades on", "1.1.0", "1.0.0", shaOther, true, prev, now, host{true, false}, downgradeAllowed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := decideDowngrade(downgradeQuery{
				Installed: tt.installed, Version: tt.to, SHA256: tt.sha, JobAllows: tt.jobAllows,
				Previous: tt.prev, Now: tt.now, AllowDowngrade: tt.host.downgrade, AllowRevert: tt.host.revert,
			})
			if got != tt.want {
				t.Fatalf("verdict %s (%s), want %s", got, reason, tt.want)
			}
			if !strings.Contains(reason, tt.wantReasonSubstr) {
				t.Errorf("reason %q does not say %q", reason, tt.wantReasonSubstr)
			}
			if got == downgradeRefused && !strings.Contains(reason, "allow") {
				t.Errorf("a refusal does not say what would allow it: %q", reason)
			}
		})
	}
}

func TestFailureMessageDowngradeRefused(t *testing.T) {
	err := &precheckError{codeDowngradeRefused, "ad-agent is at 1.1.0 on this host and the job would install the older 0.9.0: x"}
	if got := failureMessage(err); !strings.HasPrefix(got, "DOWNGRADE_REFUSED: ad-agent is at 1.1.0") {
		t.Errorf("failureMessage = %q", got)
	}
}

func TestFileSHA256(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := updater.HashFile(p)
	if err != nil || got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("fileSHA256 = %q, %v", got, err)
	}
	if _, err := updater.HashFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing file hashed")
	}
}
