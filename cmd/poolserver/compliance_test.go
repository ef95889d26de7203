package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/controlplane/store"
)

// TestPoolsComplianceCommand runs `poolserver pools compliance` against an
// in-process poolserver whose hosts are on the latest version, outdated,
// below the minimum, degraded and never heard from: its table, --json,
// --limit and its errors.
func TestPoolsComplianceCommand(t *testing.T) {
	ctx := context.Background()
	st, _, hs, dir := inProcessServer(t)
	now := time.Now()
	token, _, err := controlplane.CreateToken(ctx, st, "viewer", []store.Scope{store.ScopeRead}, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	pool := &store.Pool{ID: store.NewID("pol"), Name: "AD connectors", Type: okta.AgentTypeAD, CreatedAt: now,
		Settings: store.Settings{MinimalSupportedVersion: "1.0.0"}}
	if err := st.CreatePool(ctx, pool); err != nil {
		t.Fatal(err)
	}
	file, sig := filepath.Join(dir, "agent"), filepath.Join(dir, "agent.minisig")
	os.WriteFile(file, []byte("#!/bin/sh\necho 1.1.0\n"), 0o755)
	os.WriteFile(sig, []byte("untrusted comment: signature\nRUQ...\ntrusted comment: name=AD version=1.1.0\nsig\n"), 0o644)
	if _, err := controlplane.PublishRelease(ctx, st, dir, controlplane.Publish{Name: "AD", Version: "1.1.0", OS: "linux", Arch: "amd64",
		Channel: okta.ChannelGA, File: file, SignatureFile: sig}, now); err != nil {
		t.Fatal(err)
	}
	beat := func(name, version string, status sailpoint.ClientStatus) {
		secret, c, err := controlplane.CreateClient(ctx, st, pool.ID, "", now)
		if err != nil {
			t.Fatal(err)
		}
		req := sailpoint.StatusRequest{Status: status, Timestamp: time.Now().UTC().Format(time.RFC3339),
			Body: sailpoint.ClientBody{Hostname: sailpoint.Flex(name), OS: "linux", Arch: "amd64",
				Agents: []sailpoint.AgentReport{{Name: "ad-agent", Type: "AD", Version: version}}}}
		b, _ := json.Marshal(req)
		hreq, _ := http.NewRequest("POST", hs.URL+"/beta/managed-clients/"+c.ID+"/status", bytes.NewReader(b))
		hreq.Header.Set("Authorization", "Bearer "+secret)
		hreq.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(hreq)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("heartbeat of %s: %d", name, resp.StatusCode)
		}
	}
	beat("dc1", "1.1.0", sailpoint.StatusNormal)
	beat("dc2", "1.1.0", sailpoint.StatusNormal)
	beat("dc3", "1.0.5", sailpoint.StatusNormal)
	beat("dc4", "0.9.0", sailpoint.StatusWarning)
	// An agent whose host was never heard from: unreachable.
	if err := st.CreateAgent(ctx, &store.Agent{ID: store.NewID("agt"), PoolID: pool.ID, Name: "dc5", Type: okta.AgentTypeAD,
		Version: "1.1.0", OperationalStatus: okta.OperationalStatusOperational, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}

	remote := []string{"--server", hs.URL, "--token", token}
	cli := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append(args, remote...), &out, &out)
		return out.String(), err
	}
	out, err := cli("pools", "compliance", pool.ID)
	if err != nil {
		t.Fatalf("pools compliance: %v\n%s", err, out)
	}
	for _, want := range []string{
		"pool " + pool.ID + " (AD connectors, AD): latest version 1.1.0, minimal supported version 1.0.0",
		"LATEST  UPDATING  OUTDATED  UNKNOWN  BELOW MINIMUM  UNREACHABLE  DEGRADED  TOTAL",
		"3       0         2         0        1              1            1         5",
		"3 non-compliant:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("pools compliance lacks %q:\n%s", want, out)
		}
	}
	lines := map[string]string{"dc3": "1.0.5    OPERATIONAL  outdated", "dc4": "0.9.0    DEGRADED     outdated,belowMinimum,degraded",
		"dc5": "1.1.0    INACTIVE     latest,unreachable"}
	for name, want := range lines {
		found := false
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, " "+name+" ") && strings.HasSuffix(strings.TrimSpace(l), want) {
				found = true
			}
		}
		if !found {
			t.Errorf("no line for %s ending %q:\n%s", name, want, out)
		}
	}
	if strings.Contains(out, " dc1 ") || strings.Contains(out, " dc2 ") {
		t.Errorf("compliant hosts listed:\n%s", out)
	}
	if testing.Verbose() {
		t.Logf("pools compliance:\n%s", out)
	}

	// --json is the API's object; --pool works as well as the argument.
	out, err = cli("pools", "compliance", "--pool", pool.ID, "--json")
	var pc okta.PoolCompliance
	if err != nil || json.Unmarshal([]byte(out), &pc) != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	want := okta.ComplianceCounts{Latest: 3, Outdated: 2, BelowMinimum: 1, Unreachable: 1, Degraded: 1, Total: 5, NonCompliant: 3}
	if pc.Counts != want || len(pc.NonCompliant) != 3 || pc.LatestVersion != "1.1.0" {
		t.Errorf("--json: %+v", pc)
	}
	// --limit follows the pages up to the limit and says what it left out.
	if out, err := cli("pools", "compliance", pool.ID, "--limit", "2"); err != nil ||
		!strings.Contains(out, "3 non-compliant (the first 2; --limit 0 lists all):") || strings.Contains(out, " dc5 ") {
		t.Errorf("--limit 2: %v\n%s", err, out)
	}

	if _, err := cli("pools", "compliance", "polNope"); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Errorf("unknown pool: %v", err)
	}
	var ue usageError
	if _, err := cli("pools", "compliance"); !errors.As(err, &ue) {
		t.Errorf("no pool: %v (want a usage error)", err)
	}
}
