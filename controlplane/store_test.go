package controlplane_test

import (
	"context"
	"os"
	"testing"

	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/controlplane/store/postgres/pgtest"
	"github.com/poolagent/poolagent/controlplane/store/sqlite"
)

// openTestStore opens the store one test runs on: SQLite in dir, or with
// POOLAGENT_TEST_STORE=postgres a fresh PostgreSQL schema on the server
// POOLAGENT_TEST_PG names (.ci/run runs this package both ways).
func openTestStore(ctx context.Context, t testing.TB, dir string) (store.Store, error) {
	t.Helper()
	if os.Getenv("POOLAGENT_TEST_STORE") == "postgres" {
		return pgtest.Open(t), nil
	}
	return sqlite.Open(ctx, dir)
}
