// Command demo is `make demo`: the whole system doing its main job on one
// machine, with real processes on 127.0.0.1 and an embedded SQLite store.
//
// It builds poolserver, poolagent and the sample managed agent (v1.0.0,
// v1.1.0 and a v1.2.0 whose health check fails), generates a minisign key
// pair, signs and publishes the releases, starts poolserver and three
// poolagents (three simulated hosts, each with its own state dir and
// install root, enrolled with one-time tokens), rolls out v1.1.0 through
// the Agent Pools API inside a maintenance window that is open now, shows
// the progress per host, then rolls out v1.2.0 and shows every host rolled
// back to v1.1.0 with the reason. It cleans up after itself.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/internal/e2e"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	err := run(ctx)
	cancel()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "\ndemo failed:", err)
		os.Exit(1)
	}
}

func say(format string, args ...any) {
	fmt.Printf("\n\033[1m== "+format+"\033[0m\n", args...)
}

type demo struct {
	srv   *e2e.Server
	hosts []*e2e.Host
	pool  string
}

func run(ctx context.Context) error {
	start := time.Now()
	dir, err := os.MkdirTemp("", "poolagent-demo")
	if err != nil {
		return err
	}
	keep := os.Getenv("DEMO_KEEP") != ""
	if !keep {
		defer os.RemoveAll(dir)
	}
	say("Build poolserver, poolagent and the sample agent v1.0.0, v1.1.0, v1.2.0 (v1.2.0's health check fails)")
	bins, err := e2e.Build(ctx, dir, "0.9.0")
	if err != nil {
		return err
	}
	samples := map[string]string{}
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		if samples[v], err = bins.BuildSample(ctx, v, v != "1.2.0"); err != nil {
			return err
		}
	}

	say("Start poolserver on 127.0.0.1 with a fresh SQLite data dir")
	srv, err := e2e.StartServer(ctx, bins, dir)
	if err != nil {
		return err
	}
	d := &demo{srv: srv}
	defer d.cleanup()
	fmt.Println("poolserver:", srv.URL)

	say("Generate a minisign key pair; sign and publish AD 1.0.0 and 1.1.0 for %s/%s", runtime.GOOS, runtime.GOARCH)
	keys, err := srv.GenerateKeys(ctx, dir)
	if err != nil {
		return err
	}
	fmt.Println("public key pinned in every poolagent:", keys.Public)
	for _, v := range []string{"1.0.0", "1.1.0"} {
		if err := srv.Publish(ctx, keys, "AD", v, runtime.GOOS, runtime.GOARCH, samples[v], "GA"); err != nil {
			return err
		}
	}

	say("Create an AD pool and enroll three hosts with one-time tokens")
	if d.pool, err = srv.CLI(ctx, "pool", "create", "--name", "AD connectors", "--type", "AD"); err != nil {
		return err
	}
	for i := 1; i <= 3; i++ {
		h, err := e2e.NewHost(bins, dir, e2e.HostOptions{Name: fmt.Sprintf("dc%d", i), AgentType: "AD", SampleAgent: samples["1.0.0"],
			TrustedKey: keys.Public, ServerURL: srv.URL, ServerCA: srv.CA})
		if err != nil {
			return err
		}
		tok, err := srv.CLI(ctx, "enroll-token", "create", "--pool", d.pool, "--ttl", "10m")
		if err != nil {
			return err
		}
		if err := h.Enroll(ctx, srv.URL, tok); err != nil {
			return err
		}
		if err := h.Start(); err != nil {
			return err
		}
		d.hosts = append(d.hosts, h)
		fmt.Printf("%s: state %s, agent %s\n", h.Name, h.StateDir, h.Binary)
	}
	if err := e2e.Eventually(ctx, 30*time.Second, func() (bool, error) {
		var pools []okta.AgentPool
		if _, err := srv.API(ctx, "GET", "/api/v1/agentPools?poolType=AD", "", &pools); err != nil {
			return false, err
		}
		return len(pools) == 1 && len(pools[0].Agents) == 3 && pools[0].OperationalStatus == okta.OperationalStatusOperational, nil
	}); err != nil {
		return fmt.Errorf("hosts did not check in: %w", err)
	}
	d.table(ctx, "")

	say("Roll out AD 1.1.0: an update whose maintenance window (cron, UTC, 60 min) is open now")
	now := time.Now().UTC().Add(-time.Minute)
	cron := fmt.Sprintf("%d %d %d * *", now.Minute(), now.Hour(), now.Day())
	body := fmt.Sprintf(`{"name":"AD 1.1.0","targetVersion":"1.1.0","schedule":{"cron":%q,"timezone":"UTC","duration":60,"delay":0}}`, cron)
	fmt.Printf("$ curl --cacert %s -X POST %s/api/v1/agentPools/%s/updates -d '%s'\n", filepath.Base(srv.CA), srv.URL, d.pool, body)
	var u okta.AgentPoolUpdate
	if _, err := srv.API(ctx, "POST", "/api/v1/agentPools/"+d.pool+"/updates", body, &u); err != nil {
		return err
	}
	if err := d.watch(ctx, u.ID, okta.JobSuccess); err != nil {
		return err
	}
	d.table(ctx, u.ID)

	say("Publish AD 1.2.0, whose health check fails, and roll it out (continueOnError: every host tries)")
	if err := srv.Publish(ctx, keys, "AD", "1.2.0", runtime.GOOS, runtime.GOARCH, samples["1.2.0"], "GA"); err != nil {
		return err
	}
	if _, err := srv.API(ctx, "POST", "/api/v1/agentPools/"+d.pool+"/updates/settings", `{"continueOnError":true}`, nil); err != nil {
		return err
	}
	if _, err := srv.API(ctx, "POST", "/api/v1/agentPools/"+d.pool+"/updates", `{"name":"AD 1.2.0","targetVersion":"1.2.0"}`, &u); err != nil {
		return err
	}
	if err := d.watch(ctx, u.ID, okta.JobFailed); err != nil {
		return err
	}
	d.table(ctx, u.ID)

	say("What is on each host's disk")
	for _, h := range d.hosts {
		v, err := h.InstalledVersion(ctx)
		if err != nil {
			return fmt.Errorf("%s: the installed agent does not run: %w", h.Name, err)
		}
		fmt.Printf("%s: %s --version -> %s\n", h.Name, h.Binary, v)
	}
	say("Done in %s", time.Since(start).Round(time.Second))
	if keep {
		fmt.Println("kept:", dir)
	}
	return nil
}

