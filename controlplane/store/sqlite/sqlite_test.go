package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/controlplane/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db, err := Open(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}

// TestTwoProcessesShareFile checks that a second opener (the CLI) sees and
// makes writes while the first (the server) holds the database open, and
// that migrations are applied once.
func TestTwoProcessesShareFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenFile(ctx, filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	p := &store.Pool{ID: store.NewID("pol"), Name: "x", Type: okta.AgentTypeLDAP}
	if err := b.CreatePool(ctx, p); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := a.GetPool(ctx, p.ID); err != nil {
		t.Fatalf("server does not see the CLI's pool: %v", err)
	}
}

// TestMigrationStampsExistingRows opens a database that the migrations
// before the change feed built and filled: its rows get revision 1, so
// ChangesSince(0) lists them and WriteRollout can compare-and-set them
// (revision 0 would mean an insert).
func TestMigrationStampsExistingRows(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	stmts := []string{`CREATE TABLE schema_migrations (version TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`}
	for _, name := range names {
		version := strings.TrimSuffix(filepath.Base(name), ".sql")
		if version >= "0006" {
			break
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts, string(body), `INSERT INTO schema_migrations VALUES ('`+version+`', 1)`)
	}
	stmts = append(stmts,
		`INSERT INTO pools (id, name, type, created_at) VALUES ('pol1', 'p', 'AD', 1)`,
		`INSERT INTO clients (id, pool_id, secret_hash, created_at) VALUES ('host-1', 'pol1', x'01', 1)`,
		`INSERT INTO agents (id, pool_id, client_id, agent_name, name, type, created_at) VALUES ('agt1', 'pol1', 'host-1', 'ad', 'a', 'AD', 1)`,
		`INSERT INTO updates (id, pool_id, agent_type, enabled, notify_admin, status, has_schedule, all_agents, created_at, modified_at)
			VALUES ('upd1', 'pol1', 'AD', 1, 0, 'InProgress', 0, 0, 1, 1)`,
		`INSERT INTO update_agents (update_id, agent_id, position, status, modified_at) VALUES ('upd1', 'agt1', 0, 'Scheduled', 1)`,
	)
	for _, s := range stmts {
		if _, err := raw.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	raw.Close()

	db, err := OpenFile(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if rev, err := db.Revision(ctx); err != nil || rev != 1 {
		t.Fatalf("Revision after migrating = %d, %v; want 1", rev, err)
	}
	ch, err := db.ChangesSince(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Rev != 1 || len(ch.Updates) != 1 || ch.Updates[0].Rev != 1 || len(ch.UpdateAgents) != 1 || ch.UpdateAgents[0].Rev != 1 ||
		len(ch.Agents) != 1 || ch.Agents[0].Rev != 1 || len(ch.Clients) != 1 || ch.Clients[0].Rev != 1 {
		t.Errorf("ChangesSince(0) after migrating = %+v", ch)
	}
	if ch, err := db.ChangesSince(ctx, 1); err != nil || len(ch.Updates)+len(ch.UpdateAgents)+len(ch.Agents)+len(ch.Clients) != 0 {
		t.Errorf("ChangesSince(1) after migrating = %+v, %v", ch, err)
	}
	u, err := db.GetUpdate(ctx, "pol1", "upd1")
	if err != nil {
		t.Fatal(err)
	}
	w := &store.RolloutWrite{Updates: []*store.Update{u}, Agents: []store.UpdateAgentRow{{UpdateID: u.ID, UpdateAgent: u.Agents[0]}}}
	w.Agents[0].Status = okta.InstanceInProgress
	if skipped, err := db.WriteRollout(ctx, w); err != nil || skipped != 0 || u.Rev != 2 || w.Agents[0].Rev != 2 {
		t.Errorf("WriteRollout on migrated rows = %d, %v; revs %d, %d", skipped, err, u.Rev, w.Agents[0].Rev)
	}
}

// BenchmarkRollout300k: go test -run XXX -bench Rollout -benchtime 3x ./controlplane/store/sqlite
func BenchmarkRollout300k(b *testing.B) {
	db, err := Open(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	storetest.BenchRollout(b, db, 300_000)
}

// BenchmarkReports: go test -run XXX -bench Reports -benchtime 3x ./controlplane/store/sqlite
// (POOLAGENT_BENCH_HOSTS hosts, 20,000 unless set).
func BenchmarkReports(b *testing.B) {
	n := 20_000
	if v, err := strconv.Atoi(os.Getenv("POOLAGENT_BENCH_HOSTS")); err == nil && v > 0 {
		n = v
	}
	for _, tc := range []struct {
		batch int
		facts bool
	}{{4, true}, {16, true}, {32, true}, {64, true}, {128, true}, {32, false}} {
		b.Run(fmt.Sprintf("batch=%d,facts=%v", tc.batch, tc.facts), func(b *testing.B) {
			db, err := Open(context.Background(), b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			storetest.BenchReports(b, db, n, tc.batch, tc.facts)
		})
	}
}
