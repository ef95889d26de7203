// Package postgres is the PostgreSQL backend of the control plane's store
// (github.com/jackc/pgx/v5), for running poolserver on a shared database,
// e.g. several replicas behind a load balancer.
//
// Its semantics follow the SQLite backend method by method: the same tables
// (migrations/*.sql mirror the SQLite ones), times as BIGINT Unix
// milliseconds, the same errors. Read-modify-write methods lock their row
// with SELECT ... FOR UPDATE (FOR NO KEY UPDATE where the key stays) inside
// one transaction, so they are atomic across connections and replicas.
// Writes that the change feed lists are serialized by its revision counter
// (see changes.go).
// Migrations run at Open under a PostgreSQL advisory lock, so replicas
// starting together apply each migration exactly once.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLockKey is the pg_advisory_lock key that serializes migrations
// of poolserver databases ("poolmigr" in ASCII).
const migrationLockKey int64 = 0x706f6f6c6d696772

// DB is the PostgreSQL store.
type DB struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*DB)(nil)

// WithSearchPath returns dsn with its search_path set to schema, for a
// URL or a key=value DSN: the store's tables then live in that schema.
func WithSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}

// Open connects to the PostgreSQL database that dsn names (a URL,
// postgres://user@host:5432/db?sslmode=..., or key=value pairs; pgxpool's
// pool_max_conns and friends are accepted) and applies the embedded
// migrations under an advisory lock.
func Open(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgconn's parse errors redact the password.
		return nil, fmt.Errorf("PostgreSQL DSN: %w", err)
	}
	where := describe(cfg)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL database %s: %w", where, err)
	}
	db := &DB{pool: pool}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("migrate PostgreSQL database %s: %w", where, err)
	}
	return db, nil
}

// describe names a database for error messages, without credentials.
func describe(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	if strings.HasPrefix(c.Host, "/") {
		return fmt.Sprintf("%q (socket %s, port %d)", c.Database, c.Host, c.Port)
	}
	return fmt.Sprintf("%q on %s:%d", c.Database, c.Host, c.Port)
}

// Close closes the connection pool.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// Ping reports whether the database answers.
func (db *DB) Ping(ctx context.Context) error {
	return db.pool.Ping(ctx)
}

