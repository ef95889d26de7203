package store

import "time"

// Actor kinds of an audit entry.
const (
	// ActorToken is a change made through the API with an API token.
	ActorToken = "token"
	// ActorCLI is a change made with a poolserver command on the server's
	// data directory or database.
	ActorCLI = "cli"
)

// AuditEntry is one change recorded in the audit log. It never holds a
// secret: tokens and client secrets are named by their ids only.
type AuditEntry struct {
	Seq  int64 // order of writing; the pagination key
	ID   string
	Time time.Time
	// ActorKind is ActorToken or ActorCLI; ActorID is the token's id or
	// the OS user who ran the command; ActorName is the token's name.
	ActorKind, ActorID, ActorName string
	// Action names the change: "update.create", "update.pause",
	// "settings.change", "token.create", "release.publish", ...
	Action   string
	PoolID   string
	UpdateID string
	// Target names another object the change is about (a token, client
	// or release), by id or name, never by secret.
	Target string
	// StatusBefore and StatusAfter are the update's status around the
	// change (empty when it has none).
	StatusBefore, StatusAfter string
	// Detail is a short human-readable account of the change.
	Detail string
}

// AuditQuery selects a page of the audit log, newest first.
type AuditQuery struct {
	Since     time.Time // zero: from the beginning
	BeforeSeq int64     // 0: from the newest
	Limit     int
}
