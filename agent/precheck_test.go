package agent

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/poolagent/poolagent/agent/state"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/internal/version"
	"github.com/poolagent/poolagent/updater"
)

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
			var stateDir string
			d := testDaemon(t, func(deps *Deps) {
				deps.FreeSpace = func(dir string) (uint64, error) {
					switch dir {
					case stateDir:
						return tc.free["state"], nil
					case binDir:
						return tc.free["bin"], nil
					}
					t.Fatalf("free space asked for %s", dir)
					return 0, nil
				}
			})
			stateDir = d.cfg.StateDir
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
