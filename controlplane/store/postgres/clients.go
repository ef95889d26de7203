package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
)

const clientCols = `seq, id, pool_id, secret_hash, type, hostname, status, os, arch, agent_version, facts, GREATEST(last_seen, COALESCE(seen_at, 0)), created_at, rev, timezone`

// clientsFrom is the FROM of a client read: a client's last-seen time is
// the later of its row's and the keep-alives' (the seen table).
const clientsFrom = `clients LEFT JOIN seen ON seen_client = clients.id`

func scanClient(s pgx.Row) (*store.Client, error) {
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

// insertClient inserts a client with revision rev.
func insertClient(ctx context.Context, tx pgx.Tx, c *store.Client, rev int64) error {
	if c.Facts == "" {
		c.Facts = "{}"
	}
	err := tx.QueryRow(ctx, `INSERT INTO clients (id, pool_id, secret_hash, type, hostname, status, os, arch, agent_version, facts, last_seen, created_at, rev, timezone)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING seq`, c.ID, c.PoolID, c.SecretHash, c.Type, c.Hostname, c.Status, c.OS, c.Arch,
		c.AgentVersion, c.Facts, ms(c.LastSeen), ms(c.CreatedAt), rev, c.Timezone).Scan(&c.Seq)
	if err != nil {
		if isUnique(err) {
			return fmt.Errorf("create client %s: %w", c.ID, store.ErrConflict)
		}
		return fmt.Errorf("create client %s: %w", c.ID, err)
	}
	c.Rev = rev
	return nil
}

// CreateClient inserts a managed client and sets its Seq and Rev.
func (db *DB) CreateClient(ctx context.Context, c *store.Client) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		rev, err := nextRev(ctx, tx)
		if err != nil {
			return err
		}
		return insertClient(ctx, tx, c, rev)
	})
}

