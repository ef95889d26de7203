// Package store defines the control plane's persistence: the model types
// (pools, agents, updates, tokens) and the Store interface that the SQLite
// and PostgreSQL backends implement. Handlers and the rollout engine depend
// only on this package, never on a driver.
//
// Every method takes a context first. Read-modify-write operations take a
// mutate function that runs inside one transaction, so a lifecycle action or
// a settings change is atomic on every backend.
package store

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/poolagent/poolagent/api/okta"
)

// Errors the backends return; callers test them with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("already exists")
)

// Settings are a pool's automatic update settings.
type Settings struct {
	ReleaseChannel          okta.ReleaseChannel
	ContinueOnError         bool
	LatestVersion           string
	MinimalSupportedVersion string
	// MaxUnavailable bounds how many of the pool's agents are updating or
	// unhealthy at once (extension; default 1).
	MaxUnavailable int
	// MinOperational: no agent gets a job while fewer than this many of
	// the pool's agents (or all, in a smaller pool) are OPERATIONAL
	// (extension; default 2, Okta's rule).
	MinOperational int
	// RequireAllConnected: no agent gets a job while any agent of the pool
	// is disconnected (SailPoint's "whole cluster connected" rule).
	RequireAllConnected bool
	// ArtifactMirrors are base URLs of mirrors of the artifact store, in
	// the order agents try them (extension; each serves <base>/<sha256>).
	ArtifactMirrors []string
}

// Equal reports whether two settings are the same.
func (s Settings) Equal(o Settings) bool {
	return s.ReleaseChannel == o.ReleaseChannel && s.ContinueOnError == o.ContinueOnError && s.LatestVersion == o.LatestVersion &&
		s.MinimalSupportedVersion == o.MinimalSupportedVersion && s.MaxUnavailable == o.MaxUnavailable && s.MinOperational == o.MinOperational &&
		s.RequireAllConnected == o.RequireAllConnected && slices.Equal(s.ArtifactMirrors, o.ArtifactMirrors)
}

// JoinURLs and SplitURLs store a list of URLs in one text column, one per
// line (a URL holds no newline).
func JoinURLs(us []string) string { return strings.Join(us, "\n") }

