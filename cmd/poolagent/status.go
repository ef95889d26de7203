package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/poolagent/poolagent/agent/localapi"
)

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// printStatus renders the daemon's state for a person.
func printStatus(w io.Writer, st localapi.Status, now time.Time) {
	conn := "connected"
	if !st.Connected {
		conn = "NOT CONNECTED"
		if st.LastError != "" {
			conn += ": " + st.LastError
		}
	}
	last := "never"
	if !st.LastHeartbeat.IsZero() {
		last = fmt.Sprintf("%s ago (%s)", ago(now.Sub(st.LastHeartbeat)), st.LastHeartbeat.Local().Format(time.DateTime))
	}
	fmt.Fprintf(w, "poolagent %s (pid %d, up %s)\n", st.Version, st.PID, ago(now.Sub(st.StartedAt)))
	fmt.Fprintf(w, "server:          %s  %s\n", st.Server, conn)
	pool := st.ClusterID
	if st.PoolType != "" {
		pool += " (" + st.PoolType + ")"
	}
	fmt.Fprintf(w, "client:          %s  pool %s\n", st.ClientID, pool)
	fmt.Fprintf(w, "last heartbeat:  %s, every %s\n", last, st.Interval)
	for _, wn := range st.Warnings {
		fmt.Fprintf(w, "WARNING:         %s\n", wn)
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENT\tTYPE\tVERSION\tUPDATE STATUS\tHEALTH\tMESSAGE")
	for _, a := range st.Agents {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, a.Type, dash(a.Version), dash(a.UpdateStatus), healthWord(a.Health, now), a.UpdateMessage)
	}
	tw.Flush()
	// Why a watched agent is failing, in full.
	for _, a := range st.Agents {
		if a.Health != nil && !a.Health.OK {
			fmt.Fprintf(w, "UNHEALTHY:       %s: %s (checked %s ago, every %s)\n", a.Name, a.Health.Reason, ago(now.Sub(a.Health.CheckedAt)), a.Health.Every)
		}
	}

	var cur *localapi.Job
	for i := range st.Jobs {
		j := &st.Jobs[i]
		if j.State == "PENDING" || j.State == "RUNNING" {
			cur = j
		}
	}
	fmt.Fprintln(w)
	if cur == nil {
		fmt.Fprintln(w, "current job:     none")
	} else {
		fmt.Fprintf(w, "current job:     %s  %s -> %s  %s/%s\n", cur.UUID, cur.Name, cur.Version, cur.State, cur.UpdateStatus)
		fmt.Fprintf(w, "progress:        %s %3d%%  %s\n", bar(cur.Progress, 30), cur.Progress, cur.Phase)
		win := "none (always open)"
		if cur.WindowStart != "" {
			win = cur.WindowStart + " .. " + dash(cur.WindowFinish)
		}
		open := "closed"
		if cur.WindowOpen {
			open = "open"
		}
		fmt.Fprintf(w, "window:          %s (%s, server time)\n", win, open)
		if cur.WaitingFor != "" {
			fmt.Fprintf(w, "waiting for:     %s\n", cur.WaitingFor)
		}
	}
	var done []localapi.Job
	for _, j := range st.Jobs {
		if j.State != "PENDING" && j.State != "RUNNING" {
			done = append(done, j)
		}
	}
	if len(done) > 0 {
		fmt.Fprintln(w, "\nrecent jobs:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  JOB\tAGENT\tVERSION\tSTATE\tFINISHED\tMESSAGE")
		for i := len(done) - 1; i >= 0 && i >= len(done)-5; i-- {
			j := done[i]
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s ago\t%s\n", j.UUID, j.Name, j.Version, j.State, ago(now.Sub(j.Finished)), j.UpdateMessage)
		}
		tw.Flush()
	}
	// The newest failure's diagnostics, in short; --json has them whole.
	for i := len(done) - 1; i >= 0; i-- {
		j := done[i]
		if j.Diagnostics == nil {
			continue
		}
		fmt.Fprintf(w, "\ndiagnostics of %s (%s %s):\n", j.UUID, j.Name, j.Version)
		if j.Diagnostics.Health != "" {
			fmt.Fprintf(w, "  health check:  %s\n", j.Diagnostics.Health)
		}
		if out := lastLines(j.Diagnostics.Output, 10); out != "" {
			fmt.Fprintln(w, "  last output (poolagent status --json has up to 64 KiB):")
			for _, l := range strings.Split(out, "\n") {
				fmt.Fprintf(w, "    %s\n", l)
			}
		}
		break
	}
}

// lastLines returns the last n lines of s, each cut to 200 characters.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if len(l) > 200 {
			lines[i] = l[:200] + "..."
		}
	}
	return strings.Join(lines, "\n")
}

// bar draws a progress bar of width cells.
func bar(pct, width int) string {
	pct = min(max(pct, 0), 100)
	n := pct * width / 100
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

func ago(d time.Duration) string {
	switch {
	case d < time.Second:
		return "0s"
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return d.Round(time.Minute).String()
	}
	return d.Round(time.Hour).String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// healthWord sums up the health watch's last result for the agents table.
func healthWord(h *localapi.Health, now time.Time) string {
	if h == nil {
		return "-"
	}
	word := "ok"
	if !h.OK {
		word = "FAILING"
	}
	word += " " + ago(now.Sub(h.CheckedAt)) + " ago"
	if h.Restarts != nil && *h.Restarts > 0 {
		word += fmt.Sprintf(", %d restarts", *h.Restarts)
	}
	return word
}
