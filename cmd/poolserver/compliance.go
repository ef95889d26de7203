package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/poolagent/poolagent/api/okta"
)

// cmdPoolsCompliance prints a pool's compliance: its versions, its agents
// counted by compliance state, and its non-compliant agents.
//
//	poolserver pools compliance <poolId> [--limit N] [--json]
func cmdPoolsCompliance(ctx context.Context, args []string, stdout io.Writer) error {
	var pool string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		pool, args = args[0], args[1:]
	}
	limit := 100
	c, rf, err := remoteCommand("pools compliance", args, func(fs *flag.FlagSet) {
		fs.StringVar(&pool, "pool", pool, "the pool's id (or the first argument)")
		fs.IntVar(&limit, "limit", limit, "list at most this many non-compliant agents (0: all)")
	})
	if err != nil {
		return err
	}
	if pool == "" {
		return usageError{"pools compliance: name the pool: poolserver pools compliance <poolId>"}
	}
	if limit < 0 {
		return usageError{fmt.Sprintf("pools compliance: --limit must be 0 or more, got %d", limit)}
	}
	pc, err := c.PoolCompliance(ctx, pool, limit)
	if err != nil {
		return err
	}
	if rf.json {
		return printJSON(stdout, pc)
	}
	return printCompliance(stdout, pc)
}

// printCompliance writes a pool's compliance as tables.
func printCompliance(w io.Writer, pc *okta.PoolCompliance) error {
	orNone := func(s string) string {
		if s == "" {
			return "none"
		}
		return s
	}
	fmt.Fprintf(w, "pool %s (%s, %s): latest version %s, minimal supported version %s\n\n", pc.PoolID, pc.PoolName, pc.AgentType,
		orNone(pc.LatestVersion), orNone(pc.MinimalSupportedVersion))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	n := pc.Counts
	fmt.Fprintln(tw, "LATEST\tUPDATING\tOUTDATED\tUNKNOWN\tBELOW MINIMUM\tUNREACHABLE\tDEGRADED\tTOTAL")
	fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", n.Latest, n.Updating, n.Outdated, n.Unknown, n.BelowMinimum, n.Unreachable, n.Degraded, n.Total)
	if err := tw.Flush(); err != nil {
		return err
	}
	if n.NonCompliant == 0 {
		_, err := fmt.Fprintf(w, "\nall %d agents are compliant\n", n.Total)
		return err
	}
	fmt.Fprintf(w, "\n%d non-compliant", n.NonCompliant)
	if len(pc.NonCompliant) < n.NonCompliant {
		fmt.Fprintf(w, " (the first %d; --limit 0 lists all)", len(pc.NonCompliant))
	}
	fmt.Fprintln(w, ":")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tVERSION\tSTATUS\tSTATES")
	for _, a := range pc.NonCompliant {
		states := make([]string, len(a.States))
		for i, s := range a.States {
			states[i] = string(s)
		}
		v := a.Version
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.ID, a.Name, v, a.OperationalStatus, strings.Join(states, ","))
	}
	return tw.Flush()
}