// GetClient returns a client by id.
func (db *DB) GetClient(ctx context.Context, id string) (*store.Client, error) {
	c, err := scanClient(db.pool.QueryRow(ctx, `SELECT `+clientCols+` FROM `+clientsFrom+` WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("client %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get client %s: %w", id, err)
	}
	return c, nil
}

// ClientBySecret returns the client whose secret hashes to hash.
func (db *DB) ClientBySecret(ctx context.Context, hash []byte) (*store.Client, error) {
	c, err := scanClient(db.pool.QueryRow(ctx, `SELECT `+clientCols+` FROM `+clientsFrom+` WHERE secret_hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("client: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("look up client: %w", err)
	}
	return c, nil
}

// ListClients returns the clients of the given pools, or all clients.
func (db *DB) ListClients(ctx context.Context, poolIDs ...string) ([]*store.Client, error) {
	query, args := `SELECT `+clientCols+` FROM `+clientsFrom, []any{}
	if len(poolIDs) > 0 {
		query += ` WHERE pool_id = ANY($1)`
		args = append(args, poolIDs)
	}
	rows, err := db.pool.Query(ctx, query+` ORDER BY seq`, args...)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	out, err := collect(rows, scanClient)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	return out, nil
}

// ApplyHeartbeats writes a batch of heartbeats in one transaction: one
// round trip for the change revision when it needs one, one for the rows.
//
// A batch that reports facts, agents or jobs first takes a change
// revision (and the revision lock, see nextRev) and stamps the rows whose
// content it changes, not last-seen times. Rows are locked in one global
// order, whatever the batch: clients by id, then agents by (client, agent
// name), then update_agents by job id. TouchClients keeps to it too, so
// replicas writing at once do not deadlock; a transaction PostgreSQL still
// aborts as a deadlock victim is retried. Heartbeats of one client keep
// their order, so the later one wins.
func (db *DB) ApplyHeartbeats(ctx context.Context, hbs []store.Heartbeat) error {
	if len(hbs) == 0 {
		return nil
	}
	stamps := false
	for i := range hbs {
		stamps = stamps || hbs[i].Facts != "" || len(hbs[i].Agents) > 0 || len(hbs[i].Jobs) > 0
	}
	order := make([]int, len(hbs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(hbs[a].ClientID, hbs[b].ClientID) })

	type keyed struct {
		key1, key2 string
		s          stmt
	}
	var clients, agents, jobs []keyed
	// The revision is known once the transaction has begun: the
	// statements carry a pointer to it, which pgx reads when it sends
	// them.
	var rev int64
	revArg := &rev
	for _, i := range order {
		hb := &hbs[i]
		seen := ms(hb.Seen)
		who := "heartbeat of client " + hb.ClientID
		if hb.Facts != "" {
			// The revision moves only when a column the feed carries
			// does: not for the facts blob alone.
			clients = append(clients, keyed{s: stmt{`UPDATE clients SET type = $1, hostname = $2, status = $3, os = $4, arch = $5, agent_version = $6, facts = $7,
				last_seen = GREATEST(last_seen, $8), timezone = $11,
				rev = CASE WHEN type <> $1 OR hostname <> $2 OR status <> $3 OR os <> $4 OR arch <> $5 OR agent_version <> $6
					OR timezone <> $11 THEN $10 ELSE rev END
				WHERE id = $9`,
				[]any{hb.Type, hb.Hostname, hb.Status, hb.OS, hb.Arch, hb.AgentVersion, hb.Facts, seen, hb.ClientID, revArg, hb.Timezone}, who}})
		} else {
			// Only the time: the narrow seen row, not the client's.
			clients = append(clients, keyed{s: stmt{`INSERT INTO seen (seen_client, seen_at) VALUES ($2, $1)
				ON CONFLICT (seen_client) DO UPDATE SET seen_at = GREATEST(seen.seen_at, excluded.seen_at)`, []any{seen, hb.ClientID}, who}})
		}
		for _, a := range hb.Agents {
			agents = append(agents, keyed{hb.ClientID, a.AgentName, stmt{`INSERT INTO agents (id, pool_id, client_id, agent_name, name, type, version, last_connection, operational_status,
				operational_message, created_at, rev)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
				ON CONFLICT (client_id, agent_name) WHERE client_id <> '' DO UPDATE SET version = excluded.version,
					last_connection = GREATEST(agents.last_connection, excluded.last_connection), operational_status = excluded.operational_status,
					operational_message = excluded.operational_message, pool_id = excluded.pool_id, name = excluded.name, type = excluded.type,
					rev = CASE WHEN agents.version <> excluded.version OR agents.operational_status <> excluded.operational_status
						OR agents.operational_message <> excluded.operational_message OR agents.pool_id <> excluded.pool_id
						OR agents.name <> excluded.name OR agents.type <> excluded.type THEN excluded.rev ELSE agents.rev END`,
				[]any{store.NewID("agt"), hb.PoolID, hb.ClientID, a.AgentName, a.Name, a.Type, a.Version, seen, a.Status, a.Message, seen, revArg},
				who + ": agent " + a.AgentName}})
		}
		for _, j := range hb.Jobs {
			s := stmt{`UPDATE update_agents SET progress = $1, phase = $2, rev = $3 WHERE job_id = $4 AND job_id <> '' AND (progress <> $1 OR phase <> $2)`,
				[]any{j.Progress, j.Phase, revArg, j.JobID}, who + ": job " + j.JobID}
			if j.Status != "" {
				s.sql = `UPDATE update_agents SET status = $1, message = $2, progress = $3, phase = $4, modified_at = $5,
					diagnostics = CASE WHEN $6 <> '' THEN $6 ELSE diagnostics END, rev = $7 WHERE job_id = $8 AND job_id <> ''`
				s.args = []any{j.Status, j.Message, j.Progress, j.Phase, seen, j.Diagnostics, revArg, j.JobID}
			}
			jobs = append(jobs, keyed{j.JobID, "", s})
		}
	}
	byKey := func(a, b keyed) int { return cmp.Or(cmp.Compare(a.key1, b.key1), cmp.Compare(a.key2, b.key2)) }
	slices.SortStableFunc(agents, byKey)
	slices.SortStableFunc(jobs, byKey)
	stmts := make([]stmt, 0, len(clients)+len(agents)+len(jobs))
	for _, group := range [][]keyed{clients, agents, jobs} {
		for _, k := range group {
			stmts = append(stmts, k.s)
		}
	}
	return db.inTxRetry(ctx, func(tx pgx.Tx) error {
		if stamps {
			var err error
			if rev, err = nextRev(ctx, tx); err != nil {
				return err
			}
		}
		return execBatch(ctx, tx, stmts)
	})
}

// TouchClients records last-seen times of clients (and so their agents)
// in the seen table, rows locked in id order.
func (db *DB) TouchClients(ctx context.Context, seen map[string]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	times := make([]int64, len(ids))
	for i, id := range ids {
		times[i] = ms(seen[id])
	}
	// One statement into the narrow seen table, rows locked in id order:
	// a flush rewrites neither client rows (with their facts) nor agents'.
	return db.inTxRetry(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO seen (seen_client, seen_at) SELECT * FROM unnest($1::text[], $2::bigint[])
			ON CONFLICT (seen_client) DO UPDATE SET seen_at = GREATEST(seen.seen_at, excluded.seen_at)`, ids, times); err != nil {
			return fmt.Errorf("touch clients: %w", err)
		}
		return nil
	})
}

// CreateEnrollToken stores an enrollment token's hash.
func (db *DB) CreateEnrollToken(ctx context.Context, t *store.EnrollToken) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO enroll_tokens (hash, pool_id, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
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
// The token's row lock makes a concurrent second use wait and then see the
// token spent (ErrUsed).
func (db *DB) Enroll(ctx context.Context, hash []byte, check func(*store.EnrollToken) error, c *store.Client) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		// The revision lock first (see nextRev), then the token's row.
		rev, err := nextRev(ctx, tx)
		if err != nil {
			return err
		}
		var t store.EnrollToken
		var created, expires, used int64
		err = tx.QueryRow(ctx, `SELECT hash, pool_id, created_at, expires_at, used_at, client_id FROM enroll_tokens WHERE hash = $1 FOR UPDATE`, hash).
			Scan(&t.Hash, &t.PoolID, &created, &expires, &used, &t.ClientID)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("enrollment token: %w", store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("look up enrollment token: %w", err)
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
		if err := insertClient(ctx, tx, c, rev); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE enroll_tokens SET used_at = $1, client_id = $2 WHERE hash = $3`, ms(c.CreatedAt), c.ID, hash); err != nil {
			return fmt.Errorf("spend enrollment token: %w", err)
		}
		return nil
	})
}