// migrate applies the embedded migrations not yet recorded in
// schema_migrations, holding a session advisory lock so that replicas
// starting at once migrate one after the other.
func (db *DB) migrate(ctx context.Context) (err error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
		conn.Release()
		return fmt.Errorf("take the migration lock: %w", err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, uerr := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, migrationLockKey); uerr != nil {
			// Ending the session releases the lock.
			_ = conn.Hijack().Close(uctx)
			return
		}
		conn.Release()
	}()

	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return err
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		version := strings.TrimSuffix(path.Base(name), ".sql")
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`, version).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		// Without arguments Exec uses the simple protocol, which runs
		// every statement of the file.
		if _, err := tx.Exec(ctx, string(body)); err != nil {
			return fmt.Errorf("migration %s: %w", version, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, version, ms(time.Now())); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// querier is what a pool and a transaction have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// inTx runs fn in a read-committed transaction; fn takes the row locks it
// needs (SELECT ... FOR UPDATE).
func (db *DB) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// inTxRetry is inTx for transactions without caller callbacks: one that
// PostgreSQL aborts as a deadlock victim or on a serialization failure is
// run again (at most three times in all).
func (db *DB) inTxRetry(ctx context.Context, fn func(pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := db.inTx(ctx, fn)
		if err == nil || attempt == 3 || !isRetryable(err) || ctx.Err() != nil {
			return err
		}
	}
}

func isRetryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001") // deadlock_detected, serialization_failure
}

func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" // unique_violation
}

// stmt is one statement of a batch; what names it in an error.
type stmt struct {
	sql  string
	args []any
	what string
}

// execBatch sends stmts in one round trip and reports the first failure.
func execBatch(ctx context.Context, q querier, stmts []stmt) error {
	if len(stmts) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, s := range stmts {
		b.Queue(s.sql, s.args...)
	}
	br := q.SendBatch(ctx, b)
	for _, s := range stmts {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return fmt.Errorf("%s: %w", s.what, err)
		}
	}
	return br.Close()
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func strs[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

// Pools.

const poolCols = `seq, id, name, type, release_channel, continue_on_error, latest_version, minimal_supported_version, max_unavailable, min_operational, require_all_connected, artifact_mirrors, created_at`

func scanPool(s pgx.Row) (*store.Pool, error) {
	var p store.Pool
	var created int64
	var mirrors string
	if err := s.Scan(&p.Seq, &p.ID, &p.Name, &p.Type, &p.Settings.ReleaseChannel, &p.Settings.ContinueOnError,
		&p.Settings.LatestVersion, &p.Settings.MinimalSupportedVersion, &p.Settings.MaxUnavailable, &p.Settings.MinOperational, &p.Settings.RequireAllConnected, &mirrors, &created); err != nil {
		return nil, err
	}
	p.Settings.ArtifactMirrors = store.SplitURLs(mirrors)
	p.CreatedAt = fromMS(created)
	return &p, nil
}

// CreatePool inserts a pool and sets its Seq.
func (db *DB) CreatePool(ctx context.Context, p *store.Pool) error {
	p.SetDefaults()
	err := db.pool.QueryRow(ctx, `INSERT INTO pools (id, name, type, release_channel, continue_on_error, latest_version, minimal_supported_version, max_unavailable,
		min_operational, require_all_connected, artifact_mirrors, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING seq`, p.ID, p.Name, p.Type, p.Settings.ReleaseChannel, p.Settings.ContinueOnError,
		p.Settings.LatestVersion, p.Settings.MinimalSupportedVersion, p.Settings.MaxUnavailable, p.Settings.MinOperational, p.Settings.RequireAllConnected,
		store.JoinURLs(p.Settings.ArtifactMirrors), ms(p.CreatedAt)).Scan(&p.Seq)
	if err != nil {
		if isUnique(err) {
			return fmt.Errorf("create pool %s: %w", p.ID, store.ErrConflict)
		}
		return fmt.Errorf("create pool: %w", err)
	}
	return nil
}

// GetPool returns the pool with the given id.
func (db *DB) GetPool(ctx context.Context, id string) (*store.Pool, error) {
	p, err := scanPool(db.pool.QueryRow(ctx, `SELECT `+poolCols+` FROM pools WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("pool %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get pool %s: %w", id, err)
	}
	return p, nil
}

// ListPools returns one page of one type's pools.
func (db *DB) ListPools(ctx context.Context, q store.PoolQuery) ([]*store.Pool, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+poolCols+` FROM pools WHERE type = $1 AND seq > $2 ORDER BY seq LIMIT $3`, q.Type, q.AfterSeq, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("list pools: %w", err)
	}
	out, err := collect(rows, scanPool)
	if err != nil {
		return nil, fmt.Errorf("list pools: %w", err)
	}
	return out, nil
}

