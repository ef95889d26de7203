package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/controlplane/store/sqlite"
)

// sample is the server's resource use at one instant.
type sample struct {
	rss, fds, threads, goroutines, heap int64
}

func (s *server) sample(ctx context.Context) sample {
	out := sample{rss: s.rss(), threads: s.procStatus("Threads") >> 10}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.cmd.Process.Pid)); err == nil {
		out.fds = int64(len(ents))
	}
	// Goroutines and heap from /metrics when poolserver serves it.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/metrics", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 2 {
				continue
			}
			v, _ := strconv.ParseFloat(f[1], 64)
			switch f[0] {
			case "go_goroutines":
				out.goroutines = int64(v)
			case "go_memstats_heap_alloc_bytes":
				out.heap = int64(v)
			}
		}
		resp.Body.Close()
	}
	return out
}

// soak plays o.hosts hosts for d: an update to the other version every
// minute (alternating, downgrades allowed), and every 10 s 2% of the hosts
// stop heartbeating for 30 s (a killed agent) and come back. It reports
// the server's memory, goroutines, threads and file descriptors after a
// minute of warm-up and at the end: they should stay flat.
func soak(ctx context.Context, bin, work string, o options, d time.Duration) error {
	f, err := setup(ctx, work, o.hosts, "")
	if err != nil {
		return err
	}
	{ // a second release to alternate with
		st, err := sqlite.Open(ctx, f.dir)
		if err != nil {
			return err
		}
		art, sig := filepath.Join(work, "agent2"), filepath.Join(work, "agent2.minisig")
		os.WriteFile(art, bytes.Repeat([]byte("B"), 4096), 0o644)
		os.WriteFile(sig, []byte("untrusted comment: bench\nRWQ\ntrusted comment: bench\nx\n"), 0o644)
		_, err = controlplane.PublishRelease(ctx, st, f.dir, controlplane.Publish{Name: "AD", Version: "1.2.0", OS: "linux", Arch: "amd64",
			Channel: okta.ChannelGA, File: art, SignatureFile: sig}, time.Now())
		st.Close()
		if err != nil {
			return err
		}
	}
	srv, err := startServer(ctx, bin, f.dir, o, "")
	if err != nil {
		return err
	}
	defer stop(srv.cmd)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}
	api := func(method, path, body string) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, method, srv.base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "SSWS "+f.token)
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := api("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates/settings", `{"maxUnavailable":100,"continueOnError":true}`); err != nil || code != 201 {
		return fmt.Errorf("settings: %d %v", code, err)
	}
	sctx, stopAll := context.WithTimeout(ctx, d)
	defer stopAll()
	var done atomic.Int64
	// A host's state beside the simulator's: until when it is "killed"
	// (seconds on the simulation's clock) and the job reports it sends
	// with its next heartbeat (hosts with none have no entry).
	paused := make([]atomic.Int32, f.ids.n)
	var pendingMu sync.Mutex
	pending := map[int][]sailpoint.JobReport{}
	s := newSim(srv.base, f.ids, o.interval, o.install, goodRollout)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.runWith(sctx, func(w *worker, ctx context.Context, e event) {
			i := int(e.host)
			h := &s.hosts[i]
			h.next += int64(s.interval)
			defer func() { s.sched.push(max(h.next, s.sched.now()), i) }()
			if int64(paused[i].Load()) > s.sched.now()/int64(time.Second) {
				return
			}
			pendingMu.Lock()
			reports := pending[i]
			delete(pending, i)
			pendingMu.Unlock()
			var jobs []byte
			if reports != nil {
				jobs, _ = json.Marshal(reports)
			}
			if !w.beat(ctx, i, h, jobs) {
				return
			}
			reports = nil
			for _, j := range w.rep.Body.Jobs {
				switch j.State {
				case sailpoint.JobPending:
					s.jobsTaken.Add(1)
					h.version = s.internVersion(j.Config.Agent.Version, "")
					reports = append(reports, sailpoint.JobReport{UUID: j.UUID, State: sailpoint.JobFinished, Progress: 100})
					done.Add(1)
				case sailpoint.JobCancelled:
					reports = append(reports, sailpoint.JobReport{UUID: j.UUID, State: sailpoint.JobCancelled})
				}
			}
			if reports != nil {
				pendingMu.Lock()
				pending[i] = reports
				pendingMu.Unlock()
			}
		})
	}()
	// Kills: every 10 s, 2% of the hosts go silent for 30 s.
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(10 * time.Second)
		defer tk.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-tk.C:
			}
			for range f.ids.n / 50 {
				paused[rand.IntN(f.ids.n)].Store(int32((s.sched.now() + int64(30*time.Second)) / int64(time.Second)))
			}
		}
	}()
	// Rolling updates: every minute, the other version.
	wg.Add(1)
	updates := 0
	go func() {
		defer wg.Done()
		tk := time.NewTicker(time.Minute)
		defer tk.Stop()
		target := "1.1.0"
		for {
			body := fmt.Sprintf(`{"targetVersion":%q,"allowDowngrade":true}`, target)
			if code, err := api("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates", body); err == nil && code == 201 {
				updates++
			}
			if target == "1.1.0" {
				target = "1.2.0"
			} else {
				target = "1.1.0"
			}
			select {
			case <-sctx.Done():
				return
			case <-tk.C:
			}
		}
	}()
	warm := min(time.Minute, d/4)
	select {
	case <-sctx.Done():
	case <-time.After(warm):
	}
	start := srv.sample(ctx)
	t0 := time.Now()
	<-sctx.Done()
	wg.Wait()
	end := srv.sample(ctx)
	fmt.Printf("| soak: %d hosts for %s, an update a minute (%d), 2%% of hosts killed every 10 s | after %s warm-up | at the end | growth |\n",
		o.hosts, d, updates, warm)
	fmt.Println("|---|---|---|---|")
	row := func(name string, a, b int64, unit float64, suffix string) {
		fmt.Printf("| %s | %.1f%s | %.1f%s | %+.1f%s |\n", name, float64(a)/unit, suffix, float64(b)/unit, suffix, float64(b-a)/unit, suffix)
	}
	row("RSS", start.rss, end.rss, 1<<20, " MB")
	row("Go heap in use", start.heap, end.heap, 1<<20, " MB")
	row("goroutines", start.goroutines, end.goroutines, 1, "")
	row("threads", start.threads, end.threads, 1, "")
	row("open file descriptors", start.fds, end.fds, 1, "")
	fmt.Printf("\n%d heartbeats, %d jobs handed out and finished, %d errors, over %s measured\n", s.beats.Load(), done.Load(), s.errs.Load(), time.Since(t0).Round(time.Second))
	return nil
}