// watch prints each host's phase and progress until the update reaches want.
func (d *demo) watch(ctx context.Context, id string, want okta.AgentUpdateJobStatus) error {
	last := ""
	return e2e.Eventually(ctx, 3*time.Minute, func() (bool, error) {
		u, err := d.srv.Update(ctx, d.pool, id)
		if err != nil {
			return false, err
		}
		var parts []string
		for i, h := range d.hosts {
			st, _ := h.Status(ctx)
			phase := "-"
			if st != nil {
				for _, j := range st.Jobs {
					phase = fmt.Sprintf("%s %d%%", firstOf(j.Phase, j.State), j.Progress)
				}
			}
			us := "-"
			if i < len(u.Agents) {
				us = string(u.Agents[i].UpdateStatus)
			}
			parts = append(parts, fmt.Sprintf("%s %-17s %-12s", h.Name, us, phase))
		}
		line := fmt.Sprintf("[%s] update %-10s | %s", time.Now().Format("15:04:05"), u.Status, strings.Join(parts, " | "))
		if line[11:] != last {
			fmt.Println(line)
			last = line[11:]
		}
		if u.Status == want {
			return true, nil
		}
		if u.Status == okta.JobFailed || u.Status == okta.JobCancelled {
			return false, fmt.Errorf("update ended %s", u.Status)
		}
		return false, nil
	})
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// table prints the hosts as the Agent Pools API shows them (and the
// update's view of them, when id is set).
func (d *demo) table(ctx context.Context, id string) {
	var pools []okta.AgentPool
	if _, err := d.srv.API(ctx, "GET", "/api/v1/agentPools?poolType=AD", "", &pools); err != nil || len(pools) == 0 {
		fmt.Println("list pools:", err)
		return
	}
	status := map[string]okta.Agent{}
	if id != "" {
		if u, err := d.srv.Update(ctx, d.pool, id); err == nil {
			for _, a := range u.Agents {
				status[a.ID] = a
			}
		}
	}
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tVERSION\tOPERATIONAL\tLATEST GA\tUPDATE STATUS\tMESSAGE")
	for _, a := range pools[0].Agents {
		latest := "-"
		if a.IsLatestGAedVersion != nil {
			latest = fmt.Sprint(*a.IsLatestGAedVersion)
		}
		s := status[a.ID]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, a.Version, a.OperationalStatus, latest, firstOf(string(s.UpdateStatus), "-"), s.UpdateMessage)
	}
	tw.Flush()
}

func (d *demo) cleanup() {
	for _, h := range d.hosts {
		h.KillAll()
	}
	_ = d.srv.Stop()
	_ = filepath.Join
}
