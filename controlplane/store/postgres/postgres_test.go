package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/controlplane/store/postgres"
	"github.com/poolagent/poolagent/controlplane/store/postgres/pgtest"
	"github.com/poolagent/poolagent/controlplane/store/sqlite"
	"github.com/poolagent/poolagent/controlplane/store/storetest"
)

func TestStore(t *testing.T) {
	pgtest.DSN(t)
	storetest.Run(t, func(t *testing.T) store.Store { return pgtest.Open(t) })
}

// TestConcurrentOpenMigratesOnce starts several replicas on one empty
// database at once: the advisory lock lets exactly one apply each
// migration, and every Open succeeds.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	dsn := pgtest.NewSchema(t)
	ctx := context.Background()
	const n = 6
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := postgres.Open(ctx, dsn)
			if err == nil {
				db.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range files {
		want = append(want, strings.TrimSuffix(filepath.Base(f), ".sql"))
	}
	if got := strings.Join(versions, ","); got != strings.Join(want, ",") {
		t.Errorf("schema_migrations = %s, want each embedded migration once: %s", got, strings.Join(want, ","))
	}
}

// TestTwoReplicasShareDatabase checks that two stores on one database (two
// replicas, or the server and the CLI) see each other's writes and that
// ModifyUpdate stays atomic across them.
func TestTwoReplicasShareDatabase(t *testing.T) {
	dsn := pgtest.NewSchema(t)
	ctx := context.Background()
	var dbs [2]*postgres.DB
	for i := range dbs {
		db, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		dbs[i] = db
	}
	p := &store.Pool{ID: store.NewID("pol"), Name: "x", Type: okta.AgentTypeLDAP}
	if err := dbs[1].CreatePool(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs[0].GetPool(ctx, p.ID); err != nil {
		t.Fatalf("replica 0 does not see replica 1's pool: %v", err)
	}
	u := &store.Update{ID: store.NewID("upd"), PoolID: p.ID, AgentType: okta.AgentTypeLDAP, Status: okta.JobInProgress}
	if err := dbs[0].CreateUpdate(ctx, u); err != nil {
		t.Fatal(err)
	}
	const n = 10
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range 2 * n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := dbs[i%2].ModifyUpdate(ctx, p.ID, u.ID, func(u *store.Update) error { u.SortOrder++; return nil })
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("ModifyUpdate: %v", err)
		}
	}
	got, err := dbs[1].GetUpdate(ctx, p.ID, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.SortOrder != 2*n {
		t.Errorf("SortOrder = %d after %d increments from two replicas", got.SortOrder, 2*n)
	}
}

// TestConcurrentEnroll spends one enrollment token from many requests at
// once: exactly one enrolls, the others get ErrUsed.
func TestConcurrentEnroll(t *testing.T) {
	db := pgtest.Open(t)
	ctx := context.Background()
	p := &store.Pool{ID: store.NewID("pol"), Name: "x", Type: okta.AgentTypeAD}
	if err := db.CreatePool(ctx, p); err != nil {
		t.Fatal(err)
	}
	tok := &store.EnrollToken{Hash: []byte("enroll"), PoolID: p.ID, ExpiresAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := db.CreateEnrollToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	const n = 8
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &store.Client{ID: fmt.Sprintf("c%d", i), SecretHash: fmt.Appendf(nil, "h%d", i), CreatedAt: time.Unix(1, 0)}
			// The pause inside the transaction widens the window in which
			// a store without the token's row lock would enroll twice; the
			// outcome does not depend on it.
			errs <- db.Enroll(ctx, tok.Hash, func(*store.EnrollToken) error { time.Sleep(20 * time.Millisecond); return nil }, c)
		}()
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrUsed):
			t.Errorf("Enroll: %v, want nil or ErrUsed", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d enrollments succeeded with one token, want 1", ok)
	}
	if clients, err := db.ListClients(ctx); err != nil || len(clients) != 1 {
		t.Errorf("clients after concurrent enroll = %d, %v", len(clients), err)
	}
}

// TestOpenErrorHidesPassword needs no server: a refused connection is an
// error naming the database, never the password.
func TestOpenErrorHidesPassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://poolserver:s3cret@127.0.0.1:1/poolserver?connect_timeout=5",
		"host=127.0.0.1 port=1 user=poolserver password=s3cret dbname=poolserver connect_timeout=5",
		"postgres://poolserver:s3cret@127.0.0.1:1/poolserver?sslmode=bogus",
	} {
		_, err := postgres.Open(context.Background(), dsn)
		if err == nil {
			t.Fatalf("Open(%q) succeeded", dsn)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open error shows the password: %v", err)
		}
		if !strings.Contains(err.Error(), "PostgreSQL") {
			t.Errorf("Open error does not say what failed: %v", err)
		}
	}
}

// TestSchemaMatchesSQLite checks that the two backends' migrations build
// the same tables with the same columns.
func TestSchemaMatchesSQLite(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewSchema(t)
	pg, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	pg.Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name || '.' || column_name FROM information_schema.columns
		WHERE table_schema = current_schema() ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	pgCols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	lite, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	lite.Close()
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	lrows, err := db.QueryContext(ctx, `SELECT m.name || '.' || p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer lrows.Close()
	var liteCols []string
	for lrows.Next() {
		var c string
		if err := lrows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		liteCols = append(liteCols, c)
	}
	if err := lrows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(pgCols)
	slices.Sort(liteCols)
	if !slices.Equal(pgCols, liteCols) {
		t.Errorf("schemas differ:\nPostgreSQL: %v\nSQLite:     %v", pgCols, liteCols)
	}
	if len(pgCols) < 50 {
		t.Errorf("only %d columns found: %v", len(pgCols), pgCols)
	}
}

// BenchmarkRollout300k: POOLAGENT_TEST_PG=... go test -run XXX -bench Rollout -benchtime 3x ./controlplane/store/postgres
func BenchmarkRollout300k(b *testing.B) {
	storetest.BenchRollout(b, pgtest.Open(b), 300_000)
}