// ModifyPool applies fn to a pool inside one transaction, holding the
// pool's row lock.
func (db *DB) ModifyPool(ctx context.Context, id string, fn func(*store.Pool) error) (*store.Pool, error) {
	var p *store.Pool
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		// NO KEY: agents and updates referencing the pool can still be
		// inserted meanwhile.
		p, err = scanPool(tx.QueryRow(ctx, `SELECT `+poolCols+` FROM pools WHERE id = $1 FOR NO KEY UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("pool %s: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("get pool %s: %w", id, err)
		}
		if err := fn(p); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE pools SET name = $1, release_channel = $2, continue_on_error = $3, latest_version = $4, minimal_supported_version = $5, max_unavailable = $6,
			min_operational = $7, require_all_connected = $8, artifact_mirrors = $9 WHERE id = $10`,
			p.Name, p.Settings.ReleaseChannel, p.Settings.ContinueOnError, p.Settings.LatestVersion, p.Settings.MinimalSupportedVersion, p.Settings.MaxUnavailable,
			p.Settings.MinOperational, p.Settings.RequireAllConnected, store.JoinURLs(p.Settings.ArtifactMirrors), id); err != nil {
			return fmt.Errorf("save pool %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Agents.

const agentCols = `seq, id, pool_id, client_id, agent_name, name, type, version, GREATEST(last_connection, COALESCE(seen_at, 0)), operational_status, operational_message, is_hidden, created_at, rev`

// agentsFrom is the FROM of an agent read: an agent's last connection is
// the later of its row's and its host's keep-alives' (the seen table).
const agentsFrom = `agents LEFT JOIN seen ON seen_client = agents.client_id`

func scanAgent(s pgx.Row) (*store.Agent, error) {
	var a store.Agent
	var last, created int64
	if err := s.Scan(&a.Seq, &a.ID, &a.PoolID, &a.ClientID, &a.AgentName, &a.Name, &a.Type, &a.Version, &last, &a.OperationalStatus, &a.OperationalMessage, &a.IsHidden, &created, &a.Rev); err != nil {
		return nil, err
	}
	a.LastConnection, a.CreatedAt = fromMS(last), fromMS(created)
	a.Intern()
	return &a, nil
}

// CreateAgent inserts an agent and sets its Seq and Rev.
func (db *DB) CreateAgent(ctx context.Context, a *store.Agent) error {
	if a.OperationalStatus == "" {
		a.OperationalStatus = okta.OperationalStatusInactive
	}
	return db.inTx(ctx, func(tx pgx.Tx) error {
		rev, err := nextRev(ctx, tx)
		if err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `INSERT INTO agents (id, pool_id, client_id, agent_name, name, type, version, last_connection, operational_status, operational_message, is_hidden, created_at, rev)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING seq`, a.ID, a.PoolID, a.ClientID, a.AgentName, a.Name, a.Type, a.Version,
			ms(a.LastConnection), a.OperationalStatus, a.OperationalMessage, a.IsHidden, ms(a.CreatedAt), rev).Scan(&a.Seq)
		if err != nil {
			if isUnique(err) {
				return fmt.Errorf("create agent %s: %w", a.ID, store.ErrConflict)
			}
			return fmt.Errorf("create agent: %w", err)
		}
		a.Rev = rev
		return nil
	})
}

// ListAgents returns the agents of the given pools in creation order.
func (db *DB) ListAgents(ctx context.Context, poolIDs ...string) ([]*store.Agent, error) {
	if len(poolIDs) == 0 {
		return nil, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT `+agentCols+` FROM `+agentsFrom+` WHERE pool_id = ANY($1) ORDER BY seq`, poolIDs)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	out, err := collect(rows, scanAgent)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	return out, nil
}

// Updates.

const updateCols = `seq, id, pool_id, name, agent_type, enabled, notify_admin, reason, sort_order, status, resume_status, target_version,
	has_schedule, schedule_cron, schedule_timezone, schedule_delay, schedule_duration, schedule_last, all_agents, allow_downgrade, rollout, created_at, modified_at, rev`

func scanUpdate(s pgx.Row) (*store.Update, error) {
	var u store.Update
	var hasSchedule bool
	var sc store.Schedule
	var delay, duration *int
	var last, created, modified int64
	if err := s.Scan(&u.Seq, &u.ID, &u.PoolID, &u.Name, &u.AgentType, &u.Enabled, &u.NotifyAdmin, &u.Reason, &u.SortOrder, &u.Status,
		&u.ResumeStatus, &u.TargetVersion, &hasSchedule, &sc.Cron, &sc.Timezone, &delay, &duration, &last, &u.AllAgents, &u.AllowDowngrade, &u.Rollout, &created, &modified, &u.Rev); err != nil {
		return nil, err
	}
	if hasSchedule {
		sc.Delay, sc.Duration = delay, duration
		sc.LastUpdated = fromMS(last)
		u.Schedule = &sc
	}
	u.CreatedAt, u.ModifiedAt = fromMS(created), fromMS(modified)
	return &u, nil
}

// collect scans every row with scan (pgx.AppendRows, which closes rows);
// no rows is a nil slice, as with the SQLite backend.
func collect[T any](rows pgx.Rows, scan func(pgx.Row) (*T, error)) ([]*T, error) {
	return pgx.AppendRows([]*T(nil), rows, func(r pgx.CollectableRow) (*T, error) { return scan(r) })
}

func loadUpdateAgents(ctx context.Context, q querier, us ...*store.Update) error {
	if len(us) == 0 {
		return nil
	}
	byID := make(map[string]*store.Update, len(us))
	ids := make([]string, len(us))
	for i, u := range us {
		byID[u.ID] = u
		ids[i] = u.ID
		u.Agents = nil
	}
	rows, err := q.Query(ctx, `SELECT `+updateAgentCols+` FROM update_agents
		WHERE update_id = ANY($1) ORDER BY update_id, position`, ids)
	if err != nil {
		return fmt.Errorf("load update agents: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanUpdateAgent(rows)
		if err != nil {
			return fmt.Errorf("load update agents: %w", err)
		}
		byID[r.UpdateID].Agents = append(byID[r.UpdateID].Agents, r.UpdateAgent)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load update agents: %w", err)
	}
	return nil
}

const updateAgentCols = `update_id, agent_id, position, status, message, modified_at, job_id, job_seq, dispatched_at, progress, phase, from_version, rev`

func scanUpdateAgent(s pgx.Row) (store.UpdateAgentRow, error) {
	var r store.UpdateAgentRow
	var modified, dispatched int64
	if err := s.Scan(&r.UpdateID, &r.AgentID, &r.Position, &r.Status, &r.Message, &modified, &r.JobID, &r.JobSeq, &dispatched, &r.Progress, &r.Phase,
		&r.FromVersion, &r.Rev); err != nil {
		return r, err
	}
	r.ModifiedAt, r.DispatchedAt = fromMS(modified), fromMS(dispatched)
	r.Intern()
	return r, nil
}

func updateArgs(u *store.Update) []any {
	sc := u.Schedule
	has := sc != nil
	if sc == nil {
		sc = &store.Schedule{}
	}
	return []any{u.Name, u.AgentType, u.Enabled, u.NotifyAdmin, u.Reason, u.SortOrder, u.Status, u.ResumeStatus, u.TargetVersion,
		has, sc.Cron, sc.Timezone, sc.Delay, sc.Duration, ms(sc.LastUpdated), u.AllAgents, u.AllowDowngrade, u.Rollout, ms(u.ModifiedAt)}
}

// saveUpdateAgents writes the rows of u.Agents that differ from before
// (nil: all rows are new), so a tick that changes a few agents of a
// 10,000-agent update writes a few rows, stamped with revision rev, in one
// statement however many. Rows dropped from u.Agents are deleted and leave
// a tombstone. Every writer of update_agents holds the revision lock
// (nextRev), so the order in which rows are locked does not matter.
func saveUpdateAgents(ctx context.Context, tx pgx.Tx, u *store.Update, before []store.UpdateAgent, rev int64) error {
	old := make(map[string]store.UpdateAgent, len(before))
	for _, ua := range before {
		old[ua.AgentID] = ua
	}
	// A repeated agent: the last entry wins, as a second write would.
	last := make(map[string]int, len(u.Agents))
	for i := range u.Agents {
		last[u.Agents[i].AgentID] = i
	}
	var cols agentColumns
	added := false
	for i := range u.Agents {
		ua := &u.Agents[i]
		ua.Position = i
		prev, existed := old[ua.AgentID]
		prev.Rev = ua.Rev // compare the content, not the revision
		if existed && prev == *ua {
			continue
		}
		ua.Rev = rev
		if last[ua.AgentID] != i {
			continue
		}
		added = added || !existed
		cols.add(u.ID, ua)
	}
	var removed []string
	for id := range old {
		if _, ok := last[id]; !ok {
			removed = append(removed, id)
		}
	}
	if cols.len() > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO update_agents (update_id, agent_id, position, status, message, modified_at, job_id, job_seq, dispatched_at, progress, phase,
			from_version, rev)
			SELECT v.update_id, v.agent_id, v.position, v.status, v.message, v.modified_at, v.job_id, v.job_seq, v.dispatched_at, v.progress, v.phase, v.from_version, $1
			FROM `+agentColumnsFrom(2)+`
			ON CONFLICT (update_id, agent_id) DO UPDATE SET position = excluded.position, status = excluded.status, message = excluded.message,
				modified_at = excluded.modified_at, job_id = excluded.job_id, job_seq = excluded.job_seq, dispatched_at = excluded.dispatched_at,
				progress = excluded.progress, phase = excluded.phase, from_version = excluded.from_version, rev = excluded.rev`,
			append([]any{rev}, cols.args()...)...); err != nil {
			return fmt.Errorf("save agents of update %s: %w", u.ID, err)
		}
	}
	if len(removed) > 0 {
		if err := execBatch(ctx, tx, []stmt{
			{`DELETE FROM update_agents WHERE update_id = $1 AND agent_id = ANY($2)`, []any{u.ID, removed}, "remove agents from update " + u.ID},
			{`INSERT INTO removed_update_agents (update_id, agent_id, rev) SELECT $1, unnest($2::text[]), $3
				ON CONFLICT (update_id, agent_id) DO UPDATE SET rev = excluded.rev`, []any{u.ID, removed, rev}, "remove agents from update " + u.ID},
		}); err != nil {
			return err
		}
	}
	if added && before != nil {
		return clearRemoved(ctx, tx, u.ID)
	}
	return nil
}

// CreateUpdate inserts an update with its agents and sets its Seq and
// the Rev of the update and its agents.
func (db *DB) CreateUpdate(ctx context.Context, u *store.Update) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		rev, err := nextRev(ctx, tx)
		if err != nil {
			return err
		}
		args := append(append([]any{u.ID, u.PoolID, ms(u.CreatedAt)}, updateArgs(u)...), rev)
		err = tx.QueryRow(ctx, `INSERT INTO updates (id, pool_id, created_at, name, agent_type, enabled, notify_admin, reason, sort_order, status, resume_status, target_version,
			has_schedule, schedule_cron, schedule_timezone, schedule_delay, schedule_duration, schedule_last, all_agents, allow_downgrade, rollout, modified_at, rev)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23) RETURNING seq`, args...).Scan(&u.Seq)
		if err != nil {
			if isUnique(err) {
				return fmt.Errorf("create update %s: %w", u.ID, store.ErrConflict)
			}
			return fmt.Errorf("create update: %w", err)
		}
		u.Rev = rev
		// A reused id: the update's old tombstones are history now.
		if err := execBatch(ctx, tx, []stmt{
			{`DELETE FROM deleted_updates WHERE id = $1`, []any{u.ID}, "create update " + u.ID},
			{`DELETE FROM removed_update_agents WHERE update_id = $1`, []any{u.ID}, "create update " + u.ID},
		}); err != nil {
			return err
		}
		return saveUpdateAgents(ctx, tx, u, nil, rev)
	})
}

