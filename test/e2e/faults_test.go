package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/internal/e2e"
)

// TestServerKilledUnderHeartbeatLoad SIGKILLs poolserver while 32 clients
// send heartbeats that each change the host's state (a new agent version
// every time), restarts it, and checks that every heartbeat it answered
// 200 to is in the store: for each client, the version the API shows is at
// least the last version acknowledged. Then a rollout still works.
func TestServerKilledUnderHeartbeatLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := e2e.StartServer(ctx, bins, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	pool, err := srv.CLI(ctx, "pool", "create", "--name", "load", "--type", "LDAP")
	if err != nil {
		t.Fatal(err)
	}
	const clients = 32
	type client struct {
		id, secret string
		acked      atomic.Int64 // last version answered 200
	}
	cs := make([]*client, clients)
	for i := range cs {
		id := fmt.Sprintf("load-%02d", i)
		secret, err := srv.CLI(ctx, "client", "create", "--pool", pool, "--id", id)
		if err != nil {
			t.Fatal(err)
		}
		cs[i] = &client{id: id, secret: secret}
	}
	hb := func(c *client, v int64) (int, error) {
		body, _ := json.Marshal(sailpoint.StatusRequest{Status: sailpoint.StatusNormal, Body: sailpoint.ClientBody{
			Hostname: sailpoint.Flex(c.id), OS: "linux", Arch: "amd64",
			Agents: []sailpoint.AgentReport{{Name: "ldap-agent", Type: "LDAP", Version: fmt.Sprintf("1.0.%d", v)}}}})
		req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/beta/managed-clients/"+c.id+"/status", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+c.secret)
		resp, err := srv.Client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var acked atomic.Int64
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := int64(1); ; v++ {
				select {
				case <-stop:
					return
				default:
				}
				if code, err := hb(c, v); err == nil && code == 200 {
					c.acked.Store(v)
					acked.Add(1)
				} else {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	// Kill once the load is well under way.
	if err := e2e.Eventually(ctx, time.Minute, func() (bool, error) { return acked.Load() > 500, nil }); err != nil {
		t.Fatal(err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var pools []okta.AgentPool
	if _, err := srv.API(ctx, "GET", "/api/v1/agentPools?poolType=LDAP", "", &pools); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range pools[0].Agents {
		got[a.Name] = a.Version
	}
	lost := 0
	for _, c := range cs {
		want := c.acked.Load()
		var v int64
		if _, err := fmt.Sscanf(got[c.id], "1.0.%d", &v); err != nil || v < want {
			lost++
			t.Errorf("client %s: acknowledged version 1.0.%d, store has %q", c.id, want, got[c.id])
		}
	}
	t.Logf("%d heartbeats acknowledged before SIGKILL; %d clients lost an acknowledged write", acked.Load(), lost)
	if len(pools[0].Agents) != clients {
		t.Errorf("%d agents after restart, want %d", len(pools[0].Agents), clients)
	}
	// The store is usable: an update can be created and read back.
	var u okta.AgentPoolUpdate
	if _, err := srv.API(ctx, "POST", "/api/v1/agentPools/"+pool+"/updates", `{"targetVersion":"2.0.0"}`, &u); err != nil {
		t.Fatal(err)
	}
	if u.Status != okta.JobInProgress || len(u.Agents) != clients || !strings.HasPrefix(u.ID, "upd") {
		t.Errorf("update after restart: %+v", u)
	}
}
