package controlplane

import (
	"slices"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
)

// TestHostNotes checks what the notes answer after a sequence of
// heartbeats: each host's skew, the largest skew, the hosts with
// mismatches by pool, and when a host's mismatches are to be logged.
func TestHostNotes(t *testing.T) {
	seen := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	ldap := []typeMismatch{{Name: "ldap", Reported: "LDAP", Type: okta.AgentTypeLDAP, Pool: okta.AgentTypeAD, Version: "1"}}
	radius := []typeMismatch{{Name: "radius", Reported: "RADIUS", Type: okta.AgentTypeRadius, Pool: okta.AgentTypeAD, Version: "2"}}
	note := func(pool string, skew time.Duration, has bool, m []typeMismatch) hostNote {
		return hostNote{poolID: pool, host: "h", status: sailpoint.StatusNormal, seen: seen, skew: skew, hasSkew: has, mismatches: m}
	}
	h := newHostNotes()
	steps := []struct {
		id      string
		n       hostNote
		wantLog bool
	}{
		{"a", note("p1", 2*time.Second, true, nil), false},
		{"b", note("p1", 0, false, nil), false},
		{"c", note("p2", -5*time.Second, true, ldap), true},
		{"c", note("p2", -5*time.Second, true, ldap), false}, // logged once
		{"d", note("p1", time.Second, true, ldap), true},
		{"d", note("p1", time.Second, true, radius), true}, // another set: logged again
		{"a", note("p1", 0, false, nil), false},            // no timestamp this time
		{"e", note("p1", 0, false, radius), true},
		{"e", note("p1", 0, false, nil), false},   // fixed
		{"e", note("p1", 0, false, radius), true}, // and back: logged again
	}
	for i, st := range steps {
		if got := h.record(st.id, st.n); got != st.wantLog {
			t.Fatalf("step %d (%s): record = %v, want %v", i, st.id, got, st.wantLog)
		}
	}
	for id, want := range map[string]time.Duration{"c": -5 * time.Second, "d": time.Second} {
		if got, ok := h.skew(id); !ok || got != want {
			t.Errorf("skew(%s) = %v, %v; want %v", id, got, ok, want)
		}
	}
	for _, id := range []string{"a", "b", "e", "unknown"} {
		if got, ok := h.skew(id); ok {
			t.Errorf("skew(%s) = %v; want none (no timestamp)", id, got)
		}
	}
	if got := h.maxSkew(); got != 5*time.Second {
		t.Errorf("maxSkew = %v, want 5s", got)
	}
	ids, notes := h.mismatchesIn("p1")
	if !slices.Equal(ids, []string{"d", "e"}) || len(notes) != 2 || notes[0].mismatches[0].Name != "radius" || !notes[0].hasSkew ||
		notes[0].skew != time.Second || notes[1].hasSkew || notes[0].host != "h" || !notes[0].seen.Equal(seen) {
		t.Errorf("mismatchesIn(p1) = %v, %+v", ids, notes)
	}
	if ids, _ := h.mismatchesIn("p2"); !slices.Equal(ids, []string{"c"}) {
		t.Errorf("mismatchesIn(p2) = %v, want [c]", ids)
	}
	if ids, _ := h.mismatchesIn("p3"); len(ids) != 0 {
		t.Errorf("mismatchesIn(p3) = %v, want none", ids)
	}
}
