package sqlite

import (
	"context"
	"path/filepath"
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
