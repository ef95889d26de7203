package sqlite

import (
	"context"
	"fmt"
	"math"

	"github.com/poolagent/poolagent/controlplane/store"
)

const auditCols = `seq, id, at, actor_kind, actor_id, actor_name, action, pool_id, update_id, target, status_before, status_after, detail`

// AppendAudit records a change in the audit log and sets e.Seq.
func (db *DB) AppendAudit(ctx context.Context, e *store.AuditEntry) error {
	if e.ID == "" {
		e.ID = store.NewID("aud")
	}
	res, err := db.w.ExecContext(ctx, `INSERT INTO audit_log (id, at, actor_kind, actor_id, actor_name, action, pool_id, update_id, target, status_before, status_after, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, e.ID, ms(e.Time), e.ActorKind, e.ActorID, e.ActorName, e.Action, e.PoolID, e.UpdateID, e.Target,
		e.StatusBefore, e.StatusAfter, e.Detail)
	if err != nil {
		return fmt.Errorf("append audit entry %s: %w", e.Action, err)
	}
	e.Seq, err = res.LastInsertId()
	return err
}

// ListAudit returns one page of the audit log, newest first.
func (db *DB) ListAudit(ctx context.Context, q store.AuditQuery) ([]*store.AuditEntry, error) {
	before := q.BeforeSeq
	if before <= 0 {
		before = math.MaxInt64
	}
	rows, err := db.r.QueryContext(ctx, `SELECT `+auditCols+` FROM audit_log WHERE at >= ? AND seq < ? ORDER BY seq DESC LIMIT ?`,
		ms(q.Since), before, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("list audit log: %w", err)
	}
	return collect(rows, func(s scanner) (*store.AuditEntry, error) {
		var e store.AuditEntry
		var at int64
		if err := s.Scan(&e.Seq, &e.ID, &at, &e.ActorKind, &e.ActorID, &e.ActorName, &e.Action, &e.PoolID, &e.UpdateID, &e.Target,
			&e.StatusBefore, &e.StatusAfter, &e.Detail); err != nil {
			return nil, fmt.Errorf("list audit log: %w", err)
		}
		e.Time = fromMS(at)
		return &e, nil
	})
}
