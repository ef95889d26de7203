package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
)

const clientCols = `seq, id, pool_id, secret_hash, type, hostname, status, os, arch, agent_version, facts, max(last_seen, coalesce(seen_at, 0)), created_at, rev, timezone`

// clientsFrom is the FROM of a client read: a client's last-seen time is
// the later of its row's and the keep-alives' (the seen table).
const clientsFrom = `clients LEFT JOIN seen ON seen_client = clients.id`

func scanClient(s scanner) (*store.Client, error) {
	var c store.Client
	var last, created int64
	if err := s.Scan(&c.Seq, &c.ID, &c.PoolID, &c.SecretHash, &c.Type, &c.Hostname, &c.Status, &c.OS, &c.Arch, &c.AgentVersion,
		&c.Facts, &last, &created, &c.Rev, &c.Timezone); err != nil {
		return nil, err
	}
	c.LastSeen, c.CreatedAt = fromMS(last), fromMS(created)
	c.Intern()
	return &c, nil
}

func insertClient(ctx context.Context, tx *sql.Tx, c *store.Client) error {
	if c.Facts == "" {
		c.Facts = "{}"
	}
	rev, err := nextRev(ctx, tx)
	if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO clients (id, pool_id, secret_hash, type, hostname, status, os, arch, agent_version, facts, last_seen, created_at, rev, timezone)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, c.ID, c.PoolID, c.SecretHash, c.Type, c.Hostname, c.Status, c.OS, c.Arch, c.AgentVersion,
		c.Facts, ms(c.LastSeen), ms(c.CreatedAt), rev, c.Timezone)
	if err != nil {
		if isUnique(err) {
			return fmt.Errorf("create client %s: %w", c.ID, store.ErrConflict)
		}
		return fmt.Errorf("create client %s: %w", c.ID, err)
	}
	if c.Seq, err = res.LastInsertId(); err != nil {
		return err
	}
	c.Rev = rev
	return nil
}

// CreateClient inserts a managed client and sets its Seq and Rev.
func (db *DB) CreateClient(ctx context.Context, c *store.Client) error {
	return db.inTx(ctx, func(tx *sql.Tx) error { return insertClient(ctx, tx, c) })
}

// GetClient returns a client by id.
func (db *DB) GetClient(ctx context.Context, id string) (*store.Client, error) {
	c, err := scanClient(db.r.QueryRowContext(ctx, `SELECT `+clientCols+` FROM `+clientsFrom+` WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("client %s: %w", id, store.ErrNotFound)
	}
	return c, err
}

// ClientBySecret returns the client whose secret hashes to hash.
func (db *DB) ClientBySecret(ctx context.Context, hash []byte) (*store.Client, error) {
	c, err := scanClient(db.r.QueryRowContext(ctx, `SELECT `+clientCols+` FROM `+clientsFrom+` WHERE secret_hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("client: %w", store.ErrNotFound)
	}
	return c, err
}

// ListClients returns the clients of the given pools, or all clients.
func (db *DB) ListClients(ctx context.Context, poolIDs ...string) ([]*store.Client, error) {
	query := `SELECT ` + clientCols + ` FROM ` + clientsFrom
	args := make([]any, len(poolIDs))
	for i, id := range poolIDs {
		args[i] = id
	}
	if len(poolIDs) > 0 {
		query += ` WHERE pool_id IN (` + placeholders(len(poolIDs)) + `)`
	}
	rows, err := db.r.QueryContext(ctx, query+` ORDER BY seq`, args...)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	return collect(rows, scanClient)
}

// ApplyHeartbeats writes a batch of heartbeats in one transaction. Its
// statements are prepared once, on the writer connection, at Open. A batch
// that reports facts, agents or jobs takes a change revision and stamps
// the rows whose content it changes (not last-seen times).
func (db *DB) ApplyHeartbeats(ctx context.Context, hbs []store.Heartbeat) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		var rev int64
		for i := range hbs {
			if hbs[i].Facts != "" || len(hbs[i].Agents) > 0 || len(hbs[i].Jobs) > 0 {
				var err error
				if rev, err = nextRev(ctx, tx); err != nil {
					return err
				}
				break
			}
		}
		st := db.hb.in(ctx, tx)
		for i := range hbs {
			if err := st.apply(ctx, &hbs[i], rev); err != nil {
				return fmt.Errorf("heartbeat of client %s: %w", hbs[i].ClientID, err)
			}
		}
		return nil
	})
}

