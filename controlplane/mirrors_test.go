package controlplane_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/controlplane/artifacts"
)

// countingPresigner is the data dir store with a presigner that numbers
// its URLs, to see when poolserver presigns again.
type countingPresigner struct {
	*artifacts.DataDir
	n atomic.Int64
}

func (c *countingPresigner) PresignGet(_ context.Context, sha string, expiry time.Duration) (string, error) {
	return fmt.Sprintf("https://store.example.com/releases/%s?expiry=%s&n=%d", sha, expiry, c.n.Add(1)), nil
}

// TestJobArtifactSources: a job's artifact lists the pool's mirrors, then
// the store's presigned URL; the URL is shared by replies until half its
// validity is gone, then renewed in the next reply.
func TestJobArtifactSources(t *testing.T) {
	store := &countingPresigner{}
	f := newFleetOpts(t, nil, []controlplane.Option{controlplane.WithArtifactStore(store)}, func(c *controlplane.Config) {
		c.Artifacts.PresignExpiry = controlplane.Duration{Duration: time.Minute}
	})
	store.DataDir = artifacts.NewDataDir(f.dataDir) // the fleet's data dir, known once it exists
	f.publish("1.1.0")
	if r := f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates/settings", f.manage,
		`{"artifactMirrors":["https://m1.example.com/pa/","http://10.1.2.3:8080"]}`); r.status != 201 {
		t.Fatalf("set artifactMirrors: %d %s", r.status, r.body)
	}
	h := f.host("dc1", "1.0.0")
	f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0"}`)
	f.tick()
	sources := func() []string {
		r := f.beat(h)
		if len(r.Body.Jobs) != 1 {
			t.Fatalf("%d jobs", len(r.Body.Jobs))
		}
		a := r.Body.Jobs[0].ManagedProcessConfiguration["ad-agent"].Artifact
		if !strings.HasSuffix(a.URL, "/artifacts/AD/1.1.0/linux/amd64") {
			t.Errorf("url = %q, want poolserver's own", a.URL)
		}
		return a.Mirrors
	}
	first := sources()
	if len(first) != 3 {
		t.Fatalf("mirrors = %q", first)
	}
	sha := first[0][strings.LastIndexByte(first[0], '/')+1:]
	want := []string{"https://m1.example.com/pa/" + sha, "http://10.1.2.3:8080/" + sha,
		"https://store.example.com/releases/" + sha + "?expiry=1m0s&n=1"}
	if strings.Join(first, " ") != strings.Join(want, " ") {
		t.Errorf("mirrors = %q\nwant %q", first, want)
	}
	f.clock.Advance(20 * time.Second)
	if got := sources(); got[2] != want[2] {
		t.Errorf("within half the expiry the URL changed: %q", got[2])
	}
	f.clock.Advance(11 * time.Second)
	if got := sources(); !strings.HasSuffix(got[2], "&n=2") {
		t.Errorf("past half the expiry the URL was not renewed: %q", got[2])
	}
}
