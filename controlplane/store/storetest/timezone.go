package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
)

// testClientTimezone checks the host's reported time zone: written with
// the facts, read back by every client read and the change feed, and a
// change of zone alone is a change (the engine re-plans on it).
func testClientTimezone(t *testing.T, s store.Store) {
	ctx := context.Background()
	p := mustPool(t, s, okta.AgentTypeAD, "tz")
	c := &store.Client{ID: "host-tz", PoolID: p.ID, SecretHash: []byte("secret-tz"), CreatedAt: now, Timezone: "Asia/Tokyo"}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	if got, err := s.GetClient(ctx, c.ID); err != nil || got.Timezone != "Asia/Tokyo" {
		t.Fatalf("GetClient = %+v, %v; want timezone Asia/Tokyo", got, err)
	}
	rev, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hb := store.Heartbeat{ClientID: c.ID, PoolID: p.ID, Seen: now.Add(time.Minute), Hostname: "h", Status: "NORMAL", OS: "linux", Arch: "amd64",
		Facts: `{"hostname":"h"}`, Timezone: "Europe/Paris"}
	if err := s.ApplyHeartbeats(ctx, []store.Heartbeat{hb}); err != nil {
		t.Fatalf("ApplyHeartbeats: %v", err)
	}
	ch, err := s.ChangesSince(ctx, rev)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Clients) != 1 || ch.Clients[0].Timezone != "Europe/Paris" {
		t.Fatalf("change feed after a heartbeat with a zone: %+v", ch.Clients)
	}
	// The same facts with another zone: still a change.
	rev = ch.Rev
	hb.Seen, hb.Timezone = hb.Seen.Add(time.Minute), "America/New_York"
	if err := s.ApplyHeartbeats(ctx, []store.Heartbeat{hb}); err != nil {
		t.Fatal(err)
	}
	if ch, err = s.ChangesSince(ctx, rev); err != nil || len(ch.Clients) != 1 || ch.Clients[0].Timezone != "America/New_York" {
		t.Fatalf("a change of zone alone is not in the change feed: %+v, %v", ch, err)
	}
	// The same heartbeat again changes nothing.
	rev = ch.Rev
	hb.Seen = hb.Seen.Add(time.Minute)
	if err := s.ApplyHeartbeats(ctx, []store.Heartbeat{hb}); err != nil {
		t.Fatal(err)
	}
	if ch, err = s.ChangesSince(ctx, rev); err != nil || len(ch.Clients) != 0 {
		t.Fatalf("an unchanged heartbeat is in the change feed: %+v, %v", ch, err)
	}
	cs, err := s.ListClients(ctx, p.ID)
	if err != nil || len(cs) != 1 || cs[0].Timezone != "America/New_York" {
		t.Fatalf("ListClients = %+v, %v", cs, err)
	}
}
