// Package sqlite is the embedded SQLite backend of the control plane's
// store (pure Go: modernc.org/sqlite, no cgo).
//
// The database runs in WAL mode so readers never block the writer and the
// poolserver CLI can write while a server runs. Writes go through one
// connection whose transactions begin IMMEDIATE (no lock-upgrade deadlocks);
// reads use a small pool of connections.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrations embed.FS

// FileName is the database file inside a data directory.
const FileName = "poolserver.db"

// DB is the SQLite store.
type DB struct {
	w  *sql.DB // one connection, BEGIN IMMEDIATE
	r  *sql.DB // readers
	hb *hbStmts
}

var _ store.Store = (*DB)(nil)

// Open opens (creating if needed) the database in dataDir and applies the
// embedded migrations.
func Open(ctx context.Context, dataDir string) (*DB, error) {
	return OpenFile(ctx, filepath.Join(dataDir, FileName))
}

// pragmas apply to every connection. Statement journals (an INSERT ...
// ON CONFLICT, a multi-row UPDATE) stay in memory instead of a temporary
// file written with a syscall a page (a third of the rollout engine's
// write CPU).
var pragmas = []string{"journal_mode(WAL)", "busy_timeout(10000)", "foreign_keys(1)", "synchronous(NORMAL)",
	"temp_store(MEMORY)"}

// writerCacheKiB is the writing connection's page cache.
var writerCacheKiB = 32 << 10

// OpenFile opens the database at path and applies the embedded migrations.
func OpenFile(ctx context.Context, path string) (*DB, error) {
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	dsn := "file:" + path + "?" + q.Encode()
	// The writer's page cache holds a whole rollout batch's dirty pages
	// (its rows land at random places of five b-trees): with SQLite's
	// default 2 MB it spilled them to the WAL mid-transaction.
	w, err := sql.Open("sqlite", dsn+"&_txlock=immediate&_pragma="+url.QueryEscape("cache_size(-"+strconv.Itoa(writerCacheKiB)+")"))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	db := &DB{w: w, r: r}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate database %s: %w", path, err)
	}
	if db.hb, err = prepareHeartbeat(ctx, db.w); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Close closes the database.
func (db *DB) Close() error {
	if db.hb != nil {
		db.hb.close()
	}
	return errors.Join(db.r.Close(), db.w.Close())
}

// Ping reports whether the database answers.
func (db *DB) Ping(ctx context.Context) error {
	return db.r.PingContext(ctx)
}

func (db *DB) migrate(ctx context.Context) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return err
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		version := strings.TrimSuffix(filepath.Base(name), ".sql")
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("migration %s: %w", version, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, ms(time.Now())); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// inTx runs fn in a write transaction.
func (db *DB) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
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

