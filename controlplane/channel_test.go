package controlplane_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/poolagent/poolagent/api/okta"
)

// publishChannels publishes one AD release per channel: 1.1.0 GA, 1.2.0
// EA, 1.3.0 BETA, 1.4.0 TEST, and 1.5.0 on BETA for linux and GA for
// windows.
func publishChannels(f *fleet) {
	f.publishOn("AD", "1.1.0", "linux", okta.ChannelGA)
	f.publishOn("AD", "1.2.0", "linux", okta.ChannelEA)
	f.publishOn("AD", "1.3.0", "linux", okta.ChannelBeta)
	f.publishOn("AD", "1.4.0", "linux", okta.ChannelTest)
	f.publishOn("AD", "1.5.0", "linux", okta.ChannelBeta)
	f.publishOn("AD", "1.5.0", "windows", okta.ChannelGA)
}

// TestLatestVersionFollowsTheReleaseChannel checks that a pool's
// latestVersion, and what an update without targetVersion installs, is
// the newest release on its channel or a more stable one.
func TestLatestVersionFollowsTheReleaseChannel(t *testing.T) {
	for _, tc := range []struct {
		channel okta.ReleaseChannel
		latest  string
	}{
		{okta.ChannelGA, "1.5.0"}, // 1.5.0 is GA on windows
		{okta.ChannelEA, "1.5.0"},
		{okta.ChannelBeta, "1.5.0"},
		{okta.ChannelTest, "1.5.0"},
	} {
		t.Run(string(tc.channel), func(t *testing.T) {
			f := newFleet(t)
			publishChannels(f)
			f.settings(fmt.Sprintf(`{"releaseChannel":%q}`, tc.channel))
			var s okta.AgentPoolUpdateSetting
			f.do("GET", "/api/v1/agentPools/"+f.pool.ID+"/updates/settings", f.read, "").decode(t, &s)
			if s.ReleaseChannel != tc.channel || s.LatestVersion != tc.latest {
				t.Errorf("settings: channel %s latestVersion %s, want %s %s", s.ReleaseChannel, s.LatestVersion, tc.channel, tc.latest)
			}
		})
	}
	// Without the cross-platform 1.5.0, each channel has its own newest.
	for _, tc := range []struct {
		channel okta.ReleaseChannel
		latest  string
	}{
		{okta.ChannelGA, "1.1.0"},
		{okta.ChannelEA, "1.2.0"},
		{okta.ChannelBeta, "1.3.0"},
		{okta.ChannelTest, "1.4.0"},
	} {
		t.Run(string(tc.channel)+" installs its latest", func(t *testing.T) {
			f := newFleet(t)
			f.publishOn("AD", "1.1.0", "linux", okta.ChannelGA)
			f.publishOn("AD", "1.2.0", "linux", okta.ChannelEA)
			f.publishOn("AD", "1.3.0", "linux", okta.ChannelBeta)
			f.publishOn("AD", "1.4.0", "linux", okta.ChannelTest)
			f.settings(fmt.Sprintf(`{"releaseChannel":%q}`, tc.channel))
			var s okta.AgentPoolUpdateSetting
			f.do("GET", "/api/v1/agentPools/"+f.pool.ID+"/updates/settings", f.read, "").decode(t, &s)
			if s.LatestVersion != tc.latest {
				t.Errorf("latestVersion %s, want %s", s.LatestVersion, tc.latest)
			}
			// An update without targetVersion installs the channel's latest.
			h := f.host("dc1", "1.0.0")
			f.createUpdate(f.pool.ID, `{}`)
			f.tick()
			jobs := f.beat(h).Body.Jobs
			if len(jobs) != 1 || jobs[0].ManagedProcessConfiguration["ad-agent"].Version != tc.latest {
				t.Fatalf("jobs = %+v, want one installing %s", jobs, tc.latest)
			}
		})
	}
}

// TestTargetVersionOnALessStableChannel checks that a targetVersion
// released only on a less stable channel than the pool's is a 400 naming
// the channel, on create and on modify.
func TestTargetVersionOnALessStableChannel(t *testing.T) {
	f := newFleet(t)
	publishChannels(f)
	base := "/api/v1/agentPools/" + f.pool.ID + "/updates"
	ok := f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0"}`)
	for _, tc := range []struct {
		channel okta.ReleaseChannel
		target  string
		refused okta.ReleaseChannel // "" when accepted
	}{
		{okta.ChannelGA, "1.1.0", ""},
		{okta.ChannelGA, "1.2.0", okta.ChannelEA},
		{okta.ChannelGA, "1.3.0", okta.ChannelBeta},
		{okta.ChannelGA, "1.4.0", okta.ChannelTest},
		{okta.ChannelGA, "1.5.0", ""}, // GA on one platform is enough
		{okta.ChannelGA, "9.9.9", ""}, // not in the catalog: NO_ARTIFACT at rollout, not a 400
		{okta.ChannelEA, "1.2.0", ""},
		{okta.ChannelEA, "1.3.0", okta.ChannelBeta},
		{okta.ChannelBeta, "1.3.0", ""},
		{okta.ChannelBeta, "1.4.0", okta.ChannelTest},
		{okta.ChannelTest, "1.4.0", ""},
		{okta.ChannelTest, "1.1.0", ""},
	} {
		t.Run(fmt.Sprintf("%s pool, %s", tc.channel, tc.target), func(t *testing.T) {
			f.settings(fmt.Sprintf(`{"releaseChannel":%q}`, tc.channel))
			body := fmt.Sprintf(`{"targetVersion":%q}`, tc.target)
			for _, path := range []string{base, base + "/" + ok.ID} {
				r := f.do("POST", path, f.manage, body)
				if tc.refused == "" {
					if r.status != http.StatusCreated {
						t.Errorf("POST %s: %d %s", path, r.status, r.body)
					}
					continue
				}
				if r.status != http.StatusBadRequest {
					t.Fatalf("POST %s: %d %s, want 400", path, r.status, r.body)
				}
				oe := r.okta(t)
				if oe.ErrorCode != okta.CodeValidation || len(oe.ErrorCauses) != 1 {
					t.Fatalf("POST %s: %s", path, r.body)
				}
				cause := oe.ErrorCauses[0].ErrorSummary
				if !strings.HasPrefix(cause, "targetVersion: ") || !strings.Contains(cause, "only on the "+string(tc.refused)+" channel") ||
					!strings.Contains(cause, "follows "+string(tc.channel)) {
					t.Errorf("POST %s: cause %q does not name the channels", path, cause)
				}
			}
		})
	}
	// A refused modify leaves the update as it was.
	f.settings(`{"releaseChannel":"GA"}`)
	f.do("POST", base+"/"+ok.ID, f.manage, `{"targetVersion":"1.1.0"}`)
	f.do("POST", base+"/"+ok.ID, f.manage, `{"targetVersion":"1.3.0"}`)
	if got := f.update(ok.ID); got.TargetVersion != "1.1.0" {
		t.Errorf("after a refused modify targetVersion = %s", got.TargetVersion)
	}
}
