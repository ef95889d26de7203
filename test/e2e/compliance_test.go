package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
)

// compliance runs `poolserver pools compliance` over the server's API, as
// an operator's workstation would, and returns its table (asJSON false) or
// its decoded --json object.
func (f *fleet) compliance(asJSON bool) (string, okta.PoolCompliance) {
	f.t.Helper()
	args := []string{"pools", "compliance", f.pool, "--server", f.srv.URL, "--token", f.srv.Token, "--ca", f.srv.CA}
	if asJSON {
		args = append(args, "--json")
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(f.ctx, bins.Poolserver, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		f.t.Fatalf("poolserver %s: %v: %s", strings.Join(args[:3], " "), err, stderr.String())
	}
	var pc okta.PoolCompliance
	if asJSON {
		if err := json.Unmarshal(stdout.Bytes(), &pc); err != nil {
			f.t.Fatalf("pools compliance --json: %v: %s", err, stdout.String())
		}
	}
	return stdout.String(), pc
}

// TestPoolComplianceFollowsARollout: real poolagents on 1.0.0 are outdated
// against the pool's latest 1.1.0; after the rollout they are compliant
// (the CLI and /metrics agree); a host whose poolagent stops turns
// unreachable.
func TestPoolComplianceFollowsARollout(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 2)
	f.api("POST", "/api/v1/agentPools/"+f.pool+"/updates/settings", `{"latestVersion":"1.1.0","minimalSupportedVersion":"1.0.0"}`, nil)
	if _, pc := f.compliance(true); pc.LatestVersion != "1.1.0" || pc.Counts != (okta.ComplianceCounts{Outdated: 2, Total: 2, NonCompliant: 2}) {
		t.Fatalf("before the rollout: %+v", pc)
	}

	id := f.create(`{"targetVersion":"1.1.0"}`)
	f.waitStatus(id, okta.JobSuccess)
	f.eventually(30*time.Second, "both hosts compliant", func() (bool, error) {
		_, pc := f.compliance(true)
		return pc.Counts == okta.ComplianceCounts{Latest: 2, Total: 2}, nil
	})
	if out, _ := f.compliance(false); !strings.Contains(out, "all 2 agents are compliant") {
		t.Errorf("pools compliance after the rollout:\n%s", out)
	}
	f.eventually(30*time.Second, "poolserver_pool_hosts latest 2", func() (bool, error) {
		v, err := f.srv.Metric(f.ctx, fmt.Sprintf(`poolserver_pool_hosts{pool=%q,state="latest"}`, f.pool))
		return v == 2, err
	})

	// dc2's poolagent stops: once it misses heartbeat.inactive_after
	// intervals it is unreachable, still on the latest version.
	if err := f.hosts[1].Stop(); err != nil {
		t.Fatal(err)
	}
	f.eventually(60*time.Second, "dc2 unreachable", func() (bool, error) {
		_, pc := f.compliance(true)
		return pc.Counts.Unreachable == 1 && len(pc.NonCompliant) == 1, nil
	})
	_, pc := f.compliance(true)
	if a := pc.NonCompliant[0]; a.Version != "1.1.0" || a.OperationalStatus != okta.OperationalStatusInactive ||
		fmt.Sprint(a.States) != "[latest unreachable]" || pc.Counts.Latest != 2 {
		t.Errorf("after dc2 stopped: %+v", pc)
	}
}
