package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/poolagent/poolagent/controlplane/store/postgres"
)

// freshSchema creates an empty schema for one run on the PostgreSQL server
// dsn names and returns a DSN whose connections use it, and a function
// that drops it. Runs used to share the database's default schema, so each
// one's server also loaded every earlier run's hosts.
func freshSchema(ctx context.Context, dsn string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "fleet_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		return "", nil, fmt.Errorf("create schema %s: %w", schema, err)
	}
	drop := func() {
		ctx := context.WithoutCancel(ctx)
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`)
	}
	return postgres.WithSearchPath(dsn, schema), drop, nil
}