// getUpdate loads an update with its agents; lock is "" or a locking
// clause (FOR UPDATE, FOR NO KEY UPDATE).
// getUpdateHeader reads an update without its agents; lock is a locking
// clause ("FOR UPDATE") or "".
func getUpdateHeader(ctx context.Context, q querier, poolID, id, lock string) (*store.Update, error) {
	u, err := scanUpdate(q.QueryRow(ctx, `SELECT `+updateCols+` FROM updates WHERE pool_id = $1 AND id = $2 `+lock, poolID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("update %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get update %s: %w", id, err)
	}
	return u, nil
}

func getUpdate(ctx context.Context, q querier, poolID, id, lock string) (*store.Update, error) {
	u, err := getUpdateHeader(ctx, q, poolID, id, lock)
	if err != nil {
		return nil, err
	}
	return u, loadUpdateAgents(ctx, q, u)
}

// GetUpdateHeader returns one update of a pool without its agents.
func (db *DB) GetUpdateHeader(ctx context.Context, poolID, id string) (*store.Update, error) {
	return getUpdateHeader(ctx, db.pool, poolID, id, "")
}

// GetUpdate returns one update of a pool with its agents.
func (db *DB) GetUpdate(ctx context.Context, poolID, id string) (*store.Update, error) {
	// One snapshot for the update and its agents.
	var u *store.Update
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		u, err = getUpdate(ctx, tx, poolID, id, "")
		return err
	})
	return u, err
}

