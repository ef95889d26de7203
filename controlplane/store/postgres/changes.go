package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/poolagent/poolagent/controlplane/store"
)

// The change feed.
//
// A reader that remembers the last revision it saw must never miss a row
// committed later with a smaller one, so revisions must become visible in
// commit order. A sequence does not give that: two transactions can take
// 5 and 6 and commit 6 first, and a sequence's value is not even
// transactional (a reader could see 6 before the row stamped 6 is
// committed). So the revision is a row, counters 'rev', that every
// revision-stamping transaction increments as its FIRST statement
// (nextRev). The row lock that UPDATE takes is held until commit: the
// next transaction's UPDATE waits for it, then increments the committed
// value (READ COMMITTED re-reads the row). The stamping transactions are
// thereby serialized in revision order across connections and replicas,
// and a snapshot that shows the counter at V shows every row stamped
// with a revision up to V and none above; ChangesSince reads in one
// REPEATABLE READ snapshot. The counter row is the lock: an advisory lock
// before it would add nothing, and being per schema it never contends
// between stores in different schemas.
//
// Taken first, before any row lock, it cannot deadlock with the other
// stamping transactions; those that do not stamp (TouchClients,
// NextSequence, pools, tokens, audit) never wait for it. The cost is that
// stamping writes do not overlap: a WriteRollout of 300,000 rows holds
// heartbeats' job reports back while it runs.

// nextRev takes the change revision of a write transaction and with it
// the revision lock until the transaction ends; it must be the
// transaction's first statement.
func nextRev(ctx context.Context, tx pgx.Tx) (int64, error) {
	var rev int64
	if err := tx.QueryRow(ctx, `UPDATE counters SET value = value + 1 WHERE name = 'rev' RETURNING value`).Scan(&rev); err != nil {
		return 0, fmt.Errorf("take a change revision: %w", err)
	}
	return rev, nil
}

// clearRemoved drops the tombstones of an update's agents whose rows
// exist again: a key is listed either as a row or as a tombstone.
func clearRemoved(ctx context.Context, q querier, updateID string) error {
	_, err := q.Exec(ctx, `DELETE FROM removed_update_agents r WHERE r.update_id = $1 AND EXISTS (
		SELECT 1 FROM update_agents ua WHERE ua.update_id = r.update_id AND ua.agent_id = r.agent_id)`, updateID)
	if err != nil {
		return fmt.Errorf("update %s: clear removed agents: %w", updateID, err)
	}
	return nil
}

// agentColumns are agents' shares of updates as one array per column,
// for set-based statements over unnest.
type agentColumns struct {
	updateID, agentID, status, message, jobID, phase, fromVersion []string
	position, progress                                            []int32
	modifiedAt, jobSeq, dispatchedAt                              []int64
}

func (c *agentColumns) add(updateID string, ua *store.UpdateAgent) {
	c.updateID = append(c.updateID, updateID)
	c.agentID = append(c.agentID, ua.AgentID)
	c.position = append(c.position, int32(ua.Position))
	c.status = append(c.status, string(ua.Status))
	c.message = append(c.message, ua.Message)
	c.modifiedAt = append(c.modifiedAt, ms(ua.ModifiedAt))
	c.jobID = append(c.jobID, ua.JobID)
	c.jobSeq = append(c.jobSeq, ua.JobSeq)
	c.dispatchedAt = append(c.dispatchedAt, ms(ua.DispatchedAt))
	c.progress = append(c.progress, int32(ua.Progress))
	c.phase = append(c.phase, ua.Phase)
	c.fromVersion = append(c.fromVersion, ua.FromVersion)
}

func (c *agentColumns) len() int { return len(c.agentID) }

// args are the arrays in the order of agentColumnsFrom.
func (c *agentColumns) args() []any {
	return []any{c.updateID, c.agentID, c.position, c.status, c.message, c.modifiedAt, c.jobID, c.jobSeq, c.dispatchedAt, c.progress, c.phase, c.fromVersion}
}

// agentColumnsFrom is the FROM item "unnest(...) AS v(...)" over the
// arrays of agentColumns.args, numbered from $first, followed by extra
// columns given as "name type" (e.g. "idx int").
func agentColumnsFrom(first int, extra ...string) string {
	names := []string{"update_id", "agent_id", "position", "status", "message", "modified_at", "job_id", "job_seq", "dispatched_at", "progress", "phase", "from_version"}
	types := []string{"text", "text", "int", "text", "text", "bigint", "text", "bigint", "bigint", "int", "text", "text"}
	for _, e := range extra {
		name, typ, _ := strings.Cut(e, " ")
		names, types = append(names, name), append(types, typ)
	}
	arrays := make([]string, len(types))
	for i, typ := range types {
		arrays[i] = fmt.Sprintf("$%d::%s[]", first+i, typ)
	}
	return "unnest(" + strings.Join(arrays, ", ") + ") AS v(" + strings.Join(names, ", ") + ")"
}