// hbStmts are the prepared statements of one heartbeat batch.
type hbStmts struct {
	facts, seen, agentSeen, agent, job, progress *sql.Stmt
}

// in binds the prepared statements to a transaction (on the one writer
// connection they were prepared on, so nothing is prepared again).
func (st *hbStmts) in(ctx context.Context, tx *sql.Tx) *hbStmts {
	return &hbStmts{facts: tx.StmtContext(ctx, st.facts), seen: tx.StmtContext(ctx, st.seen), agentSeen: tx.StmtContext(ctx, st.agentSeen),
		agent: tx.StmtContext(ctx, st.agent), job: tx.StmtContext(ctx, st.job), progress: tx.StmtContext(ctx, st.progress)}
}

func prepareHeartbeat(ctx context.Context, tx interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}) (*hbStmts, error) {
	var st hbStmts
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		// Facts, agents: the revision moves only when a column the feed
		// carries does; the facts blob alone (an agent's new version,
		// its updateStatus) does not put the client in the feed.
		{&st.facts, `UPDATE clients SET type = ?1, hostname = ?2, status = ?3, os = ?4, arch = ?5, agent_version = ?6, facts = ?7,
			last_seen = max(last_seen, ?8), timezone = ?11,
			rev = CASE WHEN type != ?1 OR hostname != ?2 OR status != ?3 OR os != ?4 OR arch != ?5 OR agent_version != ?6
				OR timezone != ?11 THEN ?10 ELSE rev END
			WHERE id = ?9`},
		// Only the time: the narrow seen row, not the client's.
		{&st.seen, `INSERT INTO seen (seen_client, seen_at) VALUES (?2, ?1) ON CONFLICT (seen_client) DO UPDATE SET seen_at = max(seen_at, excluded.seen_at)`},
		// A known agent (nearly every report) is updated in place: the
		// upsert below first tries an insert with a new random id, a probe
		// of the id index and a new id for nothing.
		{&st.agentSeen, `UPDATE agents SET version = ?1, last_connection = max(last_connection, ?2), operational_status = ?3,
			operational_message = ?4, pool_id = ?5, name = ?6, type = ?7,
			rev = CASE WHEN version != ?1 OR operational_status != ?3 OR operational_message != ?4 OR pool_id != ?5 OR name != ?6 OR type != ?7
				THEN ?8 ELSE rev END
			WHERE client_id = ?9 AND agent_name = ?10 AND client_id != ''`},
		{&st.agent, `INSERT INTO agents (id, pool_id, client_id, agent_name, name, type, version, last_connection, operational_status, operational_message, created_at, rev)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (client_id, agent_name) WHERE client_id != '' DO UPDATE SET version = excluded.version,
				last_connection = max(last_connection, excluded.last_connection), operational_status = excluded.operational_status,
				operational_message = excluded.operational_message, pool_id = excluded.pool_id, name = excluded.name, type = excluded.type,
				rev = CASE WHEN version != excluded.version OR operational_status != excluded.operational_status OR operational_message != excluded.operational_message
					OR pool_id != excluded.pool_id OR name != excluded.name OR type != excluded.type THEN excluded.rev ELSE rev END`},
		{&st.job, `UPDATE update_agents SET status = ?, message = ?, progress = ?, phase = ?, modified_at = ?,
			diagnostics = CASE WHEN ? != '' THEN ? ELSE diagnostics END, rev = ? WHERE job_id = ? AND job_id != ''`},
		{&st.progress, `UPDATE update_agents SET progress = ?1, phase = ?2, rev = ?3 WHERE job_id = ?4 AND job_id != '' AND (progress != ?1 OR phase != ?2)`},
	} {
		s, err := tx.PrepareContext(ctx, p.sql)
		if err != nil {
			st.close()
			return nil, fmt.Errorf("prepare heartbeat statements: %w", err)
		}
		*p.dst = s
	}
	return &st, nil
}

