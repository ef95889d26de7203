// Package pgtest opens fresh PostgreSQL stores for tests, on the server
// that the environment variable POOLAGENT_TEST_PG names (a DSN such as
// postgres://user@127.0.0.1:5432/db or postgres:///db?host=/run/pgsock).
// Each store lives in a schema of its own, dropped when the test ends, so
// tests share one database without seeing each other's rows.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/poolagent/poolagent/controlplane/store/postgres"
)

// EnvDSN is the environment variable naming the test server.
const EnvDSN = "POOLAGENT_TEST_PG"

// DSN returns the test server's DSN. Without one the test is skipped, or
// fails in CI (CI=true), where PostgreSQL tests must never be skipped
// silently.
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL tests cannot run: %s is not set, and CI must not skip them (.ci/run starts a server and sets it)", EnvDSN)
		}
		t.Skipf("PostgreSQL tests skipped: set %s=postgres://... to run them", EnvDSN)
	}
	return dsn
}

// NewSchema creates an empty schema on the test server, dropped when the
// test ends, and returns a DSN whose connections use it (search_path).
func NewSchema(t testing.TB) string {
	t.Helper()
	dsn := DSN(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to the test server (%s): %v", EnvDSN, err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "poolagent_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("connect to drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return postgres.WithSearchPath(dsn, schema)
}

// Open returns a fresh, migrated store in a new schema; it is closed and
// its schema dropped when the test ends.
func Open(t testing.TB) *postgres.DB {
	t.Helper()
	dsn := NewSchema(t)
	db, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