// Revision returns the newest committed change revision.
func (db *DB) Revision(ctx context.Context) (int64, error) {
	var rev int64
	if err := db.pool.QueryRow(ctx, `SELECT value FROM counters WHERE name = 'rev'`).Scan(&rev); err != nil {
		return 0, fmt.Errorf("read the change revision: %w", err)
	}
	return rev, nil
}

// clientFeedCols are clientCols without the facts.
const clientFeedCols = `seq, id, pool_id, secret_hash, type, hostname, status, os, arch, agent_version, '', GREATEST(last_seen, COALESCE(seen_at, 0)), created_at, rev, timezone`

// ChangesSince returns what was committed after revision since, from one
// read-only REPEATABLE READ snapshot, using the rev indexes.
func (db *DB) ChangesSince(ctx context.Context, since int64, skip ...int64) (*store.Changes, error) {
	if skip == nil {
		skip = []int64{} // a NULL array would leave every row out
	}
	ch := &store.Changes{}
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		// The first statement takes the snapshot.
		if err := tx.QueryRow(ctx, `SELECT value FROM counters WHERE name = 'rev'`).Scan(&ch.Rev); err != nil {
			return fmt.Errorf("read the revision: %w", err)
		}
		if ch.Rev <= since {
			return nil
		}
		each := func(what, query string, scan func(pgx.Rows) error) error {
			rows, err := tx.Query(ctx, query, since, ch.Rev, skip)
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			defer rows.Close()
			for rows.Next() {
				if err := scan(rows); err != nil {
					return fmt.Errorf("%s: %w", what, err)
				}
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			return nil
		}
		// skip: the caller's own writes, left out.
		const window = ` WHERE rev > $1 AND rev <= $2 AND NOT (rev = ANY($3::bigint[])) ORDER BY rev`
		return errors.Join(
			each("updates", `SELECT `+updateCols+` FROM updates`+window, func(r pgx.Rows) error {
				u, err := scanUpdate(r)
				if err == nil {
					ch.Updates = append(ch.Updates, u)
				}
				return err
			}),
			each("update agents", `SELECT `+updateAgentCols+` FROM update_agents`+window, func(r pgx.Rows) error {
				ua, err := scanUpdateAgent(r)
				if err == nil {
					ch.UpdateAgents = append(ch.UpdateAgents, ua)
				}
				return err
			}),
			each("agents", `SELECT `+agentCols+` FROM `+agentsFrom+window, func(r pgx.Rows) error {
				a, err := scanAgent(r)
				if err == nil {
					ch.Agents = append(ch.Agents, a)
				}
				return err
			}),
			each("clients", `SELECT `+clientFeedCols+` FROM `+clientsFrom+window, func(r pgx.Rows) error {
				c, err := scanClient(r)
				if err == nil {
					ch.Clients = append(ch.Clients, c)
				}
				return err
			}),
			each("deleted updates", `SELECT id FROM deleted_updates`+window, func(r pgx.Rows) error {
				var id string
				err := r.Scan(&id)
				if err == nil {
					ch.Deleted = append(ch.Deleted, id)
				}
				return err
			}),
			each("removed update agents", `SELECT update_id, agent_id, rev FROM removed_update_agents`+window, func(r pgx.Rows) error {
				var ua store.UpdateAgentRow
				err := r.Scan(&ua.UpdateID, &ua.AgentID, &ua.Rev)
				if err == nil {
					ch.RemovedUpdateAgents = append(ch.RemovedUpdateAgents, ua)
				}
				return err
			}),
		)
	})
	if err != nil {
		return nil, fmt.Errorf("changes since %d: %w", since, err)
	}
	return ch, nil
}