func (st *hbStmts) close() {
	for _, s := range []*sql.Stmt{st.facts, st.seen, st.agentSeen, st.agent, st.job, st.progress} {
		if s != nil {
			s.Close()
		}
	}
}

func (st *hbStmts) apply(ctx context.Context, hb *store.Heartbeat, rev int64) error {
	seen := ms(hb.Seen)
	if hb.Facts != "" {
		if _, err := st.facts.ExecContext(ctx, hb.Type, hb.Hostname, hb.Status, hb.OS, hb.Arch, hb.AgentVersion, hb.Facts, seen, hb.ClientID, rev,
			hb.Timezone); err != nil {
			return err
		}
	} else if _, err := st.seen.ExecContext(ctx, seen, hb.ClientID); err != nil {
		return err
	}
	for _, a := range hb.Agents {
		res, err := st.agentSeen.ExecContext(ctx, a.Version, seen, a.Status, a.Message, hb.PoolID, a.Name, a.Type, rev, hb.ClientID, a.AgentName)
		if err != nil {
			return fmt.Errorf("agent %s: %w", a.AgentName, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("agent %s: %w", a.AgentName, err)
		} else if n > 0 {
			continue
		}
		if _, err := st.agent.ExecContext(ctx, store.NewID("agt"), hb.PoolID, hb.ClientID, a.AgentName, a.Name, a.Type, a.Version, seen, a.Status, a.Message, seen, rev); err != nil {
			return fmt.Errorf("agent %s: %w", a.AgentName, err)
		}
	}
	for _, j := range hb.Jobs {
		var err error
		if j.Status != "" {
			_, err = st.job.ExecContext(ctx, j.Status, j.Message, j.Progress, j.Phase, seen, j.Diagnostics, j.Diagnostics, rev, j.JobID)
		} else {
			_, err = st.progress.ExecContext(ctx, j.Progress, j.Phase, rev, j.JobID)
		}
		if err != nil {
			return fmt.Errorf("job %s: %w", j.JobID, err)
		}
	}
	return nil
}

// TouchClients records last-seen times of clients (and so their agents)
// in the seen table.
func (db *DB) TouchClients(ctx context.Context, seen map[string]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	times := make(map[string]int64, len(seen))
	for id, t := range seen {
		times[id] = ms(t)
	}
	doc, err := json.Marshal(times)
	if err != nil {
		return fmt.Errorf("encode last-seen times: %w", err)
	}
	// One statement over a JSON object {id: ms}, into the narrow seen
	// table: a flush of thousands of hosts rewrites neither their client
	// rows nor their agents' rows.
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO seen (seen_client, seen_at) SELECT j.key, j.value FROM json_each(?1) AS j WHERE true
			ON CONFLICT (seen_client) DO UPDATE SET seen_at = max(seen_at, excluded.seen_at)`, string(doc)); err != nil {
			return fmt.Errorf("touch clients: %w", err)
		}
		return nil
	})
}

// CreateEnrollToken stores an enrollment token's hash.
func (db *DB) CreateEnrollToken(ctx context.Context, t *store.EnrollToken) error {
	_, err := db.w.ExecContext(ctx, `INSERT INTO enroll_tokens (hash, pool_id, created_at, expires_at) VALUES (?, ?, ?, ?)`,
		t.Hash, t.PoolID, ms(t.CreatedAt), ms(t.ExpiresAt))
	if err != nil {
		if isUnique(err) {
			return fmt.Errorf("create enrollment token: %w", store.ErrConflict)
		}
		return fmt.Errorf("create enrollment token: %w", err)
	}
	return nil
}

// Enroll spends an enrollment token and creates the client atomically.
func (db *DB) Enroll(ctx context.Context, hash []byte, check func(*store.EnrollToken) error, c *store.Client) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		var t store.EnrollToken
		var created, expires, used int64
		err := tx.QueryRowContext(ctx, `SELECT hash, pool_id, created_at, expires_at, used_at, client_id FROM enroll_tokens WHERE hash = ?`, hash).
			Scan(&t.Hash, &t.PoolID, &created, &expires, &used, &t.ClientID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("enrollment token: %w", store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		t.CreatedAt, t.ExpiresAt, t.UsedAt = fromMS(created), fromMS(expires), fromMS(used)
		if !t.UsedAt.IsZero() {
			return fmt.Errorf("enrollment token: %w", store.ErrUsed)
		}
		if check != nil {
			if err := check(&t); err != nil {
				return err
			}
		}
		c.PoolID = t.PoolID
		if err := insertClient(ctx, tx, c); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE enroll_tokens SET used_at = ?, client_id = ? WHERE hash = ?`, ms(c.CreatedAt), c.ID, hash)
		return err
	})
}

