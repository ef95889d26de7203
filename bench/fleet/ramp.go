package main

// -ramp: one rollout under a start-rate ramp (rollout.maxPerMinute,
// rollout.ramp; docs/rollout.md), and the start rate over time.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/poolagent/poolagent/api/okta"
)

// rampSample is the update's state at one poll.
type rampSample struct {
	at        time.Time
	perMinute int // rollout.currentPerMinute
	succeeded int
}

// rampBucket is how long one row of the ramp table covers.
const rampBucket = 20 * time.Second

// rampBench rolls out to hosts simulated hosts with the update's rollout
// extension set to rampJSON and prints the start rate over time, from the
// server's own dispatchedAt times, next to the rate the server reported.
func rampBench(ctx context.Context, bin, work string, o options, rampJSON string, hosts int) error {
	var policy map[string]any
	if err := json.Unmarshal([]byte(rampJSON), &policy); err != nil {
		return fmt.Errorf(`-ramp: want the update's rollout object, e.g. '{"maxPerMinute":120,"ramp":{"startPerMinute":6,"factor":2,"successesToRaise":5}}': %w`, err)
	}
	f, err := setup(ctx, filepath.Join(work, "ramp"), hosts, "")
	if err != nil {
		return err
	}
	srv, err := startServer(ctx, bin, f.dir, o, "")
	if err != nil {
		return err
	}
	defer stop(srv.cmd)
	get := func(path string, out any) error {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.base+path, nil)
		req.Header.Set("Authorization", "SSWS "+f.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
		}
		return json.Unmarshal(b, out)
	}

	// Poll the update's rate and successes once a second while it runs.
	var mu sync.Mutex
	var samples []rampSample
	pollCtx, stopPoll := context.WithCancel(ctx)
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			select {
			case <-pollCtx.Done():
				return
			case <-time.After(time.Second):
			}
			var us []okta.AgentPoolUpdate
			if err := get("/api/v1/agentPools/"+f.pool.ID+"/updates?agents=none", &us); err != nil || len(us) == 0 {
				continue
			}
			var v struct {
				CurrentPerMinute int `json:"currentPerMinute"`
			}
			_ = json.Unmarshal(us[0].Rollout, &v)
			mu.Lock()
			samples = append(samples, rampSample{at: time.Now(), perMinute: v.CurrentPerMinute, succeeded: us[0].AgentCounts[okta.InstanceSuccess]})
			mu.Unlock()
		}
	}()
	res, err := rollout(ctx, srv, f, o, scenario{update: `{"name":"ramp","targetVersion":"1.1.0","rollout":` + rampJSON + `}`, want: okta.JobSuccess})
	stopPoll()
	<-polled
	if err != nil {
		return err
	}
	var us []okta.AgentPoolUpdate
	if err := get("/api/v1/agentPools/"+f.pool.ID+"/updates", &us); err != nil || len(us) == 0 {
		return fmt.Errorf("read the update's agents: %v", err)
	}
	var starts []time.Time
	for _, a := range us[0].Agents {
		if a.DispatchedAt != nil {
			starts = append(starts, *a.DispatchedAt)
		}
	}
	if len(starts) == 0 {
		return fmt.Errorf("no agent of the update has a dispatchedAt")
	}
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	t0 := starts[0]
	fmt.Printf("| ramp %s, %d hosts, heartbeat interval %s, install %s: from the first start | hosts started | as a rate per minute | started in the trailing minute | currentPerMinute (server) | hosts succeeded |\n",
		strings.ReplaceAll(rampJSON, "|", `\|`), hosts, o.interval, o.install)
	fmt.Println("|---|---|---|---|---|---|")
	peak, peakBurst := 0, 0
	for i := range starts {
		minute, burst := 0, 0
		for _, s := range starts[:i+1] {
			if d := starts[i].Sub(s); d < time.Minute {
				minute++
				if d < 10*time.Second {
					burst++
				}
			}
		}
		peak, peakBurst = max(peak, minute), max(peakBurst, burst)
	}
	for from := time.Duration(0); t0.Add(from).Before(starts[len(starts)-1].Add(time.Nanosecond)); from += rampBucket {
		lo, hi := t0.Add(from), t0.Add(from+rampBucket)
		n, trailing := 0, 0
		for _, s := range starts {
			if !s.Before(lo) && s.Before(hi) {
				n++
			}
			if s.Before(hi) && hi.Sub(s) <= time.Minute {
				trailing++
			}
		}
		// The server's state at the bucket's end (the last poll before it).
		rate, ok := "-", "-"
		mu.Lock()
		for _, s := range samples {
			if s.at.After(hi) {
				break
			}
			rate, ok = fmt.Sprint(s.perMinute), fmt.Sprint(s.succeeded)
		}
		mu.Unlock()
		fmt.Printf("| %3.0f-%.0f s | %d | %.0f | %d | %s | %s |\n", from.Seconds(), (from + rampBucket).Seconds(), n,
			float64(n)*float64(time.Minute)/float64(rampBucket), trailing, rate, ok)
	}
	fmt.Printf("| all %d hosts started over %.0f s; whole rollout %.0f s | most in any minute: %d | most in any 10 s: %d | - | - | - |\n",
		len(starts), starts[len(starts)-1].Sub(t0).Seconds(), res.took.Seconds(), peak, peakBurst)
	fmt.Fprintf(os.Stderr, "ramp: %d heartbeats, %d jobs, %d 429s, %d errors\n", res.beats, res.jobs, res.limited, res.errs)
	return nil
}
