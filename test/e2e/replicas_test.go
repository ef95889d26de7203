package e2e_test

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store/postgres/pgtest"
	"github.com/poolagent/poolagent/internal/e2e"
)

// balancer spreads requests over backends at random, as a load balancer
// would, skipping backends marked down.
type balancer struct {
	mu    sync.Mutex
	backs []*url.URL
	down  map[int]bool
}

func (b *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	var up []int
	for i := range b.backs {
		if !b.down[i] {
			up = append(up, i)
		}
	}
	b.mu.Unlock()
	if len(up) == 0 {
		http.Error(w, "no backend", http.StatusBadGateway)
		return
	}
	httputil.NewSingleHostReverseProxy(b.backs[up[rand.IntN(len(up))]]).ServeHTTP(w, r)
}

// TestTwoReplicasOnPostgreSQL runs two poolservers on one PostgreSQL
// database behind a random load balancer: heartbeats and lifecycle actions
// go to both. The leader is killed mid-rollout; the other takes over and
// the rollout completes, with exactly one job per host.
func TestTwoReplicasOnPostgreSQL(t *testing.T) {
	dsn := pgtest.NewSchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	data := filepath.Join(dir, "shared-data") // artifacts: storage both replicas share
	a, err := e2e.StartReplica(ctx, bins, dir, data, dsn, "replica-a")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	// Let a take the leader lock first, so killing it is killing the leader.
	if err := e2e.Eventually(ctx, 20*time.Second, func() (bool, error) {
		return strings.Contains(readFile(a.Log), "this replica leads"), nil
	}); err != nil {
		t.Fatal("replica a never led:", err)
	}
	b, err := e2e.StartReplica(ctx, bins, dir, data, dsn, "replica-b")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	if strings.Contains(readFile(b.Log), "this replica leads") {
		t.Fatal("both replicas lead")
	}
	ua, _ := url.Parse(a.URL)
	ub, _ := url.Parse(b.URL)
	lb := &balancer{backs: []*url.URL{ua, ub}, down: map[int]bool{}}
	front := &http.Server{Handler: lb}
	addr, _ := e2e.FreeAddr()
	go func() { _ = listenAndServe(front, addr) }()
	defer front.Close()
	if err := e2e.WaitHTTP(ctx, "http://"+addr+"/healthz", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// Drive everything through the balancer.
	srv := *a
	srv.URL = "http://" + addr
	f := &fleet{t: t, ctx: ctx, srv: &srv}
	t.Cleanup(func() {
		for _, h := range f.hosts {
			h.KillAll()
		}
	})
	if f.keys, err = a.GenerateKeys(ctx, dir); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.0.0", "1.1.0"} {
		if err := a.Publish(ctx, f.keys, "AD", v, runtime.GOOS, runtime.GOARCH, samples[v], "GA"); err != nil {
			t.Fatal(err)
		}
	}
	if f.pool, err = a.CLI(ctx, "pool", "create", "--name", "ha", "--type", "AD"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"dc1", "dc2", "dc3"} {
		f.addHost(n, "")
	}
	f.waitAgents(3)

	id := f.create(`{"targetVersion":"1.1.0"}`)
	// Lifecycle actions through the balancer land on either replica.
	f.api("POST", "/api/v1/agentPools/"+f.pool+"/updates/"+id+"/pause", "", nil)
	f.api("POST", "/api/v1/agentPools/"+f.pool+"/updates/"+id+"/resume", "", nil)
	f.eventually(60*time.Second, "first host done", func() (bool, error) { return count(f.update(id), okta.InstanceSuccess) >= 1, nil })
	lb.mu.Lock()
	lb.down[0] = true
	lb.mu.Unlock()
	if err := a.Kill(); err != nil {
		t.Fatal(err)
	}
	u := f.waitStatus(id, okta.JobSuccess)
	if count(u, okta.InstanceSuccess) != 3 {
		t.Errorf("agents = %+v", u.Agents)
	}
	if !strings.Contains(readFile(b.Log), "this replica leads") {
		t.Error("replica b never took over the leader lock")
	}
	if got := strings.Join(f.versions(), ","); got != "1.1.0,1.1.0,1.1.0" {
		t.Errorf("installed = %s", got)
	}
	// Exactly once per host: each host installed one job for 1.1.0.
	for _, h := range f.hosts {
		st, err := h.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		jobs := map[string]bool{}
		for _, j := range st.Jobs {
			if j.Version == "1.1.0" && j.State == "FINISHED" {
				jobs[j.UUID] = true
			}
		}
		if len(jobs) > 1 {
			t.Errorf("%s ran %d jobs for 1.1.0: %+v", h.Name, len(jobs), st.Jobs)
		}
		if n := strings.Count(h.LogTail(1<<20), `"msg":"installing inside the maintenance window"`); n != 1 {
			t.Errorf("%s started %d installs, want exactly 1", h.Name, n)
		}
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func listenAndServe(s *http.Server, addr string) error {
	s.Addr = addr
	return s.ListenAndServe()
}
