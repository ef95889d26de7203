package controlplane

import (
	"slices"
	"testing"

	"github.com/poolagent/poolagent/api/okta"
)

// TestClassify is the table of the compliance states: one version class
// each, belowMinimum beside it, at most one health class.
func TestClassify(t *testing.T) {
	const (
		op       = okta.OperationalStatusOperational
		inactive = okta.OperationalStatusInactive
		degraded = okta.OperationalStatusDegraded
		disrupt  = okta.OperationalStatusDisrupted
	)
	L, U, O, X := okta.ComplianceLatest, okta.ComplianceUpdating, okta.ComplianceOutdated, okta.ComplianceUnknown
	B, R, D := okta.ComplianceBelowMinimum, okta.ComplianceUnreachable, okta.ComplianceDegraded
	cases := []struct {
		name      string
		in        complianceInput
		want      []okta.ComplianceState
		compliant bool
	}{
		{"on latest, healthy", complianceInput{Version: "1.2.0", Latest: "1.2.0", Minimum: "1.0.0", Status: op}, []okta.ComplianceState{L}, true},
		{"newer than latest", complianceInput{Version: "1.3.0-beta.1", Latest: "1.2.0", Status: op}, []okta.ComplianceState{L}, true},
		{"versions compare as semver, not text", complianceInput{Version: "1.10.0", Latest: "1.9.0", Status: op}, []okta.ComplianceState{L}, true},
		{"outdated", complianceInput{Version: "1.1.0", Latest: "1.2.0", Minimum: "1.0.0", Status: op}, []okta.ComplianceState{O}, false},
		{"outdated and below minimum", complianceInput{Version: "0.9.0", Latest: "1.2.0", Minimum: "1.0.0", Status: op}, []okta.ComplianceState{O, B}, false},
		{"at the minimum is not below it", complianceInput{Version: "1.0.0", Latest: "1.2.0", Minimum: "1.0.0", Status: op}, []okta.ComplianceState{O}, false},
		{"outdated and degraded", complianceInput{Version: "1.1.0", Latest: "1.2.0", Status: degraded}, []okta.ComplianceState{O, D}, false},
		{"DISRUPTED counts degraded", complianceInput{Version: "1.2.0", Latest: "1.2.0", Status: disrupt}, []okta.ComplianceState{L, D}, false},
		{"latest but unreachable", complianceInput{Version: "1.2.0", Latest: "1.2.0", Status: inactive}, []okta.ComplianceState{L, R}, false},
		{"outdated, below minimum, unreachable", complianceInput{Version: "0.9.0", Latest: "1.2.0", Minimum: "1.0.0", Status: inactive}, []okta.ComplianceState{O, B, R}, false},
		{"updating wins over outdated", complianceInput{Version: "1.1.0", Latest: "1.2.0", Status: op, Updating: true}, []okta.ComplianceState{U}, false},
		{"updating on latest (a downgrade or reinstall)", complianceInput{Version: "1.2.0", Latest: "1.2.0", Status: op, Updating: true}, []okta.ComplianceState{U}, false},
		{"updating from below the minimum", complianceInput{Version: "0.9.0", Latest: "1.2.0", Minimum: "1.0.0", Status: degraded, Updating: true}, []okta.ComplianceState{U, B, D}, false},
		{"no version reported", complianceInput{Latest: "1.2.0", Minimum: "1.0.0", Status: op}, []okta.ComplianceState{X}, false},
		{"pool has no latest version", complianceInput{Version: "1.1.0", Status: op}, []okta.ComplianceState{X}, false},
		{"no latest, below minimum", complianceInput{Version: "0.9.0", Minimum: "1.0.0", Status: op}, []okta.ComplianceState{X, B}, false},
		{"a minimum above latest still counts", complianceInput{Version: "1.2.0", Latest: "1.2.0", Minimum: "1.3.0", Status: op}, []okta.ComplianceState{L, B}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := classify(c.in)
			if !slices.Equal(got.States(), c.want) {
				t.Errorf("states = %v, want %v", got.States(), c.want)
			}
			if got.Compliant() != c.compliant {
				t.Errorf("compliant = %v, want %v", got.Compliant(), c.compliant)
			}
			// The counts follow the states: the version classes add up to
			// the total, the rest overlap.
			var n okta.ComplianceCounts
			got.count(&n)
			if v := n.Latest + n.Updating + n.Outdated + n.Unknown; v != 1 || n.Total != 1 {
				t.Errorf("version classes add up to %d of %d, want 1 of 1: %+v", v, n.Total, n)
			}
			if n.NonCompliant == 1 == c.compliant {
				t.Errorf("nonCompliant count %d for compliant=%v", n.NonCompliant, c.compliant)
			}
			for _, st := range okta.ComplianceStates {
				want := 0
				if slices.Contains(c.want, st) {
					want = 1
				}
				if n.Of(st) != want {
					t.Errorf("count of %s = %d, want %d", st, n.Of(st), want)
				}
			}
		})
	}
}
