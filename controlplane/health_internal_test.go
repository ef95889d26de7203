package controlplane

import (
	"testing"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
)

// TestAgentOperational: an agent's own health decides on a NORMAL or
// WARNING host; without it, or on a host in ERROR, the host's status does.
func TestAgentOperational(t *testing.T) {
	ok := &sailpoint.AgentHealth{OK: true}
	bad := &sailpoint.AgentHealth{OK: false, Reason: "health check failed: command \"check\": exit status 1"}
	noReason := &sailpoint.AgentHealth{OK: false}
	for _, tt := range []struct {
		host    sailpoint.ClientStatus
		health  *sailpoint.AgentHealth
		want    okta.OperationalStatus
		wantMsg string
	}{
		{sailpoint.StatusNormal, nil, okta.OperationalStatusOperational, ""},
		{sailpoint.StatusWarning, nil, okta.OperationalStatusDegraded, ""},
		{sailpoint.StatusNormal, ok, okta.OperationalStatusOperational, ""},
		{sailpoint.StatusWarning, ok, okta.OperationalStatusOperational, ""}, // another agent's failing watch
		{sailpoint.StatusWarning, bad, okta.OperationalStatusDegraded, bad.Reason},
		{sailpoint.StatusNormal, noReason, okta.OperationalStatusDegraded, "the host's health check of the agent failed"},
		{sailpoint.StatusError, bad, okta.OperationalStatusDisrupted, bad.Reason},
		{sailpoint.StatusError, ok, okta.OperationalStatusDisrupted, ""},
		{sailpoint.StatusConfiguring, ok, okta.OperationalStatusDegraded, ""},
	} {
		st, msg := agentOperational(tt.host, clientStatusToOperational(tt.host), tt.health)
		if st != tt.want || msg != tt.wantMsg {
			t.Errorf("host %s, health %+v: %s %q, want %s %q", tt.host, tt.health, st, msg, tt.want, tt.wantMsg)
		}
	}
}