const releaseCols = `seq, name, version, os, arch, channel, size, sha256, signature, published_at`

func scanRelease(s scanner) (*store.Release, error) {
	var r store.Release
	var published int64
	if err := s.Scan(&r.Seq, &r.Name, &r.Version, &r.OS, &r.Arch, &r.Channel, &r.Size, &r.SHA256, &r.Signature, &published); err != nil {
		return nil, err
	}
	r.PublishedAt = fromMS(published)
	return &r, nil
}

// CreateRelease adds an artifact and its patches to the catalog.
func (db *DB) CreateRelease(ctx context.Context, r *store.Release) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO releases (name, version, os, arch, channel, size, sha256, signature, published_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.Name, r.Version, r.OS, r.Arch, r.Channel, r.Size, r.SHA256, r.Signature, ms(r.PublishedAt))
		if err != nil {
			if isUnique(err) {
				return fmt.Errorf("release %s %s %s/%s: %w", r.Name, r.Version, r.OS, r.Arch, store.ErrConflict)
			}
			return fmt.Errorf("create release: %w", err)
		}
		seq, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("create release: %w", err)
		}
		for i, p := range r.Patches {
			if _, err := tx.ExecContext(ctx, `INSERT INTO release_patches (release_seq, position, from_version, from_sha256, size, sha256) VALUES (?, ?, ?, ?, ?, ?)`,
				seq, i, p.FromVersion, p.FromSHA256, p.Size, p.SHA256); err != nil {
				return fmt.Errorf("record the patch from %s: %w", p.FromVersion, err)
			}
		}
		r.Seq = seq
		return nil
	})
}

// ListReleases returns the releases of name (all when empty), oldest first.
func (db *DB) ListReleases(ctx context.Context, name string) ([]*store.Release, error) {
	query, args := `SELECT `+releaseCols+` FROM releases`, []any{}
	if name != "" {
		query += ` WHERE name = ?`
		args = append(args, name)
	}
	rows, err := db.r.QueryContext(ctx, query+` ORDER BY seq`, args...)
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	rs, err := collect(rows, scanRelease)
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	if err := db.attachPatches(ctx, rs, name); err != nil {
		return nil, err
	}
	return rs, nil
}

// GetRelease returns one artifact of the catalog.
func (db *DB) GetRelease(ctx context.Context, name, version, goos, arch string) (*store.Release, error) {
	r, err := scanRelease(db.r.QueryRowContext(ctx, `SELECT `+releaseCols+` FROM releases WHERE name = ? AND version = ? AND os = ? AND arch = ?`,
		name, version, goos, arch))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("release %s %s %s/%s: %w", name, version, goos, arch, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get release %s %s %s/%s: %w", name, version, goos, arch, err)
	}
	if err := db.attachPatches(ctx, []*store.Release{r}, name); err != nil {
		return nil, err
	}
	return r, nil
}