func isUnique(err error) bool {
	var se *sqlite3.Error
	return errors.As(err, &se) && (se.Code() == sqlite3lib.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3lib.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// scanner is a row to scan: *sql.Row or *sql.Rows.
type scanner interface{ Scan(...any) error }

// eachRow calls fn on every row of rows, then closes rows (before the
// caller's next query, so a reader connection is not held meanwhile). It
// stops at fn's first error.
func eachRow(rows *sql.Rows, fn func(scanner) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// collect scans every row of rows with scan (see eachRow); no rows is a
// nil slice.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	var out []T
	err := eachRow(rows, func(s scanner) error {
		v, err := scan(s)
		if err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

// Pools.

const poolCols = `seq, id, name, type, release_channel, continue_on_error, latest_version, minimal_supported_version, max_unavailable, min_operational, require_all_connected, artifact_mirrors, created_at`

func scanPool(s scanner) (*store.Pool, error) {
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
	res, err := db.w.ExecContext(ctx, `INSERT INTO pools (id, name, type, release_channel, continue_on_error, latest_version, minimal_supported_version, max_unavailable,
		min_operational, require_all_connected, artifact_mirrors, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, p.ID, p.Name, p.Type, p.Settings.ReleaseChannel, p.Settings.ContinueOnError,
		p.Settings.LatestVersion, p.Settings.MinimalSupportedVersion, p.Settings.MaxUnavailable, p.Settings.MinOperational, p.Settings.RequireAllConnected,
		store.JoinURLs(p.Settings.ArtifactMirrors), ms(p.CreatedAt))
	if err != nil {
		if isUnique(err) {
			return fmt.Errorf("create pool %s: %w", p.ID, store.ErrConflict)
		}
		return fmt.Errorf("create pool: %w", err)
	}
	p.Seq, err = res.LastInsertId()
	return err
}

// GetPool returns the pool with the given id.
func (db *DB) GetPool(ctx context.Context, id string) (*store.Pool, error) {
	p, err := scanPool(db.r.QueryRowContext(ctx, `SELECT `+poolCols+` FROM pools WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("pool %s: %w", id, store.ErrNotFound)
	}
	return p, err
}

// ListPools returns one page of one type's pools.
func (db *DB) ListPools(ctx context.Context, q store.PoolQuery) ([]*store.Pool, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+poolCols+` FROM pools WHERE type = ? AND seq > ? ORDER BY seq LIMIT ?`, q.Type, q.AfterSeq, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("list pools: %w", err)
	}
	return collect(rows, scanPool)
}

// ModifyPool applies fn to a pool inside one transaction.
func (db *DB) ModifyPool(ctx context.Context, id string, fn func(*store.Pool) error) (*store.Pool, error) {
	var p *store.Pool
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		p, err = scanPool(tx.QueryRowContext(ctx, `SELECT `+poolCols+` FROM pools WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("pool %s: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if err := fn(p); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE pools SET name = ?, release_channel = ?, continue_on_error = ?, latest_version = ?, minimal_supported_version = ?, max_unavailable = ?,
			min_operational = ?, require_all_connected = ?, artifact_mirrors = ? WHERE id = ?`,
			p.Name, p.Settings.ReleaseChannel, p.Settings.ContinueOnError, p.Settings.LatestVersion, p.Settings.MinimalSupportedVersion, p.Settings.MaxUnavailable,
			p.Settings.MinOperational, p.Settings.RequireAllConnected, store.JoinURLs(p.Settings.ArtifactMirrors), id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Agents.

const agentCols = `seq, id, pool_id, client_id, agent_name, name, type, version, max(last_connection, coalesce(seen_at, 0)), operational_status, operational_message, is_hidden, created_at, rev`

// agentsFrom is the FROM of an agent read: an agent's last connection is
// the later of its row's and its host's keep-alives' (the seen table).
const agentsFrom = `agents LEFT JOIN seen ON seen_client = agents.client_id`

func scanAgent(s scanner) (*store.Agent, error) {
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
	return db.inTx(ctx, func(tx *sql.Tx) error {
		rev, err := nextRev(ctx, tx)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO agents (id, pool_id, client_id, agent_name, name, type, version, last_connection, operational_status, operational_message, is_hidden, created_at, rev)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, a.ID, a.PoolID, a.ClientID, a.AgentName, a.Name, a.Type, a.Version, ms(a.LastConnection), a.OperationalStatus, a.OperationalMessage, a.IsHidden,
			ms(a.CreatedAt), rev)
		if err != nil {
			if isUnique(err) {
				return fmt.Errorf("create agent %s: %w", a.ID, store.ErrConflict)
			}
			return fmt.Errorf("create agent: %w", err)
		}
		if a.Seq, err = res.LastInsertId(); err != nil {
			return err
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
	args := make([]any, len(poolIDs))
	for i, id := range poolIDs {
		args[i] = id
	}
	rows, err := db.r.QueryContext(ctx, `SELECT `+agentCols+` FROM `+agentsFrom+` WHERE pool_id IN (`+placeholders(len(poolIDs))+`) ORDER BY seq`, args...)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	return collect(rows, scanAgent)
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// Updates.

const updateCols = `seq, id, pool_id, name, agent_type, enabled, notify_admin, reason, sort_order, status, resume_status, target_version,
	has_schedule, schedule_cron, schedule_timezone, schedule_delay, schedule_duration, schedule_last, all_agents, allow_downgrade, rollout, created_at, modified_at, rev`

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func scanUpdate(s scanner) (*store.Update, error) {
	var u store.Update
	var hasSchedule bool
	var sc store.Schedule
	var delay, duration sql.NullInt64
	var last, created, modified int64
	if err := s.Scan(&u.Seq, &u.ID, &u.PoolID, &u.Name, &u.AgentType, &u.Enabled, &u.NotifyAdmin, &u.Reason, &u.SortOrder, &u.Status,
		&u.ResumeStatus, &u.TargetVersion, &hasSchedule, &sc.Cron, &sc.Timezone, &delay, &duration, &last, &u.AllAgents, &u.AllowDowngrade, &u.Rollout, &created, &modified, &u.Rev); err != nil {
		return nil, err
	}
	if hasSchedule {
		if delay.Valid {
			d := int(delay.Int64)
			sc.Delay = &d
		}
		if duration.Valid {
			d := int(duration.Int64)
			sc.Duration = &d
		}
		sc.LastUpdated = fromMS(last)
		u.Schedule = &sc
	}
	u.CreatedAt, u.ModifiedAt = fromMS(created), fromMS(modified)
	return &u, nil
}

func loadUpdateAgents(ctx context.Context, q queryer, us ...*store.Update) error {
	if len(us) == 0 {
		return nil
	}
	byID := make(map[string]*store.Update, len(us))
	args := make([]any, len(us))
	for i, u := range us {
		byID[u.ID] = u
		args[i] = u.ID
		u.Agents = nil
	}
	rows, err := q.QueryContext(ctx, `SELECT `+updateAgentCols+` FROM update_agents
		WHERE update_id IN (`+placeholders(len(us))+`) ORDER BY update_id, position`, args...)
	if err != nil {
		return fmt.Errorf("load update agents: %w", err)
	}
	return eachRow(rows, func(s scanner) error {
		r, err := scanUpdateAgent(s)
		if err != nil {
			return err
		}
		byID[r.UpdateID].Agents = append(byID[r.UpdateID].Agents, r.UpdateAgent)
		return nil
	})
}

const updateAgentCols = `update_id, agent_id, position, status, message, modified_at, job_id, job_seq, dispatched_at, progress, phase, from_version, rev`

func scanUpdateAgent(s scanner) (store.UpdateAgentRow, error) {
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
	var delay, duration sql.NullInt64
	if sc.Delay != nil {
		delay = sql.NullInt64{Int64: int64(*sc.Delay), Valid: true}
	}
	if sc.Duration != nil {
		duration = sql.NullInt64{Int64: int64(*sc.Duration), Valid: true}
	}
	return []any{u.Name, u.AgentType, u.Enabled, u.NotifyAdmin, u.Reason, u.SortOrder, u.Status, u.ResumeStatus, u.TargetVersion,
		has, sc.Cron, sc.Timezone, delay, duration, ms(sc.LastUpdated), u.AllAgents, u.AllowDowngrade, u.Rollout, ms(u.ModifiedAt)}
}

// saveUpdateAgents writes the rows of u.Agents that differ from before
// (nil: all rows are new), so a tick that changes a few agents of a
// 10,000-agent update writes a few rows, stamped with revision rev. Rows
// dropped from u.Agents are deleted and leave a tombstone.
func saveUpdateAgents(ctx context.Context, tx *sql.Tx, u *store.Update, before []store.UpdateAgent, rev int64) error {
	old := make(map[string]store.UpdateAgent, len(before))
	for _, ua := range before {
		old[ua.AgentID] = ua
	}
	var save *sql.Stmt
	added := false
	for i := range u.Agents {
		ua := &u.Agents[i]
		ua.Position = i
		prev, existed := old[ua.AgentID]
		delete(old, ua.AgentID)
		prev.Rev = ua.Rev // compare the content, not the revision
		if existed && prev == *ua {
			continue
		}
		added = added || !existed
		if save == nil {
			var err error
			save, err = tx.PrepareContext(ctx, `INSERT INTO update_agents (update_id, agent_id, position, status, message, modified_at, job_id, job_seq, dispatched_at, progress, phase,
				from_version, rev)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (update_id, agent_id) DO UPDATE SET position = excluded.position, status = excluded.status, message = excluded.message,
					modified_at = excluded.modified_at, job_id = excluded.job_id, job_seq = excluded.job_seq, dispatched_at = excluded.dispatched_at,
					progress = excluded.progress, phase = excluded.phase, from_version = excluded.from_version, rev = excluded.rev`)
			if err != nil {
				return fmt.Errorf("save update agents: %w", err)
			}
			defer save.Close()
		}
		if _, err := save.ExecContext(ctx, u.ID, ua.AgentID, ua.Position, ua.Status, ua.Message, ms(ua.ModifiedAt), ua.JobID, ua.JobSeq, ms(ua.DispatchedAt), ua.Progress,
			ua.Phase, ua.FromVersion, rev); err != nil {
			return fmt.Errorf("save update agent %s: %w", ua.AgentID, err)
		}
		ua.Rev = rev
	}
	for id := range old {
		if _, err := tx.ExecContext(ctx, `DELETE FROM update_agents WHERE update_id = ? AND agent_id = ?`, u.ID, id); err != nil {
			return fmt.Errorf("remove agent %s from update %s: %w", id, u.ID, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO removed_update_agents (update_id, agent_id, rev) VALUES (?, ?, ?)
			ON CONFLICT (update_id, agent_id) DO UPDATE SET rev = excluded.rev`, u.ID, id, rev); err != nil {
			return fmt.Errorf("remove agent %s from update %s: %w", id, u.ID, err)
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
	return db.inTx(ctx, func(tx *sql.Tx) error {
		rev, err := nextRev(ctx, tx)
		if err != nil {
			return err
		}
		args := append(append([]any{u.ID, u.PoolID, ms(u.CreatedAt)}, updateArgs(u)...), rev)
		res, err := tx.ExecContext(ctx, `INSERT INTO updates (id, pool_id, created_at, name, agent_type, enabled, notify_admin, reason, sort_order, status, resume_status, target_version,
			has_schedule, schedule_cron, schedule_timezone, schedule_delay, schedule_duration, schedule_last, all_agents, allow_downgrade, rollout, modified_at, rev)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
		if err != nil {
			if isUnique(err) {
				return fmt.Errorf("create update %s: %w", u.ID, store.ErrConflict)
			}
			return fmt.Errorf("create update: %w", err)
		}
		if u.Seq, err = res.LastInsertId(); err != nil {
			return err
		}
		u.Rev = rev
		// A reused id: the update's old tombstones are history now.
		if _, err := tx.ExecContext(ctx, `DELETE FROM deleted_updates WHERE id = ?`, u.ID); err != nil {
			return fmt.Errorf("create update %s: %w", u.ID, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM removed_update_agents WHERE update_id = ?`, u.ID); err != nil {
			return fmt.Errorf("create update %s: %w", u.ID, err)
		}
		return saveUpdateAgents(ctx, tx, u, nil, rev)
	})
}

func getUpdateHeader(ctx context.Context, q queryer, poolID, id string) (*store.Update, error) {
	u, err := scanUpdate(q.QueryRowContext(ctx, `SELECT `+updateCols+` FROM updates WHERE pool_id = ? AND id = ?`, poolID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("update %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get update %s: %w", id, err)
	}
	return u, nil
}

func getUpdate(ctx context.Context, q queryer, poolID, id string) (*store.Update, error) {
	u, err := getUpdateHeader(ctx, q, poolID, id)
	if err != nil {
		return nil, err
	}
	return u, loadUpdateAgents(ctx, q, u)
}

// GetUpdateHeader returns one update of a pool without its agents.
func (db *DB) GetUpdateHeader(ctx context.Context, poolID, id string) (*store.Update, error) {
	return getUpdateHeader(ctx, db.r, poolID, id)
}

// GetUpdate returns one update of a pool with its agents.
func (db *DB) GetUpdate(ctx context.Context, poolID, id string) (*store.Update, error) {
	return getUpdate(ctx, db.r, poolID, id)
}

// ListUpdates returns a pool's updates in creation order.
func (db *DB) ListUpdates(ctx context.Context, poolID string, scheduled *bool) ([]*store.Update, error) {
	query := `SELECT ` + updateCols + ` FROM updates WHERE pool_id = ?`
	args := []any{poolID}
	if scheduled != nil {
		query += ` AND has_schedule = ?`
		args = append(args, *scheduled)
	}
	rows, err := db.r.QueryContext(ctx, query+` ORDER BY seq`, args...)
	if err != nil {
		return nil, fmt.Errorf("list updates: %w", err)
	}
	out, err := collect(rows, scanUpdate)
	if err != nil {
		return nil, err
	}
	return out, loadUpdateAgents(ctx, db.r, out...)
}

// ModifyUpdate applies fn to an update inside one transaction.
func (db *DB) ModifyUpdate(ctx context.Context, poolID, id string, fn func(*store.Update) error) (*store.Update, error) {
	var u *store.Update
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if u, err = getUpdate(ctx, tx, poolID, id); err != nil {
			return err
		}
		before := slices.Clone(u.Agents)
		if err := fn(u); err != nil {
			return err
		}
		rev, err := nextRev(ctx, tx)
		if err != nil {
			return err
		}
		args := append(updateArgs(u), rev, u.ID)
		if _, err := tx.ExecContext(ctx, `UPDATE updates SET name = ?, agent_type = ?, enabled = ?, notify_admin = ?, reason = ?, sort_order = ?, status = ?, resume_status = ?, target_version = ?,
			has_schedule = ?, schedule_cron = ?, schedule_timezone = ?, schedule_delay = ?, schedule_duration = ?, schedule_last = ?, all_agents = ?, allow_downgrade = ?, rollout = ?, modified_at = ?,
			rev = ? WHERE id = ?`, args...); err != nil {
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
	return db.inTx(ctx, func(tx *sql.Tx) error {
		u, err := getUpdate(ctx, tx, poolID, id)
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(u); err != nil {
				return err
			}
		}
		rev, err := nextRev(ctx, tx)
		if err != nil {
			return err
		}
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`DELETE FROM update_agents WHERE update_id = ?`, []any{id}},
			{`DELETE FROM updates WHERE id = ?`, []any{id}},
			// The update's tombstone stands for its rows.
			{`DELETE FROM removed_update_agents WHERE update_id = ?`, []any{id}},
			{`INSERT INTO deleted_updates (id, pool_id, rev) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET pool_id = excluded.pool_id, rev = excluded.rev`,
				[]any{id, poolID, rev}},
		} {
			if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
				return fmt.Errorf("delete update %s: %w", id, err)
			}
		}
		return nil
	})
}

// Tokens.

// CreateToken stores a token (its hash, never its secret).
func (db *DB) CreateToken(ctx context.Context, t *store.Token) error {
	scopes := make([]string, len(t.Scopes))
	for i, s := range t.Scopes {
		scopes[i] = string(s)
	}
	_, err := db.w.ExecContext(ctx, `INSERT INTO tokens (id, name, hash, scopes, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		t.ID, t.Name, t.Hash, strings.Join(scopes, " "), ms(t.CreatedAt), ms(t.ExpiresAt))
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
	err := db.r.QueryRowContext(ctx, `SELECT id, name, hash, scopes, created_at, expires_at FROM tokens WHERE hash = ?`, hash).
		Scan(&t.ID, &t.Name, &t.Hash, &scopes, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
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
