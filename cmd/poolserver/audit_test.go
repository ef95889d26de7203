package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/poolagent/poolagent/api/okta"
)

// TestAuditListCLI checks that the state-changing commands leave entries,
// that `audit list` prints them newest first, and that no secret they
// printed appears in the log.
func TestAuditListCLI(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	runOK := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if err := run(ctx, args, &out, &errb); err != nil {
			t.Fatalf("poolserver %s: %v %s", strings.Join(args, " "), err, errb.String())
		}
		return strings.TrimSpace(out.String())
	}
	tokSecret := runOK("token", "create", "--data-dir", dir, "--scope", "okta.agentPools.manage", "--name", "ci")
	pool := runOK("pool", "create", "--data-dir", dir, "--name", "AD", "--type", "AD")
	clientSecret := runOK("client", "create", "--data-dir", dir, "--pool", pool)
	enroll := runOK("enroll-token", "create", "--data-dir", dir, "--pool", pool)

	raw := runOK("audit", "list", "--data-dir", dir, "--json")
	var es []okta.AuditEntry
	if err := json.Unmarshal([]byte(raw), &es); err != nil {
		t.Fatalf("audit list --json: %v\n%s", err, raw)
	}
	want := []string{"enroll-token.create", "client.create", "pool.create", "token.create"}
	if len(es) != len(want) {
		t.Fatalf("audit list = %+v, want %v", es, want)
	}
	for i, w := range want {
		if es[i].Action != w || es[i].Actor.Type != "cli" || es[i].Actor.ID == "" {
			t.Errorf("entry %d = %+v, want %s by the CLI", i, es[i], w)
		}
	}
	if es[0].PoolID != pool || es[2].PoolID != pool || !strings.HasPrefix(es[3].Target, "tok") {
		t.Errorf("entries name the wrong objects: %+v", es)
	}
	table := runOK("audit", "list", "--data-dir", dir, "--limit", "2")
	if lines := strings.Split(table, "\n"); len(lines) != 3 || !strings.Contains(lines[1], "enroll-token.create") || !strings.HasPrefix(lines[0], "TIME") {
		t.Errorf("audit list --limit 2 =\n%s", table)
	}
	for _, secret := range []string{tokSecret, clientSecret, enroll} {
		if secret == "" || strings.Contains(raw, secret) || strings.Contains(table, secret) {
			t.Errorf("the audit log holds a secret the CLI printed (or the command printed none)")
		}
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"audit", "list", "--data-dir", dir, "--since", "yesterday"}, &out, &out); err == nil {
		t.Error("audit list --since yesterday succeeded")
	}
}
