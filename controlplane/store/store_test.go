package store_test

import (
	"testing"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
)

func TestPoolSetDefaults(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in, want store.Settings
	}{
		{"zero", store.Settings{}, store.Settings{ReleaseChannel: okta.ChannelGA, MaxUnavailable: 1, MinOperational: store.DefaultMinOperational}},
		{"negative max unavailable", store.Settings{MaxUnavailable: -3}, store.Settings{ReleaseChannel: okta.ChannelGA, MaxUnavailable: 1, MinOperational: store.DefaultMinOperational}},
		{"set values kept", store.Settings{ReleaseChannel: okta.ChannelEA, MaxUnavailable: 5, MinOperational: -1},
			store.Settings{ReleaseChannel: okta.ChannelEA, MaxUnavailable: 5, MinOperational: -1}},
	} {
		p := &store.Pool{Settings: tc.in}
		p.SetDefaults()
		if !p.Settings.Equal(tc.want) {
			t.Errorf("%s: SetDefaults gave %+v, want %+v", tc.name, p.Settings, tc.want)
		}
	}
}