// WriteRollout writes the rollout engine's decisions in one transaction
// with one revision, each row only if its revision is still the one it
// carries: one set-based statement each for the headers, the row updates
// and the row inserts, whatever the batch's size (arrays over unnest,
// RETURNING which rows were written).
func (db *DB) WriteRollout(ctx context.Context, w *store.RolloutWrite) (int, error) {
	if len(w.Updates) == 0 && len(w.Agents) == 0 {
		return 0, nil
	}
	// Keys listed twice: the first entry is written, the others skipped
	// (as a second compare-and-set on the same row would be).
	var (
		hdrIdx                               []int32
		hdrID, hdrStatus, hdrResume, hdrRoll []string
		hdrRev, hdrModified                  []int64
		hdrLast                              []*int64
	)
	seenHdr := make(map[string]bool, len(w.Updates))
	for i, u := range w.Updates {
		if seenHdr[u.ID] {
			continue
		}
		seenHdr[u.ID] = true
		var last *int64
		if u.Schedule != nil {
			v := ms(u.Schedule.LastUpdated)
			last = &v
		}
		hdrIdx, hdrID, hdrRev = append(hdrIdx, int32(i)), append(hdrID, u.ID), append(hdrRev, u.Rev)
		hdrStatus, hdrResume, hdrRoll = append(hdrStatus, string(u.Status)), append(hdrResume, string(u.ResumeStatus)), append(hdrRoll, u.Rollout)
		hdrLast, hdrModified = append(hdrLast, last), append(hdrModified, ms(u.ModifiedAt))
	}
	var upd, ins agentColumns
	var updIdx []int32
	var updRev []int64
	insIdx := map[[2]string]int{}
	seenRow := make(map[[2]string]bool, len(w.Agents))
	for i := range w.Agents {
		a := &w.Agents[i]
		key := [2]string{a.UpdateID, a.AgentID}
		if seenRow[key] {
			continue
		}
		seenRow[key] = true
		if a.Rev == 0 {
			ins.add(a.UpdateID, &a.UpdateAgent)
			insIdx[key] = i
		} else {
			upd.add(a.UpdateID, &a.UpdateAgent)
			updIdx, updRev = append(updIdx, int32(i)), append(updRev, a.Rev)
		}
	}

	var rev int64
	var wroteUpdates, wroteAgents []int
	err := db.inTxRetry(ctx, func(tx pgx.Tx) error {
		wroteUpdates, wroteAgents = wroteUpdates[:0], wroteAgents[:0]
		var err error
		if rev, err = nextRev(ctx, tx); err != nil {
			return err
		}
		collectIdx := func(what, sql string, args []any, into *[]int) error {
			rows, err := tx.Query(ctx, sql, args...)
			if err != nil {
				return fmt.Errorf("write rollout: %s: %w", what, err)
			}
			idx, err := pgx.CollectRows(rows, pgx.RowTo[int32])
			if err != nil {
				return fmt.Errorf("write rollout: %s: %w", what, err)
			}
			for _, i := range idx {
				*into = append(*into, int(i))
			}
			return nil
		}
		if len(hdrID) > 0 {
			if err := collectIdx("updates", `UPDATE updates u SET status = v.status, resume_status = v.resume_status, rollout = v.rollout,
				schedule_last = coalesce(v.schedule_last, u.schedule_last), modified_at = v.modified_at, rev = $1
				FROM unnest($2::int[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::bigint[])
					AS v(idx, id, old_rev, status, resume_status, rollout, schedule_last, modified_at)
				WHERE u.id = v.id AND u.rev = v.old_rev
				RETURNING v.idx`,
				[]any{rev, hdrIdx, hdrID, hdrRev, hdrStatus, hdrResume, hdrRoll, hdrLast, hdrModified}, &wroteUpdates); err != nil {
				return err
			}
		}
		if upd.len() > 0 {
			if err := collectIdx("agents", `UPDATE update_agents ua SET position = v.position, status = v.status, message = v.message, modified_at = v.modified_at,
				job_id = v.job_id, job_seq = v.job_seq, dispatched_at = v.dispatched_at, progress = v.progress, phase = v.phase, from_version = v.from_version, rev = $1
				FROM `+agentColumnsFrom(2, "idx int", "old_rev bigint")+`
				WHERE ua.update_id = v.update_id AND ua.agent_id = v.agent_id AND ua.rev = v.old_rev
				RETURNING v.idx`,
				append(append([]any{rev}, upd.args()...), updIdx, updRev), &wroteAgents); err != nil {
				return err
			}
		}
		if ins.len() > 0 {
			// An update deleted meanwhile gets nothing inserted (no
			// foreign key error).
			rows, err := tx.Query(ctx, `INSERT INTO update_agents (update_id, agent_id, position, status, message, modified_at, job_id, job_seq, dispatched_at,
				progress, phase, from_version, rev)
				SELECT v.update_id, v.agent_id, v.position, v.status, v.message, v.modified_at, v.job_id, v.job_seq, v.dispatched_at, v.progress, v.phase,
					v.from_version, $1
				FROM `+agentColumnsFrom(2)+`
				WHERE EXISTS (SELECT 1 FROM updates u WHERE u.id = v.update_id)
				ON CONFLICT (update_id, agent_id) DO NOTHING
				RETURNING update_id, agent_id`, append([]any{rev}, ins.args()...)...)
			if err != nil {
				return fmt.Errorf("write rollout: insert agents: %w", err)
			}
			keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
				var k [2]string
				err := r.Scan(&k[0], &k[1])
				return k, err
			})
			if err != nil {
				return fmt.Errorf("write rollout: insert agents: %w", err)
			}
			updates := map[string]bool{}
			for _, k := range keys {
				wroteAgents = append(wroteAgents, insIdx[k])
				updates[k[0]] = true
			}
			for id := range updates {
				if err := clearRemoved(ctx, tx, id); err != nil {
					return err
				}
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
	return len(w.Updates) + len(w.Agents) - len(wroteUpdates) - len(wroteAgents), nil
}