const releaseCols = `seq, name, version, os, arch, channel, size, sha256, signature, published_at`

func scanRelease(s pgx.Row) (*store.Release, error) {
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
	return db.inTx(ctx, func(tx pgx.Tx) error {
		var seq int64
		err := tx.QueryRow(ctx, `INSERT INTO releases (name, version, os, arch, channel, size, sha256, signature, published_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING seq`, r.Name, r.Version, r.OS, r.Arch, r.Channel, r.Size, r.SHA256, r.Signature,
			ms(r.PublishedAt)).Scan(&seq)
		if err != nil {
			if isUnique(err) {
				return fmt.Errorf("release %s %s %s/%s: %w", r.Name, r.Version, r.OS, r.Arch, store.ErrConflict)
			}
			return fmt.Errorf("create release: %w", err)
		}
		for i, p := range r.Patches {
			if _, err := tx.Exec(ctx, `INSERT INTO release_patches (release_seq, position, from_version, from_sha256, size, sha256) VALUES ($1, $2, $3, $4, $5, $6)`,
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
		query += ` WHERE name = $1`
		args = append(args, name)
	}
	rows, err := db.pool.Query(ctx, query+` ORDER BY seq`, args...)
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	out, err := collect(rows, scanRelease)
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	if err := db.attachPatches(ctx, out, name); err != nil {
		return nil, err
	}
	return out, nil
}

// GetRelease returns one artifact of the catalog.
func (db *DB) GetRelease(ctx context.Context, name, version, goos, arch string) (*store.Release, error) {
	r, err := scanRelease(db.pool.QueryRow(ctx, `SELECT `+releaseCols+` FROM releases WHERE name = $1 AND version = $2 AND os = $3 AND arch = $4`,
		name, version, goos, arch))
	if errors.Is(err, pgx.ErrNoRows) {
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
		query += ` WHERE p.release_seq = $1`
		args = append(args, rs[0].Seq)
	} else if name != "" {
		query += ` JOIN releases r ON r.seq = p.release_seq WHERE r.name = $1`
		args = append(args, name)
	}
	rows, err := db.pool.Query(ctx, query+` ORDER BY p.release_seq, p.position`, args...)
	if err != nil {
		return fmt.Errorf("list release patches: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var p store.ReleasePatch
		if err := rows.Scan(&seq, &p.FromVersion, &p.FromSHA256, &p.Size, &p.SHA256); err != nil {
			return fmt.Errorf("list release patches: %w", err)
		}
		if r := bySeq[seq]; r != nil {
			r.Patches = append(r.Patches, p)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list release patches: %w", err)
	}
	return nil
}

// ListActiveUpdates returns the updates in the given statuses with agents.
func (db *DB) ListActiveUpdates(ctx context.Context, statuses ...okta.AgentUpdateJobStatus) ([]*store.Update, error) {
	if len(statuses) == 0 {
		return nil, nil
	}
	return db.listUpdates(ctx, `SELECT `+updateCols+` FROM updates WHERE status = ANY($1) ORDER BY pool_id, sort_order, seq`, strs(statuses))
}

// ListUpdateHeaders returns the updates in the given statuses without
// their agents.
func (db *DB) ListUpdateHeaders(ctx context.Context, statuses ...okta.AgentUpdateJobStatus) ([]*store.Update, error) {
	if len(statuses) == 0 {
		return nil, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT `+updateCols+` FROM updates WHERE status = ANY($1) ORDER BY pool_id, sort_order, seq`, strs(statuses))
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
// One upsert statement: atomic without a transaction of its own.
func (db *DB) NextSequence(ctx context.Context, name string, n int) (int64, error) {
	var v int64
	err := db.pool.QueryRow(ctx, `INSERT INTO counters (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value RETURNING value`, name, int64(n)).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("next %s: %w", name, err)
	}
	return v - int64(n) + 1, nil
}

// JobOwner returns the client whose agent holds a job.
func (db *DB) JobOwner(ctx context.Context, jobID string) (string, error) {
	var id string
	err := db.pool.QueryRow(ctx, `SELECT a.client_id FROM update_agents ua JOIN agents a ON a.id = ua.agent_id WHERE ua.job_id = $1 AND ua.job_id <> '' LIMIT 1`, jobID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("job %s: %w", jobID, store.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("look up job %s: %w", jobID, err)
	}
	return id, nil
}

// UpdateAgentDiagnostics returns the diagnostics of an agent in an update.
func (db *DB) UpdateAgentDiagnostics(ctx context.Context, updateID, agentID string) (string, error) {
	var d string
	err := db.pool.QueryRow(ctx, `SELECT diagnostics FROM update_agents WHERE update_id = $1 AND agent_id = $2`, updateID, agentID).Scan(&d)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("agent %s in update %s: %w", agentID, updateID, store.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("diagnostics of agent %s: %w", agentID, err)
	}
	return d, nil
}