// attachPatches reads the patches of rs (releases of name, or of every
// name when it is empty) in one query.
func (db *DB) attachPatches(ctx context.Context, rs []*store.Release, name string) error {
	if len(rs) == 0 {
		return nil
	}
	bySeq := make(map[int64]*store.Release, len(rs))
	for _, r := range rs {
		bySeq[r.Seq] = r
	}
	query, args := `SELECT p.release_seq, p.from_version, p.from_sha256, p.size, p.sha256 FROM release_patches p`, []any{}
	if len(rs) == 1 {
		query += ` WHERE p.release_seq = ?`
		args = append(args, rs[0].Seq)
	} else if name != "" {
		query += ` JOIN releases r ON r.seq = p.release_seq WHERE r.name = ?`
		args = append(args, name)
	}
	rows, err := db.r.QueryContext(ctx, query+` ORDER BY p.release_seq, p.position`, args...)
	if err != nil {
		return fmt.Errorf("list release patches: %w", err)
	}
	err = eachRow(rows, func(s scanner) error {
		var seq int64
		var p store.ReleasePatch
		if err := s.Scan(&seq, &p.FromVersion, &p.FromSHA256, &p.Size, &p.SHA256); err != nil {
			return err
		}
		if r := bySeq[seq]; r != nil {
			r.Patches = append(r.Patches, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list release patches: %w", err)
	}
	return nil
}

// ListActiveUpdates returns the updates in the given statuses with agents.
func (db *DB) ListActiveUpdates(ctx context.Context, statuses ...okta.AgentUpdateJobStatus) ([]*store.Update, error) {
	out, err := db.ListUpdateHeaders(ctx, statuses...)
	if err != nil {
		return nil, err
	}
	return out, loadUpdateAgents(ctx, db.r, out...)
}

// ListUpdateHeaders returns the updates in the given statuses without
// their agents.
func (db *DB) ListUpdateHeaders(ctx context.Context, statuses ...okta.AgentUpdateJobStatus) ([]*store.Update, error) {
	if len(statuses) == 0 {
		return nil, nil
	}
	args := make([]any, len(statuses))
	for i, s := range statuses {
		args[i] = s
	}
	rows, err := db.r.QueryContext(ctx, `SELECT `+updateCols+` FROM updates WHERE status IN (`+placeholders(len(statuses))+`)
		ORDER BY pool_id, sort_order, seq`, args...)
	if err != nil {
		return nil, fmt.Errorf("list update headers: %w", err)
	}
	out, err := collect(rows, scanUpdate)
	if err != nil {
		return nil, fmt.Errorf("list update headers: %w", err)
	}
	return out, nil
}

// NextSequence reserves n values of a named counter and returns the first.
func (db *DB) NextSequence(ctx context.Context, name string, n int) (int64, error) {
	var v int64
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO counters (name, value) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET value = value + excluded.value RETURNING value`, name, n).Scan(&v)
	})
	if err != nil {
		return 0, fmt.Errorf("next %s: %w", name, err)
	}
	return v - int64(n) + 1, nil
}

// JobOwner returns the client whose agent holds a job.
func (db *DB) JobOwner(ctx context.Context, jobID string) (string, error) {
	var id string
	err := db.r.QueryRowContext(ctx, `SELECT a.client_id FROM update_agents ua JOIN agents a ON a.id = ua.agent_id WHERE ua.job_id = ? AND ua.job_id != '' LIMIT 1`, jobID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("job %s: %w", jobID, store.ErrNotFound)
	}
	return id, err
}

// UpdateAgentDiagnostics returns the diagnostics of an agent in an update.
func (db *DB) UpdateAgentDiagnostics(ctx context.Context, updateID, agentID string) (string, error) {
	var d string
	err := db.r.QueryRowContext(ctx, `SELECT diagnostics FROM update_agents WHERE update_id = ? AND agent_id = ?`, updateID, agentID).Scan(&d)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("agent %s in update %s: %w", agentID, updateID, store.ErrNotFound)
	}
	return d, err
}