// ListUpdates returns a pool's updates in creation order.
func (db *DB) ListUpdates(ctx context.Context, poolID string, scheduled *bool) ([]*store.Update, error) {
	query := `SELECT ` + updateCols + ` FROM updates WHERE pool_id = $1`
	args := []any{poolID}
	if scheduled != nil {
		query += ` AND has_schedule = $2`
		args = append(args, *scheduled)
	}
	return db.listUpdates(ctx, query+` ORDER BY seq`, args...)
}

// listUpdates runs a query of updates and loads their agents, in one
// read-only snapshot.
func (db *DB) listUpdates(ctx context.Context, query string, args ...any) ([]*store.Update, error) {
	var out []*store.Update
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		if out, err = collect(rows, scanUpdate); err != nil {
			return err
		}
		return loadUpdateAgents(ctx, tx, out...)
	})
	if err != nil {
		return nil, fmt.Errorf("list updates: %w", err)
	}
	return out, nil
}

// ModifyUpdate applies fn to an update inside one transaction, holding
// the update's row lock.
func (db *DB) ModifyUpdate(ctx context.Context, poolID, id string, fn func(*store.Update) error) (*store.Update, error) {
	var u *store.Update
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		// The revision lock first (see nextRev), then the update's row.
		rev, err := nextRev(ctx, tx)
		if err != nil {
			return err
		}
		if u, err = getUpdate(ctx, tx, poolID, id, "FOR NO KEY UPDATE"); err != nil {
			return err
		}
		before := slices.Clone(u.Agents)
		if err := fn(u); err != nil {
			return err
		}
		args := append(updateArgs(u), rev, u.ID)
		if _, err := tx.Exec(ctx, `UPDATE updates SET name = $1, agent_type = $2, enabled = $3, notify_admin = $4, reason = $5, sort_order = $6, status = $7, resume_status = $8, target_version = $9,
			has_schedule = $10, schedule_cron = $11, schedule_timezone = $12, schedule_delay = $13, schedule_duration = $14, schedule_last = $15, all_agents = $16, allow_downgrade = $17, rollout = $18, modified_at = $19,
			rev = $20 WHERE id = $21`, args...); err != nil {
			return fmt.Errorf("save update %s: %w", id, err)
		}
		u.Rev = rev
		return saveUpdateAgents(ctx, tx, u, before, rev)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// DeleteUpdate deletes an update when check allows it.
func (db *DB) DeleteUpdate(ctx context.Context, poolID, id string, check func(*store.Update) error) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		// The revision lock first (see nextRev), then the update's row.
		rev, err := nextRev(ctx, tx)
		if err != nil {
			return err
		}
		u, err := getUpdate(ctx, tx, poolID, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(u); err != nil {
				return err
			}
		}
		what := "delete update " + id
		return execBatch(ctx, tx, []stmt{
			// update_agents rows go with it (ON DELETE CASCADE).
			{`DELETE FROM updates WHERE id = $1`, []any{id}, what},
			// The update's tombstone stands for its rows.
			{`DELETE FROM removed_update_agents WHERE update_id = $1`, []any{id}, what},
			{`INSERT INTO deleted_updates (id, pool_id, rev) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET pool_id = excluded.pool_id, rev = excluded.rev`,
				[]any{id, poolID, rev}, what},
		})
	})
}

// Tokens.

// CreateToken stores a token (its hash, never its secret).
func (db *DB) CreateToken(ctx context.Context, t *store.Token) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO tokens (id, name, hash, scopes, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		t.ID, t.Name, t.Hash, strings.Join(strs(t.Scopes), " "), ms(t.CreatedAt), ms(t.ExpiresAt))
	if err != nil {
		if isUnique(err) {
			return fmt.Errorf("create token: %w", store.ErrConflict)
		}
		return fmt.Errorf("create token: %w", err)
	}
	return nil
}

// TokenByHash returns the token whose secret hashes to hash.
func (db *DB) TokenByHash(ctx context.Context, hash []byte) (*store.Token, error) {
	var t store.Token
	var scopes string
	var created, expires int64
	err := db.pool.QueryRow(ctx, `SELECT id, name, hash, scopes, created_at, expires_at FROM tokens WHERE hash = $1`, hash).
		Scan(&t.ID, &t.Name, &t.Hash, &scopes, &created, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("token: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("look up token: %w", err)
	}
	for _, s := range strings.Fields(scopes) {
		t.Scopes = append(t.Scopes, store.Scope(s))
	}
	t.CreatedAt, t.ExpiresAt = fromMS(created), fromMS(expires)
	return &t, nil
}
