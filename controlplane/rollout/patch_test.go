package rollout

import (
	"testing"

	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/controlplane/store"
)

// TestArtifactOffersPatch: a job offers the release's patch whose source
// version and SHA-256 are what the host reported, and none otherwise.
func TestArtifactOffersPatch(t *testing.T) {
	rel := &store.Release{Name: "AD", Version: "1.2.0", OS: "linux", Arch: "amd64", Size: 1000, SHA256: "cc",
		Patches: []store.ReleasePatch{
			{FromVersion: "1.0.0", FromSHA256: "aa", Size: 10, SHA256: "p1"},
			{FromVersion: "1.1.0", FromSHA256: "bb", Size: 20, SHA256: "p2"},
		}}
	for _, tc := range []struct {
		name      string
		rep       *sailpoint.AgentReport
		wantPatch string // the offered patch's SHA-256, "" for none
	}{
		{"matching version and binary", &sailpoint.AgentReport{Version: "1.1.0", SHA256: "bb"}, "p2"},
		{"hash in upper case", &sailpoint.AgentReport{Version: "1.0.0", SHA256: "AA"}, "p1"},
		{"same version, another binary", &sailpoint.AgentReport{Version: "1.1.0", SHA256: "aa"}, ""},
		{"the binary of another version", &sailpoint.AgentReport{Version: "1.0.1", SHA256: "aa"}, ""},
		{"no hash reported", &sailpoint.AgentReport{Version: "1.0.0"}, ""},
		{"agent not reported", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := artifactOf(rel, tc.rep)
			if a.URL != ArtifactPath(rel) || a.SHA256 != "cc" {
				t.Fatalf("the full artifact is not the fallback: %+v", a)
			}
			got := ""
			if a.Patch != nil {
				got = a.Patch.SHA256
				if a.Patch.URL != PatchPath(got) || a.Patch.FromVersion != tc.rep.Version {
					t.Errorf("patch = %+v", a.Patch)
				}
			}
			if got != tc.wantPatch {
				t.Errorf("offered patch %q, want %q", got, tc.wantPatch)
			}
		})
	}
	if got := reportOf([]sailpoint.AgentReport{{Name: "a"}, {Name: "b", SHA256: "x"}}, "b"); got == nil || got.SHA256 != "x" {
		t.Errorf("reportOf = %+v", got)
	}
}
