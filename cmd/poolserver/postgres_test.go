package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/poolagent/poolagent/controlplane/store/postgres/pgtest"
)

// TestPostgresStore runs serve and the CLI on one PostgreSQL database
// (--db): the CLI's writes, made without a data dir, reach the server.
func TestPostgresStore(t *testing.T) {
	db := pgtest.NewSchema(t)
	addr := freeAddr(t)
	var logs bytes.Buffer
	srv := exec.Command(binary, "serve", "--data-dir", t.TempDir(), "--db", db, "--listen", addr)
	srv.Stderr = &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Process.Kill() //nolint:errcheck // best effort on failure paths
	base := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not come up: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	token := strings.TrimSpace(cli(t, "token", "create", "--db", db, "--scope", "okta.agentPools.read"))
	poolID := strings.TrimSpace(cli(t, "pool", "create", "--db", db, "--name", "AD east", "--type", "AD"))
	req, _ := http.NewRequest("GET", base+"/api/v1/agentPools", nil)
	req.Header.Set("Authorization", "SSWS "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var pools []struct{ ID, Name string }
	err = json.NewDecoder(resp.Body).Decode(&pools)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(pools) != 1 || pools[0].ID != poolID || pools[0].Name != "AD east" {
		t.Fatalf("list pools = %d %+v %v", resp.StatusCode, pools, err)
	}

	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := srv.Wait(); err != nil {
		t.Errorf("serve exited with %v after SIGTERM\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), `"store":"postgres"`) {
		t.Errorf("the log does not say the store is PostgreSQL:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), db) {
		t.Errorf("the log shows the database URL:\n%s", logs.String())
	}
}
