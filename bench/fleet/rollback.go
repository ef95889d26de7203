package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/controlplane/store"
)

// The fleet rollback scenario (-rollback-only): a release that installs
// fine and regresses -regress-after later on every host. The simulated
// hosts report what poolagent's health watch reports: from the install on,
// the agent's health in every heartbeat (agents[].health, healthy), and
// -regress-after later {"ok": false} with the host WARNING. The server's
// own watch (rollout.watchMinutes) turns that into REGRESSION, which
// counts against the error budget; with rollout.rollbackOnHalt the halt
// sends every host that ran the release a revert job, which the simulated
// host finishes after -install, healthy again on 1.0.0.

// finished notes a job host i finished: a revert, or the bad release
// (whose regression comes later).
func (s *sim) finished(i int, j *activeJob) {
	if strings.HasPrefix(j.uuid, "revert-") {
		s.reverts.Add(1)
		storeMax(&s.lastRevert, time.Now().UnixNano())
		return
	}
	if s.sc.regressAfter <= 0 {
		return
	}
	s.badHosts.Add(1)
	s.jobsMu.Lock()
	s.regress[i] = s.sched.now() + int64(s.sc.regressAfter)
	s.jobsMu.Unlock()
}

// regress turns host i's agent unhealthy once its regression is due.
func (w *worker) regress(i int, h *hostState) {
	s := w.s
	if s.sc.regressAfter <= 0 {
		return
	}
	s.jobsMu.Lock()
	if at, ok := s.regress[i]; ok && at <= s.sched.now() {
		delete(s.regress, i)
		h.health = healthFailing
	}
	s.jobsMu.Unlock()
}

// waitRollback polls the update (get: its status and rollout) until its
// fleet rollback is Done, and records the figures: the halt is when the
// caller saw the update Failed.
func waitRollback(ctx context.Context, s *sim, res *rolloutResult, get func() (string, []byte, error)) error {
	halt := time.Now()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the rollback did not end before -timeout (%s; %d reverted)", s, s.reverts.Load())
		case <-time.After(500 * time.Millisecond):
		}
		_, raw, err := get()
		if err != nil {
			continue
		}
		var v struct {
			Rollback *struct {
				State string `json:"state"`
			} `json:"rollback"`
		}
		_ = json.Unmarshal(raw, &v)
		if v.Rollback == nil || v.Rollback.State != "Done" {
			continue
		}
		res.rollbackDone = time.Since(halt)
		res.rollbackState = string(raw)
		res.badHosts, res.reverted = s.badHosts.Load(), s.reverts.Load()
		if last := s.lastRevert.Load(); last > 0 {
			res.lastBack = time.Duration(last - halt.UnixNano())
		}
		return nil
	}
}

// publishRollback publishes 1.0.0 (what the hosts run, the revert's
// target) and 1.1.0 (the release that regresses).
func publishRollback(ctx context.Context, st store.Store, work, dataDir string, now time.Time) error {
	for k, v := range []string{"1.0.0", "1.1.0"} {
		art, sig := filepath.Join(work, "agent-"+v), filepath.Join(work, "agent-"+v+".minisig")
		if err := os.WriteFile(art, bytes.Repeat([]byte{'A' + byte(k)}, 4096), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(sig, []byte("untrusted comment: bench\nRWQ\ntrusted comment: bench\nx\n"), 0o644); err != nil {
			return err
		}
		if _, err := controlplane.PublishRelease(ctx, st, dataDir, controlplane.Publish{Name: "AD", Version: v, OS: "linux", Arch: "amd64",
			Channel: okta.ChannelGA, File: art, SignatureFile: sig}, now.Add(time.Duration(k)*time.Second)); err != nil && !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return nil
}

// runRollback is -rollback-only: the fleet rollback measurement.
func runRollback(ctx context.Context, bin, work string, o options, regressAfter time.Duration, guard, soak, watch int) error {
	f, err := setupWith(ctx, work, o.hosts, o.pg, publishRollback)
	if err != nil {
		return err
	}
	srv, err := startServer(ctx, bin, f.dir, o, o.pg)
	if err != nil {
		return err
	}
	defer stop(srv.cmd)
	sc := scenario{settings: fmt.Sprintf(`{"maxUnavailable":%d}`, guard),
		update: fmt.Sprintf(`{"targetVersion":"1.1.0","rollout":{"waves":[1,10,50,100],"soakMinutes":%d,"watchMinutes":%d,"errorBudget":{"percent":2},"rollbackOnHalt":true}}`,
			soak, watch),
		regressAfter: regressAfter, waitRollback: true, want: okta.JobFailed, stopOnPause: true}
	res, err := rollout(ctx, srv, f, o, sc)
	if err != nil {
		return err
	}
	fmt.Printf("| fleet rollback, %d hosts at a %s interval, install %s, a release that regresses %s after its install, waves [1, 10, 50, 100], soak %d min, watch %d min, error budget 2%%, maxUnavailable %d | measured |\n",
		o.hosts, o.interval, o.install, regressAfter, soak, watch, guard)
	fmt.Println("|---|---|")
	fmt.Printf("| hosts that ever ran the bad release | %d of %d (%.1f%%) |\n", res.badHosts, o.hosts, 100*float64(res.badHosts)/float64(o.hosts))
	if res.stoppedOnPause {
		fmt.Printf("| create to the halt (the update Paused within its budget, as polled every 0.5 s, then stopped with ?rollback=true) | %.1f s |\n", res.took.Seconds())
	} else {
		fmt.Printf("| create to the halt (the update Failed, as polled every 0.5 s) | %.1f s |\n", res.took.Seconds())
	}
	fmt.Printf("| rollout.halted | %s |\n", haltedOf(res.rollbackState))
	fmt.Printf("| halt to the last host back on 1.0.0 (its revert reported finished) | %.1f s |\n", res.lastBack.Seconds())
	fmt.Printf("| halt to rollout.rollback Done (as polled) | %.1f s |\n", res.rollbackDone.Seconds())
	fmt.Printf("| hosts reverted (simulator) | %d |\n", res.reverted)
	fmt.Printf("| jobs taken in all (updates and reverts) / heartbeat errors / 429s | %d / %d / %d |\n", res.jobs, res.errs, res.limited)
	fmt.Fprintf(os.Stderr, "rollout: %s\n", res.rollbackState)
	if res.reverted != res.badHosts {
		return fmt.Errorf("%d hosts ran the bad release but %d were reverted", res.badHosts, res.reverted)
	}
	return nil
}

// haltedOf is rollout.halted in an update's rollout document.
func haltedOf(rollout string) string {
	var v struct {
		Halted string `json:"halted"`
	}
	_ = json.Unmarshal([]byte(rollout), &v)
	return v.Halted
}
