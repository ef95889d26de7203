package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/controlplane/store"
)

// cmdAuditList prints the audit log, newest first.
func cmdAuditList(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("audit list", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "data directory")
	db := fs.String("db", "", dbUsage)
	asJSON := fs.Bool("json", false, "print JSON (the API's auditLog objects) instead of a table")
	limit := fs.Int("limit", 50, "how many entries to print, newest first")
	since := fs.String("since", "", "only entries at or after this RFC 3339 time")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *limit < 1 {
		return usageError{"--limit must be at least 1"}
	}
	q := store.AuditQuery{Limit: *limit}
	if *since != "" {
		t, err := time.Parse(time.RFC3339, *since)
		if err != nil {
			return usageError{fmt.Sprintf("--since %q: want an RFC 3339 time such as 2026-03-01T12:00:00Z", *since)}
		}
		q.Since = t
	}
	st, err := openStore(ctx, *dataDir, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	es, err := st.ListAudit(ctx, q)
	if err != nil {
		return fmt.Errorf("read the audit log: %w", err)
	}
	out := make([]okta.AuditEntry, len(es))
	for i, e := range es {
		out[i] = controlplane.AuditView(e)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tACTOR\tACTION\tPOOL\tUPDATE\tSTATUS\tTARGET\tDETAIL")
	for _, e := range out {
		actor := e.Actor.Type + ":" + e.Actor.ID
		if e.Actor.Name != "" {
			actor += " (" + e.Actor.Name + ")"
		}
		status := ""
		if e.StatusBefore != "" || e.StatusAfter != "" {
			status = e.StatusBefore + "->" + e.StatusAfter
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Published.Format(time.RFC3339), actor, e.Action, dash(e.PoolID),
			dash(e.UpdateID), dash(status), dash(e.Target), e.Detail)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
