package postgres

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/poolagent/poolagent/controlplane/store"
)

var _ store.Leader = (*DB)(nil)

// Lease is a held leader lock: a session-level advisory lock on one
// dedicated connection. It is lost when that connection dies (the server
// releases a dead session's locks), which Alive notices.
type Lease struct {
	mu   sync.Mutex
	conn *pgxpool.Conn
	name string
}

// TryLead takes the named leader lock if no other session holds it; it
// returns nil, nil when another replica leads. The lock is scoped to the
// current schema, so stores in different schemas of one database (tests)
// do not contend.
func (db *DB) TryLead(ctx context.Context, name string) (store.Lease, error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("leader lock %s: %w", name, err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext(current_schema() || ':' || $1))`, name).Scan(&ok); err != nil {
		conn.Release()
		return nil, fmt.Errorf("leader lock %s: %w", name, err)
	}
	if !ok {
		conn.Release()
		return nil, nil
	}
	return &Lease{conn: conn, name: name}, nil
}

// Alive reports whether the lease still holds: its session answers.
func (l *Lease) Alive(ctx context.Context) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return false
	}
	return l.conn.Ping(ctx) == nil
}

// Release gives the lock up.
func (l *Lease) Release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return
	}
	_, _ = l.conn.Exec(context.Background(), `SELECT pg_advisory_unlock(hashtext(current_schema() || ':' || $1))`, l.name)
	l.conn.Release()
	l.conn = nil
}