// SplitURLs is JoinURLs' inverse; "" is no URL.
func SplitURLs(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// Pool is a group of agents of one type.
type Pool struct {
	Seq       int64 // creation order; the pagination key
	ID        string
	Name      string
	Type      okta.AgentType
	Settings  Settings
	CreatedAt time.Time
}

// Agent is one managed program on one host, a member of a pool.
type Agent struct {
	Seq               int64
	ID                string
	PoolID            string
	ClientID          string // the managed client (host) that runs it
	AgentName         string // the program's name on its host
	Name              string
	Type              okta.AgentType
	Version           string
	LastConnection    time.Time // zero when never seen
	OperationalStatus okta.OperationalStatus
	// OperationalMessage says why the agent is not OPERATIONAL, as its
	// host's health watch reported it ("" when healthy or not watched).
	OperationalMessage string
	IsHidden           bool
	CreatedAt          time.Time
	// Rev is the change revision of the row's last write (set by the
	// store; see Store.ChangesSince).
	Rev int64
}

// Schedule is an update's maintenance schedule.
type Schedule struct {
	Cron        string
	Timezone    string
	Delay       *int // days
	Duration    *int // minutes
	LastUpdated time.Time
}

// UpdateAgent is one agent's share of an update.
type UpdateAgent struct {
	AgentID    string
	Position   int
	Status     okta.AgentUpdateInstanceStatus
	Message    string
	ModifiedAt time.Time
	// The job handed to the agent's host, if any.
	JobID        string
	JobSeq       int64
	DispatchedAt time.Time
	Progress     int
	Phase        string
	// FromVersion is the agent's version when it was handed the job.
	FromVersion string
	// Rev is the change revision of the row's last write (set by the
	// store; see Store.ChangesSince and Store.WriteRollout).
	Rev int64
}

// Update is a fleet-wide update of a pool's agents.
type Update struct {
	Seq           int64
	ID            string
	PoolID        string
	Name          string
	AgentType     okta.AgentType
	Enabled       bool
	NotifyAdmin   bool
	Reason        string
	SortOrder     int
	Status        okta.AgentUpdateJobStatus
	ResumeStatus  okta.AgentUpdateJobStatus // the status a paused update resumes to
	TargetVersion string
	Schedule      *Schedule // nil for an ad-hoc (flow 2) update
	AllAgents     bool      // no agents named: every agent of the pool
	// AllowDowngrade lets the update install a version below the installed
	// one (extension).
	AllowDowngrade bool
	// Rollout is the update's rollout policy and wave state as JSON
	// (extension; the control plane owns its shape).
	Rollout    string
	Agents     []UpdateAgent
	CreatedAt  time.Time
	ModifiedAt time.Time
	// Rev is the change revision of the update's last header write (set
	// by the store).
	Rev int64
}

// Scope names an API permission carried by a token.
type Scope string

// The scopes of the Agent Pools API.
const (
	ScopeRead   Scope = "okta.agentPools.read"
	ScopeManage Scope = "okta.agentPools.manage"
)

// Token is an API token. Only the SHA-256 of its secret is stored.
type Token struct {
	ID        string
	Name      string
	Hash      []byte
	Scopes    []Scope
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never
}

// Has reports whether the token grants scope s; manage implies read.
func (t *Token) Has(s Scope) bool {
	for _, have := range t.Scopes {
		if have == s || (have == ScopeManage && s == ScopeRead) {
			return true
		}
	}
	return false
}

// Client is a managed client: one poolagent on one host. Its id and
// secret are what the host authenticates with.
type Client struct {
	Seq          int64
	ID           string
	PoolID       string
	SecretHash   []byte
	Type         string // VA, CCG, ... or empty
	Hostname     string
	Status       string // the last reported ClientStatus
	OS, Arch     string
	AgentVersion string // poolagent's own version
	Facts        string // the last reported host facts, JSON
	// Timezone is the IANA zone the host last reported (extension), as
	// reported: schedules in the hosts' zones check it before use.
	Timezone  string
	LastSeen  time.Time
	CreatedAt time.Time
	// Rev is the change revision of the row's last write other than a
	// last-seen time or the facts alone (set by the store).
	Rev int64
}

// Release is one published artifact of the catalog.
type Release struct {
	Seq         int64
	Name        string // an agent type (AD, LDAP, ...) or "poolagent"
	Version     string
	OS, Arch    string
	Channel     okta.ReleaseChannel
	Size        int64
	SHA256      string // hex
	Signature   string // minisign signature file contents
	PublishedAt time.Time
	// Patches are the binary patches from earlier releases of the same
	// name and platform to this one, oldest source first. CreateRelease
	// stores them with the release, in one transaction.
	Patches []ReleasePatch
}

// ReleasePatch is a bsdiff patch that turns the artifact of an earlier
// release (FromVersion, whose file has FromSHA256) into its release's.
// Its file lives in the data dir under its own SHA-256.
type ReleasePatch struct {
	FromVersion string
	FromSHA256  string // hex, the source artifact's
	Size        int64
	SHA256      string // hex, the patch file's
}

// EnrollToken is a one-time token that enrolls a host into a pool.
type EnrollToken struct {
	Hash      []byte
	PoolID    string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time
	ClientID  string
}

// AgentSeen is one managed program reported by a heartbeat.
type AgentSeen struct {
	AgentName string
	Name      string // display name for a new agent
	Type      okta.AgentType
	Version   string
	Status    okta.OperationalStatus
	// Message says why Status is not OPERATIONAL (the host's health
	// watch), or "".
	Message string
}

// JobReport is a host's report of one job's progress.
type JobReport struct {
	JobID       string
	Status      okta.AgentUpdateInstanceStatus // empty: progress only
	Message     string
	Progress    int
	Phase       string
	Diagnostics string // JSON; kept when empty
}

// Heartbeat is the durable part of one heartbeat: what changed on a host.
type Heartbeat struct {
	ClientID string
	PoolID   string
	Seen     time.Time
	// Client facts; written when Facts is not empty.
	Type, Hostname, Status, OS, Arch, AgentVersion, Facts string
	// Timezone is the host's reported IANA zone, written with the facts.
	Timezone string
	// Agents are upserted by (client, agent name) into the client's pool.
	Agents []AgentSeen
	Jobs   []JobReport
}

// UpdateAgentRow is one agent's share of an update, with the update's id.
type UpdateAgentRow struct {
	UpdateID string
	UpdateAgent
}

// Changes is what was committed after a revision: the change feed the
// rollout engine (and every replica's job cache) follows instead of
// re-reading the fleet.
type Changes struct {
	// Rev is the newest revision included; pass it to the next call.
	Rev int64
	// Updates are the headers (Agents nil) of updates created or changed.
	Updates []*Update
	// Deleted are the ids of updates deleted.
	Deleted []string
	// UpdateAgents are agents' shares of updates inserted or changed.
	UpdateAgents []UpdateAgentRow
	// RemovedUpdateAgents are agents' shares removed from updates that
	// still exist (ModifyUpdate dropped them from Agents); only UpdateID,
	// AgentID and Rev are set. The rows of a deleted update are not
	// listed: its id in Deleted stands for all of them.
	RemovedUpdateAgents []UpdateAgentRow
	// Agents are agents created or changed (a heartbeat that reported a
	// change, not a keep-alive).
	Agents []*Agent
	// Clients are clients created or with a column other than Facts and
	// LastSeen changed (type, hostname, status, os, arch, agent version,
	// time zone); Facts is empty. A change of the facts alone (an agent's
	// version or updateStatus: every job report) is not listed, so a
	// rollout's reports do not bring every host back through the feed.
	Clients []*Client
}

// RolloutWrite is one batch of the rollout engine's decisions, written in
// one transaction. Each row is written only if its stored revision still
// equals the Rev it carries (0 for a row to insert): a row that changed
// meanwhile (a host's report, an operator's action) is skipped, and the
// change feed brings its current state to the engine.
type RolloutWrite struct {
	// Updates: the header fields the engine owns (Status, ResumeStatus,
	// Rollout, Schedule.LastUpdated, ModifiedAt) are written.
	Updates []*Update
	// Agents: every field of the row but Diagnostics is written.
	Agents []UpdateAgentRow
}

// Lease is a held leader lock.
type Lease interface {
	// Alive reports whether the lock still holds.
	Alive(ctx context.Context) bool
	// Release gives the lock up.
	Release()
}

// Leader is implemented by stores that several poolserver replicas share
// (PostgreSQL): only the holder of the named lock runs the rollout engine's
// writes. A store without it (SQLite: one process) always leads.
type Leader interface {
	// TryLead takes the lock if nobody holds it; nil, nil when another
	// replica does.
	TryLead(ctx context.Context, name string) (Lease, error)
}

// DefaultMinOperational is Okta's rule: an update does not start while
// fewer than 2 of the pool's agents are OPERATIONAL.
const DefaultMinOperational = 2

// SetDefaults fills in the settings a new pool was created without: the GA
// release channel, MaxUnavailable 1 (also for a value below 1) and
// DefaultMinOperational. Every backend's CreatePool calls it, so pools
// read back alike whichever store holds them.
func (p *Pool) SetDefaults() {
	if p.Settings.ReleaseChannel == "" {
		p.Settings.ReleaseChannel = okta.ChannelGA
	}
	if p.Settings.MaxUnavailable < 1 {
		p.Settings.MaxUnavailable = 1
	}
	if p.Settings.MinOperational == 0 {
		p.Settings.MinOperational = DefaultMinOperational
	}
}

// ErrUsed is returned for an enrollment token that was already used.
var ErrUsed = errors.New("already used")

// PoolQuery selects one page of one type's pools in creation order.
type PoolQuery struct {
	Type     okta.AgentType
	AfterSeq int64
	Limit    int
}

// Store is the control plane's persistence. Implementations must be safe
// for concurrent use and must let other processes (the poolserver CLI) write
// to the same database while a server runs.
type Store interface {
	CreatePool(ctx context.Context, p *Pool) error
	GetPool(ctx context.Context, id string) (*Pool, error)
	ListPools(ctx context.Context, q PoolQuery) ([]*Pool, error)
	// ModifyPool loads a pool, applies fn and saves the result atomically.
	ModifyPool(ctx context.Context, id string, fn func(*Pool) error) (*Pool, error)

	CreateAgent(ctx context.Context, a *Agent) error
	// ListAgents returns the agents of the given pools in creation order.
	ListAgents(ctx context.Context, poolIDs ...string) ([]*Agent, error)

	CreateUpdate(ctx context.Context, u *Update) error
	GetUpdate(ctx context.Context, poolID, id string) (*Update, error)
	// GetUpdateHeader returns an update without its agents (Agents nil):
	// the status of a 300,000-agent update without reading its rows.
	GetUpdateHeader(ctx context.Context, poolID, id string) (*Update, error)
	// ListUpdates returns a pool's updates in creation order; scheduled
	// selects only scheduled (true) or only ad-hoc (false) updates.
	ListUpdates(ctx context.Context, poolID string, scheduled *bool) ([]*Update, error)
	// ModifyUpdate loads an update, applies fn and saves it atomically,
	// agents included.
	ModifyUpdate(ctx context.Context, poolID, id string, fn func(*Update) error) (*Update, error)
	// DeleteUpdate deletes an update if check (run inside the transaction
	// on the current state) returns nil.
	DeleteUpdate(ctx context.Context, poolID, id string, check func(*Update) error) error

	CreateToken(ctx context.Context, t *Token) error
	TokenByHash(ctx context.Context, hash []byte) (*Token, error)

	CreateClient(ctx context.Context, c *Client) error
	GetClient(ctx context.Context, id string) (*Client, error)
	ClientBySecret(ctx context.Context, hash []byte) (*Client, error)
	// ListClients returns the clients of the given pools (all clients
	// when none are given).
	ListClients(ctx context.Context, poolIDs ...string) ([]*Client, error)
	// ApplyHeartbeats writes a batch of heartbeats in one transaction
	// (group commit).
	ApplyHeartbeats(ctx context.Context, hbs []Heartbeat) error
	// TouchClients records when clients and their agents were last seen.
	TouchClients(ctx context.Context, seen map[string]time.Time) error

	CreateEnrollToken(ctx context.Context, t *EnrollToken) error
	// Enroll spends an enrollment token and creates the client in its
	// pool atomically: ErrNotFound for an unknown token, ErrUsed for a
	// spent one; expiry is the caller's check (in check).
	Enroll(ctx context.Context, hash []byte, check func(*EnrollToken) error, c *Client) error

	// CreateRelease adds a release and its patches to the catalog in one
	// transaction: ErrConflict when the release exists.
	CreateRelease(ctx context.Context, r *Release) error
	// ListReleases returns the releases of name (all when empty), oldest
	// first, with their patches.
	ListReleases(ctx context.Context, name string) ([]*Release, error)
	GetRelease(ctx context.Context, name, version, os, arch string) (*Release, error)

	// ListActiveUpdates returns the updates in the given statuses, with
	// their agents, in (pool, sortOrder, creation) order.
	ListActiveUpdates(ctx context.Context, statuses ...okta.AgentUpdateJobStatus) ([]*Update, error)
	// ListUpdateHeaders returns the updates in the given statuses without
	// their agents (Agents nil), in the same order: for statuses whose
	// updates pile up over time (Cancelled), where reading every agent row
	// would grow with the history.
	ListUpdateHeaders(ctx context.Context, statuses ...okta.AgentUpdateJobStatus) ([]*Update, error)
	// UpdateAgentDiagnostics returns the diagnostics (JSON) a host sent
	// with an agent's failure in an update; "" when none.
	UpdateAgentDiagnostics(ctx context.Context, updateID, agentID string) (string, error)
	// JobOwner returns the id of the client whose agent holds jobID.
	JobOwner(ctx context.Context, jobID string) (string, error)
	// NextSequence returns the next value of a named counter (> 0).
	NextSequence(ctx context.Context, name string, n int) (int64, error)

	// Revision returns the newest committed change revision. Every
	// write to updates, update_agents, agents and clients (but last-seen
	// times: TouchClients) stamps its rows with a new revision, and
	// revisions become visible in commit order, so a reader that
	// remembers the last one it saw misses nothing.
	Revision(ctx context.Context) (int64, error)
	// ChangesSince returns what was committed after revision rev, read
	// in one snapshot. It lists each row (update header, agent's share,
	// agent, client) or tombstone (Deleted, RemovedUpdateAgents) at most
	// once, in its current state and with the revision of its last
	// change, so the order of the lists does not matter: a consumer sets
	// every listed row and drops every tombstone. Every row is returned,
	// however many (an update created for 300,000 hosts is one change).
	// Rows written before the store had revisions have Rev 1, so
	// ChangesSince(0) returns every update (headers), agent's share of
	// an update, agent and client: a consumer can load with it and then
	// follow from its Rev.
	//
	// Rows stamped with a revision listed in skip are left out: a writer
	// that already holds what it wrote (the rollout engine) does not read
	// it back.
	ChangesSince(ctx context.Context, rev int64, skip ...int64) (*Changes, error)
	// WriteRollout writes the engine's decisions (see RolloutWrite) in
	// one transaction with one new revision, sets the written rows' Rev
	// (w.Updates[i].Rev, w.Agents[i].Rev) and returns how many rows were
	// skipped because they had changed: a stored revision other than the
	// row's Rev, a row gone (its update deleted, or the agent removed
	// from it), or for an insert (Rev 0) a row that already exists or an
	// update that no longer does. A key listed twice is written once, by
	// its first entry; the others are skipped.
	WriteRollout(ctx context.Context, w *RolloutWrite) (skipped int, err error)

	// AppendAudit records a change in the audit log and sets e.Seq.
	AppendAudit(ctx context.Context, e *AuditEntry) error
	// ListAudit returns audit entries at or after q.Since and below
	// q.BeforeSeq, newest first, at most q.Limit.
	ListAudit(ctx context.Context, q AuditQuery) ([]*AuditEntry, error)

	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	Close() error
}

const idAlphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// NewID returns an opaque 20-character id starting with prefix, in the
// style of Okta's ids (e.g. "pol3k9Xq...").
func NewID(prefix string) string {
	const n = 20
	b := make([]byte, n-len(prefix))
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	out := []byte(prefix)
	for _, c := range b {
		out = append(out, idAlphabet[int(c)%len(idAlphabet)])
	}
	return string(out)
}
