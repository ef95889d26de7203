package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/client"
)

// remoteFlags are the flags of every command that talks to a running
// server over its API.
type remoteFlags struct {
	server, token, ca string
	json              bool
}

func (r *remoteFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.server, "server", os.Getenv("POOLSERVER_URL"), "poolserver's URL (default $POOLSERVER_URL)")
	fs.StringVar(&r.token, "token", os.Getenv("POOLSERVER_TOKEN"), "an API token (default $POOLSERVER_TOKEN)")
	fs.StringVar(&r.ca, "ca", "", "PEM file of a private CA that signed the server's certificate")
	fs.BoolVar(&r.json, "json", false, "print the API's JSON instead of a table")
}

func (r *remoteFlags) client() (*client.Client, error) {
	var opts []client.Option
	if r.ca != "" {
		pem, err := os.ReadFile(r.ca)
		if err != nil {
			return nil, fmt.Errorf("read --ca: %w", err)
		}
		opts = append(opts, client.WithCA(pem))
	}
	c, err := client.New(r.server, r.token, opts...)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	return c, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// remoteCommand parses flags and builds the client; extra registers the
// command's own flags.
func remoteCommand(name string, args []string, extra func(fs *flag.FlagSet)) (*client.Client, *remoteFlags, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var rf remoteFlags
	rf.register(fs)
	if extra != nil {
		extra(fs)
	}
	if err := parseFlags(fs, args); err != nil {
		return nil, nil, err
	}
	c, err := rf.client()
	return c, &rf, err
}

func cmdPoolsList(ctx context.Context, args []string, stdout io.Writer) error {
	c, rf, err := remoteCommand("pools list", args, nil)
	if err != nil {
		return err
	}
	pools, err := c.ListPools(ctx)
	if err != nil {
		return err
	}
	if rf.json {
		return printJSON(stdout, pools)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tTYPE\tSTATUS\tAGENTS")
	for _, p := range pools {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", p.ID, p.Name, p.Type, p.OperationalStatus, len(p.Agents))
	}
	return tw.Flush()
}

func cmdAgentsList(ctx context.Context, args []string, stdout io.Writer) error {
	var pool string
	c, rf, err := remoteCommand("agents list", args, func(fs *flag.FlagSet) {
		fs.StringVar(&pool, "pool", "", "only this pool's agents")
	})
	if err != nil {
		return err
	}
	pools, err := c.ListPools(ctx)
	if err != nil {
		return err
	}
	agents := []okta.Agent{}
	found := pool == ""
	for _, p := range pools {
		if pool == "" || p.ID == pool {
			found = true
			agents = append(agents, p.Agents...)
		}
	}
	if !found {
		return fmt.Errorf("no agent pool %s on the server", pool)
	}
	if rf.json {
		return printJSON(stdout, agents)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPOOL\tTYPE\tVERSION\tSTATUS\tLAST SEEN")
	for _, a := range agents {
		seen := "-"
		if a.LastConnection != nil {
			seen = a.LastConnection.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Name, a.PoolID, a.Type, a.Version, a.OperationalStatus, seen)
	}
	return tw.Flush()
}

func cmdUpdatesList(ctx context.Context, args []string, stdout io.Writer) error {
	var pool string
	c, rf, err := remoteCommand("updates list", args, func(fs *flag.FlagSet) {
		fs.StringVar(&pool, "pool", "", "the pool (required)")
	})
	if err != nil {
		return err
	}
	if pool == "" {
		return usageError{"--pool is required"}
	}
	us, err := c.ListUpdates(ctx, pool)
	if err != nil {
		return err
	}
	if rf.json {
		return printJSON(stdout, us)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tTARGET\tSTATUS\tENABLED\tSCHEDULE\tPROGRESS")
	for i := range us {
		u := &us[i]
		sched := "-"
		if u.Schedule != nil {
			sched = u.Schedule.Cron + " " + u.Schedule.Timezone
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%s\t%s\n", u.ID, dash(u.Name), u.TargetVersion, u.Status, u.Enabled, sched, summary(u))
	}
	return tw.Flush()
}

// summary counts an update's agents by status: "2/3 done, 1 failed".
func summary(u *okta.AgentPoolUpdate) string {
	var done, failed, running int
	for _, a := range u.Agents {
		switch a.UpdateStatus {
		case okta.InstanceSuccess:
			done++
		case okta.InstanceFailed, okta.InstanceCancelled:
			failed++
		case okta.InstanceInProgress, okta.InstancePendingCompletion:
			running++
		}
	}
	s := fmt.Sprintf("%d/%d done", done, len(u.Agents))
	if running > 0 {
		s += fmt.Sprintf(", %d updating", running)
	}
	if failed > 0 {
		s += fmt.Sprintf(", %d failed", failed)
	}
	return s
}

func printUpdate(w io.Writer, u *okta.AgentPoolUpdate, asJSON bool) error {
	if asJSON {
		return printJSON(w, u)
	}
	fmt.Fprintf(w, "update %s (%s) of pool %s\n", u.ID, dash(u.Name), poolOf(u))
	fmt.Fprintf(w, "status %s, target %s, enabled %t, %s\n", u.Status, u.TargetVersion, u.Enabled, summary(u))
	if u.Schedule != nil {
		fmt.Fprintf(w, "schedule %q in %s", u.Schedule.Cron, u.Schedule.Timezone)
		if u.Schedule.Duration != nil {
			fmt.Fprintf(w, " for %d min", *u.Schedule.Duration)
		}
		fmt.Fprintln(w)
	}
	if u.NextWindow != nil {
		fmt.Fprintf(w, "window %s to %s\n", u.NextWindow.Start.Format(time.RFC3339), u.NextWindow.Finish.Format(time.RFC3339))
		for _, z := range u.NextWindow.Zones { // a schedule in each host's zone
			state := "closed"
			if z.Open {
				state = "open"
			}
			fmt.Fprintf(w, "  %s: %s to %s, %s, %d hosts to update\n", z.Timezone, z.Start.Format(time.RFC3339), z.Finish.Format(time.RFC3339), state, z.Hosts)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENT\tNAME\tVERSION\tSTATUS\tPROGRESS\tMESSAGE")
	for _, a := range u.Agents {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Name, a.Version, dash(string(a.UpdateStatus)), agentProgress(a), a.UpdateMessage)
	}
	return tw.Flush()
}

// agentProgress is an agent's reported progress and phase, "40% download",
// or "-" before its host was handed a job.
func agentProgress(a okta.Agent) string {
	if a.Progress == nil {
		return "-"
	}
	s := fmt.Sprintf("%d%%", *a.Progress)
	if a.Phase != "" {
		s += " " + a.Phase
	}
	return s
}

func poolOf(u *okta.AgentPoolUpdate) string {
	if len(u.Agents) > 0 && u.Agents[0].PoolID != "" {
		return u.Agents[0].PoolID
	}
	return "-"
}

// poolUpdateFlags registers --pool and --update.
func poolUpdateFlags(pool, update *string) func(fs *flag.FlagSet) {
	return func(fs *flag.FlagSet) {
		fs.StringVar(pool, "pool", "", "the pool (required)")
		fs.StringVar(update, "update", "", "the update (required)")
	}
}

func needPoolUpdate(pool, update string) error {
	if pool == "" || update == "" {
		return usageError{"--pool and --update are required"}
	}
	return nil
}

func cmdUpdatesShow(ctx context.Context, args []string, stdout io.Writer) error {
	var pool, update string
	c, rf, err := remoteCommand("updates show", args, poolUpdateFlags(&pool, &update))
	if err != nil {
		return err
	}
	if err := needPoolUpdate(pool, update); err != nil {
		return err
	}
	u, err := c.GetUpdate(ctx, pool, update)
	if err != nil {
		return err
	}
	return printUpdate(stdout, u, rf.json)
}

func cmdUpdatesCreate(ctx context.Context, args []string, stdout io.Writer) error {
	var pool, version, name, cron, tz string
	var duration, delay int
	c, rf, err := remoteCommand("updates create", args, func(fs *flag.FlagSet) {
		fs.StringVar(&pool, "pool", "", "the pool (required)")
		fs.StringVar(&version, "version", "", "the target version (required)")
		fs.StringVar(&name, "name", "", "a name for the update")
		fs.StringVar(&cron, "schedule-cron", "", `maintenance window start, e.g. "0 2 * * 2#1" (default: start now)`)
		fs.StringVar(&tz, "timezone", "", "the schedule's IANA time zone (default UTC), or \"host\": each host's own zone")
		fs.IntVar(&duration, "duration", 0, "minutes the window stays open")
		fs.IntVar(&delay, "delay", 0, "days after the release before a window may open")
	})
	if err != nil {
		return err
	}
	if pool == "" || version == "" {
		return usageError{"--pool and --version are required"}
	}
	nu := client.NewUpdate{Name: name, TargetVersion: version}
	if cron != "" {
		nu.Schedule = &okta.AutoUpdateSchedule{Cron: cron, Timezone: tz}
		if duration > 0 {
			nu.Schedule.Duration = &duration
		}
		if delay > 0 {
			nu.Schedule.Delay = &delay
		}
	} else if tz != "" || duration != 0 || delay != 0 {
		return usageError{"--timezone, --duration and --delay need --schedule-cron"}
	}
	u, err := c.CreateUpdate(ctx, pool, nu)
	if err != nil {
		return err
	}
	if rf.json {
		return printJSON(stdout, u)
	}
	_, err = fmt.Fprintln(stdout, u.ID)
	return err
}

func cmdUpdatesAction(a okta.UpdateAction) func(ctx context.Context, args []string, stdout io.Writer) error {
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		var pool, update string
		var rollback bool
		c, rf, err := remoteCommand("updates "+string(a), args, func(fs *flag.FlagSet) {
			poolUpdateFlags(&pool, &update)(fs)
			if a == okta.ActionStop {
				fs.BoolVar(&rollback, "rollback", false, "also roll back every host the update moved to the version it ran before")
			}
		})
		if err != nil {
			return err
		}
		if err := needPoolUpdate(pool, update); err != nil {
			return err
		}
		var u *okta.AgentPoolUpdate
		if rollback {
			u, err = c.StopWithRollback(ctx, pool, update)
		} else {
			u, err = c.Do(ctx, pool, update, a)
		}
		if err != nil {
			return err
		}
		if rf.json {
			return printJSON(stdout, u)
		}
		_, err = fmt.Fprintf(stdout, "%s %s\n", u.ID, u.Status)
		return err
	}
}

// ended reports whether an update has reached a final status.
func ended(s okta.AgentUpdateJobStatus) bool {
	return s == okta.JobSuccess || s == okta.JobFailed || s == okta.JobCancelled
}

// bar draws "[#######.............]  35%" for pct (0-100).
func bar(pct, width int) string {
	pct = min(max(pct, 0), 100)
	n := pct * width / 100
	return fmt.Sprintf("[%s%s] %3d%%", strings.Repeat("#", n), strings.Repeat(".", width-n), pct)
}

// agentPercent is how far an agent is: 100 once it ended (Success, Failed
// or Cancelled), else its host's reported progress (0 before a job).
func agentPercent(a okta.Agent) int {
	switch {
	case a.UpdateStatus == okta.InstanceSuccess || a.UpdateStatus == okta.InstanceFailed || a.UpdateStatus == okta.InstanceCancelled:
		return 100
	case a.Progress != nil:
		return *a.Progress
	}
	return 0
}

// progressBar draws the update's bar: the mean of its agents' percents.
func progressBar(u *okta.AgentPoolUpdate, width int) string {
	if len(u.Agents) == 0 {
		return bar(0, width)
	}
	sum := 0
	for _, a := range u.Agents {
		sum += agentPercent(a)
	}
	return bar(sum/len(u.Agents), width)
}

// watchBlock is what `updates watch` prints for one poll: the update's
// line, then one line per agent with its own bar, status and phase.
func watchBlock(u *okta.AgentPoolUpdate) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-10s %s\n", progressBar(u, 30), u.Status, summary(u))
	if line := rollbackLine(u); line != "" {
		fmt.Fprintln(&b, line)
	}
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, a := range u.Agents {
		name := a.Name
		if name == "" {
			name = a.ID
		}
		detail := a.Phase
		if a.UpdateMessage != "" && a.UpdateStatus != okta.InstanceInProgress && a.UpdateStatus != okta.InstancePendingCompletion {
			detail = a.UpdateMessage
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", name, bar(agentPercent(a), 20), dash(string(a.UpdateStatus)), detail)
	}
	_ = tw.Flush()
	return strings.TrimRight(b.String(), "\n")
}

func cmdUpdatesWatch(ctx context.Context, args []string, stdout io.Writer) error {
	var pool, update string
	var interval, timeout time.Duration
	c, rf, err := remoteCommand("updates watch", args, func(fs *flag.FlagSet) {
		poolUpdateFlags(&pool, &update)(fs)
		fs.DurationVar(&interval, "interval", 2*time.Second, "how often to poll")
		fs.DurationVar(&timeout, "timeout", time.Hour, "give up after this long")
	})
	if err != nil {
		return err
	}
	if err := needPoolUpdate(pool, update); err != nil {
		return err
	}
	if interval <= 0 || timeout <= 0 {
		return usageError{"--interval and --timeout must be positive"}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(interval)
	defer t.Stop()
	last := ""
	for {
		u, err := c.GetUpdate(ctx, pool, update)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("update %s did not end within --timeout %s", update, timeout)
			}
			return err
		}
		line := watchBlock(u)
		if rf.json {
			b, _ := json.Marshal(u)
			line = string(b)
		}
		if line != last {
			fmt.Fprintln(stdout, line)
			last = line
		}
		if ended(u.Status) && !rollingBack(u) {
			if u.Status != okta.JobSuccess {
				return fmt.Errorf("update %s ended %s: %s", update, u.Status, summary(u))
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("update %s did not end within --timeout %s (status %s, %s)", update, timeout, u.Status, summary(u))
		case <-t.C:
		}
	}
}

func cmdReleasesList(ctx context.Context, args []string, stdout io.Writer) error {
	c, rf, err := remoteCommand("releases list", args, nil)
	if err != nil {
		return err
	}
	rs, err := c.ListReleases(ctx)
	if err != nil {
		return err
	}
	if rf.json {
		return printJSON(stdout, rs)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tOS/ARCH\tCHANNEL\tSIZE\tPUBLISHED\tSHA256")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%s\t%d\t%s\t%s\n", r.Name, r.Version, r.OS, r.Arch, r.Channel, r.Size, r.PublishedAt.Format(time.RFC3339), r.SHA256)
		for _, p := range r.Patches { // indented under its release
			fmt.Fprintf(tw, "  patch from %s\t\t\t\t%d\t\t%s\n", p.FromVersion, p.Size, p.SHA256)
		}
	}
	return tw.Flush()
}
