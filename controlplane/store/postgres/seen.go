package postgres

import (
	"context"
	"fmt"
	"time"
)

// ClientsSeenSince returns the last-seen times of the clients heard from
// after t, by any replica: heartbeats that change nothing are not in the
// change feed, so the leading rollout engine learns from this which hosts
// other replicas still hear.
func (db *DB) ClientsSeenSince(ctx context.Context, t time.Time) (map[string]time.Time, error) {
	// Keep-alives are in the seen table, other heartbeats in the rows.
	rows, err := db.pool.Query(ctx, `SELECT seen_client, seen_at FROM seen WHERE seen_at > $1
		UNION ALL SELECT id, last_seen FROM clients WHERE last_seen > $1`, ms(t))
	if err != nil {
		return nil, fmt.Errorf("clients seen since %s: %w", t.Format(time.RFC3339), err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var id string
		var last int64
		if err := rows.Scan(&id, &last); err != nil {
			return nil, fmt.Errorf("clients seen since %s: %w", t.Format(time.RFC3339), err)
		}
		if at := fromMS(last); at.After(out[id]) {
			out[id] = at
		}
	}
	return out, rows.Err()
}
