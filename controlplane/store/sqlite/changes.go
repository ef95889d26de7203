package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/poolagent/poolagent/controlplane/store"
)

// The change feed. SQLite has one writer at a time (BEGIN IMMEDIATE, in
// this process and in any other that opens the file), so a write
// transaction that takes the next revision from the 'rev' counter row
// commits before the next one can take its own: revisions become visible
// in commit order. A reader's transaction sees one snapshot, in which
// every row stamped with a revision up to the counter's value is
// committed.

// nextRev takes the change revision of a write transaction; every row
// the transaction writes is stamped with it.
func nextRev(ctx context.Context, tx *sql.Tx) (int64, error) {
	var rev int64
	if err := tx.QueryRowContext(ctx, `UPDATE counters SET value = value + 1 WHERE name = 'rev' RETURNING value`).Scan(&rev); err != nil {
		return 0, fmt.Errorf("take a change revision: %w", err)
	}
	return rev, nil
}

// clearRemoved drops the tombstones of an update's agents whose rows
// exist again: a key is listed either as a row or as a tombstone.
func clearRemoved(ctx context.Context, tx *sql.Tx, updateID string) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM removed_update_agents WHERE update_id = ? AND EXISTS (
		SELECT 1 FROM update_agents ua WHERE ua.update_id = removed_update_agents.update_id AND ua.agent_id = removed_update_agents.agent_id)`, updateID)
	if err != nil {
		return fmt.Errorf("update %s: clear removed agents: %w", updateID, err)
	}
	return nil
}

// Revision returns the newest committed change revision.
func (db *DB) Revision(ctx context.Context) (int64, error) {
	var rev int64
	if err := db.r.QueryRowContext(ctx, `SELECT value FROM counters WHERE name = 'rev'`).Scan(&rev); err != nil {
		return 0, fmt.Errorf("read the change revision: %w", err)
	}
	return rev, nil
}

// clientFeedCols are clientCols without the facts.
const clientFeedCols = `seq, id, pool_id, secret_hash, type, hostname, status, os, arch, agent_version, '', max(last_seen, coalesce(seen_at, 0)), created_at, rev, timezone`

// ChangesSince returns what was committed after revision since, from one
// read snapshot, using the rev indexes.
func (db *DB) ChangesSince(ctx context.Context, since int64, skip ...int64) (*store.Changes, error) {
	tx, err := db.r.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("changes since %d: %w", since, err)
	}
	defer tx.Rollback()
	ch := &store.Changes{}
	// The first read starts the snapshot.
	if err := tx.QueryRowContext(ctx, `SELECT value FROM counters WHERE name = 'rev'`).Scan(&ch.Rev); err != nil {
		return nil, fmt.Errorf("changes since %d: read the revision: %w", since, err)
	}
	if ch.Rev <= since {
		return ch, nil
	}
	args := []any{since, ch.Rev}
	for _, r := range skip {
		if r > since && r <= ch.Rev {
			args = append(args, r)
		}
	}
	window := ` WHERE rev > ? AND rev <= ?`
	if len(args) > 2 {
		window += ` AND rev NOT IN (` + placeholders(len(args)-2) + `)`
	}
	window += ` ORDER BY rev`
	each := func(what, query string, scan func(scanner) error) error {
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("changes since %d: %s: %w", since, what, err)
		}
		if err := eachRow(rows, scan); err != nil {
			return fmt.Errorf("changes since %d: %s: %w", since, what, err)
		}
		return nil
	}
	err = errors.Join(
		each("updates", `SELECT `+updateCols+` FROM updates`+window, func(r scanner) error {
			u, err := scanUpdate(r)
			if err == nil {
				ch.Updates = append(ch.Updates, u)
			}
			return err
		}),
		each("update agents", `SELECT `+updateAgentCols+` FROM update_agents`+window, func(r scanner) error {
			ua, err := scanUpdateAgent(r)
			if err == nil {
				ch.UpdateAgents = append(ch.UpdateAgents, ua)
			}
			return err
		}),
		each("agents", `SELECT `+agentCols+` FROM `+agentsFrom+window, func(r scanner) error {
			a, err := scanAgent(r)
			if err == nil {
				ch.Agents = append(ch.Agents, a)
			}
			return err
		}),
		each("clients", `SELECT `+clientFeedCols+` FROM `+clientsFrom+window, func(r scanner) error {
			c, err := scanClient(r)
			if err == nil {
				ch.Clients = append(ch.Clients, c)
			}
			return err
		}),
		each("deleted updates", `SELECT id FROM deleted_updates`+window, func(r scanner) error {
			var id string
			err := r.Scan(&id)
			if err == nil {
				ch.Deleted = append(ch.Deleted, id)
			}
			return err
		}),
		each("removed update agents", `SELECT update_id, agent_id, rev FROM removed_update_agents`+window, func(r scanner) error {
			var ua store.UpdateAgentRow
			err := r.Scan(&ua.UpdateID, &ua.AgentID, &ua.Rev)
			if err == nil {
				ch.RemovedUpdateAgents = append(ch.RemovedUpdateAgents, ua)
			}
			return err
		}),
	)
	if err != nil {
		return nil, err
	}
	return ch, nil
}

// WriteRollout writes the rollout engine's decisions in one transaction
// with one revision, each row only if its revision is still the one it
// carries, with statements prepared once for the batch.
func (db *DB) WriteRollout(ctx context.Context, w *store.RolloutWrite) (int, error) {
	if len(w.Updates) == 0 && len(w.Agents) == 0 {
		return 0, nil
	}
	var (
		rev          int64
		skipped      int
		wroteUpdates []int
		wroteAgents  []int
	)
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if rev, err = nextRev(ctx, tx); err != nil {
			return err
		}
		prepare := func(query string) (*sql.Stmt, error) {
			s, err := tx.PrepareContext(ctx, query)
			if err != nil {
				return nil, fmt.Errorf("write rollout: %w", err)
			}
			return s, nil
		}
		if len(w.Updates) > 0 {
			hdr, err := prepare(`UPDATE updates SET status = ?, resume_status = ?, rollout = ?, schedule_last = coalesce(?, schedule_last), modified_at = ?, rev = ?
				WHERE id = ? AND rev = ?`)
			if err != nil {
				return err
			}
			defer hdr.Close()
			for i, u := range w.Updates {
				var last sql.NullInt64
				if u.Schedule != nil {
					last = sql.NullInt64{Int64: ms(u.Schedule.LastUpdated), Valid: true}
				}
				res, err := hdr.ExecContext(ctx, u.Status, u.ResumeStatus, u.Rollout, last, ms(u.ModifiedAt), rev, u.ID, u.Rev)
				if err != nil {
					return fmt.Errorf("write rollout: update %s: %w", u.ID, err)
				}
				if n, err := res.RowsAffected(); err != nil {
					return fmt.Errorf("write rollout: update %s: %w", u.ID, err)
				} else if n == 0 {
					skipped++
					continue
				}
				wroteUpdates = append(wroteUpdates, i)
			}
		}
		var upd *sql.Stmt
		inserted := map[string]bool{}
		var fresh []int // rows to insert: the engine's dispatch
		for i := range w.Agents {
			a := &w.Agents[i]
			if a.Rev == 0 {
				fresh = append(fresh, i)
				continue
			}
			if upd == nil {
				if upd, err = prepare(`UPDATE update_agents SET position = ?, status = ?, message = ?, modified_at = ?, job_id = ?, job_seq = ?, dispatched_at = ?,
					progress = ?, phase = ?, from_version = ?, rev = ? WHERE update_id = ? AND agent_id = ? AND rev = ?`); err != nil {
					return err
				}
				defer upd.Close()
			}
			res, err := upd.ExecContext(ctx, a.Position, a.Status, a.Message, ms(a.ModifiedAt), a.JobID, a.JobSeq, ms(a.DispatchedAt), a.Progress, a.Phase,
				a.FromVersion, rev, a.UpdateID, a.AgentID, a.Rev)
			if err != nil {
				return fmt.Errorf("write rollout: agent %s of update %s: %w", a.AgentID, a.UpdateID, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("write rollout: agent %s of update %s: %w", a.AgentID, a.UpdateID, err)
			}
			if n == 0 {
				skipped++
				continue
			}
			wroteAgents = append(wroteAgents, i)
		}
		ok, err := insertUpdateAgents(ctx, tx, w.Agents, fresh, rev)
		if err != nil {
			return err
		}
		skipped += len(fresh) - len(ok)
		for _, i := range ok {
			inserted[w.Agents[i].UpdateID] = true
		}
		wroteAgents = append(wroteAgents, ok...)
		for id := range inserted {
			if err := clearRemoved(ctx, tx, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	// Only now that they are committed.
	for _, i := range wroteUpdates {
		w.Updates[i].Rev = rev
	}
	for _, i := range wroteAgents {
		w.Agents[i].Rev = rev
	}
	return skipped, nil
}

// insertRows is how many rows one INSERT of insertUpdateAgents carries: 13
// parameters each, well under SQLite's 32,766.
const insertRows = 256

// insertUpdateAgents inserts the rows w[i] for i in idx (a dispatch: rows
// the update did not have yet) as multi-row statements, and returns the
// indexes of those inserted. A row already there (inserted meanwhile) or
// of an update deleted meanwhile is left out. One statement per 256 rows
// instead of one per row: a dispatch to 300,000 hosts spent most of its
// write in statement overhead.
func insertUpdateAgents(ctx context.Context, tx *sql.Tx, w []store.UpdateAgentRow, idx []int, rev int64) ([]int, error) {
	if len(idx) == 0 {
		return nil, nil
	}
	// The update may have been deleted meanwhile: its rows are skipped
	// rather than failing the foreign key.
	exists := map[string]bool{}
	live := idx[:0:0]
	for _, i := range idx {
		id := w[i].UpdateID
		ok, seen := exists[id]
		if !seen {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM updates WHERE id = ?`, id).Scan(&one)
			switch {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return nil, fmt.Errorf("write rollout: update %s: %w", id, err)
			default:
				ok = true
			}
			exists[id] = ok
		}
		if ok {
			live = append(live, i)
		}
	}
	// In key order: consecutive rows land on the same pages of the
	// primary key's b-tree (the batch commits as one, so its order is free).
	slices.SortFunc(live, func(a, b int) int {
		return cmp.Or(cmp.Compare(w[a].UpdateID, w[b].UpdateID), cmp.Compare(w[a].AgentID, w[b].AgentID))
	})
	var full *sql.Stmt
	defer func() {
		if full != nil {
			full.Close()
		}
	}()
	var done []int
	args := make([]any, 0, 13*insertRows)
	for start := 0; start < len(live); start += insertRows {
		chunk := live[start:min(start+insertRows, len(live))]
		args = args[:0]
		for _, i := range chunk {
			a := &w[i]
			args = append(args, a.UpdateID, a.AgentID, a.Position, a.Status, a.Message, ms(a.ModifiedAt), a.JobID, a.JobSeq, ms(a.DispatchedAt),
				a.Progress, a.Phase, a.FromVersion, rev)
		}
		var rows *sql.Rows
		var err error
		if len(chunk) == insertRows {
			if full == nil {
				if full, err = tx.PrepareContext(ctx, insertUpdateAgentsSQL(insertRows)); err != nil {
					return nil, fmt.Errorf("write rollout: %w", err)
				}
			}
			rows, err = full.QueryContext(ctx, args...)
		} else {
			rows, err = tx.QueryContext(ctx, insertUpdateAgentsSQL(len(chunk)), args...)
		}
		if err != nil {
			return nil, fmt.Errorf("write rollout: insert agents' rows: %w", err)
		}
		type key struct{ upd, agent string }
		got := map[key]bool{}
		for rows.Next() {
			var k key
			if err := rows.Scan(&k.upd, &k.agent); err != nil {
				rows.Close()
				return nil, fmt.Errorf("write rollout: insert agents' rows: %w", err)
			}
			got[k] = true
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("write rollout: insert agents' rows: %w", err)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("write rollout: insert agents' rows: %w", err)
		}
		for _, i := range chunk {
			if len(got) == len(chunk) || got[key{w[i].UpdateID, w[i].AgentID}] {
				done = append(done, i)
			}
		}
	}
	return done, nil
}

// insertUpdateAgentsSQL is the INSERT of n update_agents rows that returns
// the keys of the rows it inserted.
func insertUpdateAgentsSQL(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO update_agents (update_id, agent_id, position, status, message, modified_at, job_id, job_seq, dispatched_at, progress,
		phase, from_version, rev) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?,?)")
	}
	b.WriteString(` ON CONFLICT (update_id, agent_id) DO NOTHING RETURNING update_id, agent_id`)
	return b.String()
}
