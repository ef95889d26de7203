// Package okta holds the wire types of Okta's Agent Pools management API
// (/api/v1/agentPools/...) as poolserver serves it and the official Okta
// SDKs decode it: pools, agents, updates, update settings, schedules,
// lifecycle actions and Okta's error object, and poolserver's extensions
// (the release catalog, the audit log).
package okta

import (
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// AgentType is the kind of agent a pool holds.
type AgentType string

// The agent types of the seed.
const (
	AgentTypeAD     AgentType = "AD"
	AgentTypeIWA    AgentType = "IWA"
	AgentTypeLDAP   AgentType = "LDAP"
	AgentTypeMFA    AgentType = "MFA"
	AgentTypeOPP    AgentType = "OPP"
	AgentTypeRUM    AgentType = "RUM"
	AgentTypeRadius AgentType = "Radius"
)

// AgentTypes lists every AgentType in the order pools are listed.
var AgentTypes = []AgentType{AgentTypeAD, AgentTypeIWA, AgentTypeLDAP, AgentTypeMFA, AgentTypeOPP, AgentTypeRUM, AgentTypeRadius}

// Valid reports whether t is one of the seed's agent types.
func (t AgentType) Valid() bool { return slices.Contains(AgentTypes, t) }

// ParseAgentType returns the agent type s names, compared without regard
// to case ("RADIUS" and "radius" are Radius), and whether it names one.
func ParseAgentType(s string) (AgentType, bool) {
	for _, t := range AgentTypes {
		if strings.EqualFold(s, string(t)) {
			return t, true
		}
	}
	return "", false
}

// OperationalStatus is the health of an agent or a pool.
type OperationalStatus string

// The operational statuses of the seed.
const (
	OperationalStatusDegraded    OperationalStatus = "DEGRADED"
	OperationalStatusDisrupted   OperationalStatus = "DISRUPTED"
	OperationalStatusInactive    OperationalStatus = "INACTIVE"
	OperationalStatusOperational OperationalStatus = "OPERATIONAL"
)

// Valid reports whether s is one of the seed's operational statuses.
func (s OperationalStatus) Valid() bool {
	switch s {
	case OperationalStatusDegraded, OperationalStatusDisrupted, OperationalStatusInactive, OperationalStatusOperational:
		return true
	}
	return false
}

// AgentUpdateInstanceStatus is one agent's progress in an update.
type AgentUpdateInstanceStatus string

// The per-agent update statuses of the seed.
const (
	InstanceCancelled         AgentUpdateInstanceStatus = "Cancelled"
	InstanceFailed            AgentUpdateInstanceStatus = "Failed"
	InstanceInProgress        AgentUpdateInstanceStatus = "InProgress"
	InstancePendingCompletion AgentUpdateInstanceStatus = "PendingCompletion"
	InstanceScheduled         AgentUpdateInstanceStatus = "Scheduled"
	InstanceSuccess           AgentUpdateInstanceStatus = "Success"
)

// Valid reports whether s is one of the seed's per-agent update statuses.
func (s AgentUpdateInstanceStatus) Valid() bool {
	switch s {
	case InstanceCancelled, InstanceFailed, InstanceInProgress, InstancePendingCompletion, InstanceScheduled, InstanceSuccess:
		return true
	}
	return false
}

// AgentUpdateJobStatus is an update's overall status.
type AgentUpdateJobStatus string

// The update statuses of the seed.
const (
	JobCancelled  AgentUpdateJobStatus = "Cancelled"
	JobFailed     AgentUpdateJobStatus = "Failed"
	JobInProgress AgentUpdateJobStatus = "InProgress"
	JobPaused     AgentUpdateJobStatus = "Paused"
	JobScheduled  AgentUpdateJobStatus = "Scheduled"
	JobSuccess    AgentUpdateJobStatus = "Success"
)

// Valid reports whether s is one of the seed's update statuses.
func (s AgentUpdateJobStatus) Valid() bool {
	switch s {
	case JobCancelled, JobFailed, JobInProgress, JobPaused, JobScheduled, JobSuccess:
		return true
	}
	return false
}

// ReleaseChannel is the release channel a pool follows.
type ReleaseChannel string

// The release channels of the seed.
const (
	ChannelBeta ReleaseChannel = "BETA"
	ChannelEA   ReleaseChannel = "EA"
	ChannelGA   ReleaseChannel = "GA"
	ChannelTest ReleaseChannel = "TEST"
)

// Valid reports whether c is one of the seed's release channels.
func (c ReleaseChannel) Valid() bool {
	switch c {
	case ChannelBeta, ChannelEA, ChannelGA, ChannelTest:
		return true
	}
	return false
}

// UpdateAction is an operator's lifecycle action on an update: the last
// path segment of POST /api/v1/agentPools/{poolId}/updates/{updateId}/{action},
// or ActionDelete for DELETE of the update. The state machine that applies
// it lives in controlplane/rollout.
type UpdateAction string

// The lifecycle actions of the Agent Pools API.
const (
	ActionActivate   UpdateAction = "activate"
	ActionDeactivate UpdateAction = "deactivate"
	ActionPause      UpdateAction = "pause"
	ActionResume     UpdateAction = "resume"
	ActionStop       UpdateAction = "stop"
	ActionRetry      UpdateAction = "retry"
	ActionDelete     UpdateAction = "delete" // DELETE of the update, not a POST path segment
)

// Release is one published artifact of the catalog, an entry of
// GET /api/v1/releases (extension).
type Release struct {
	Name        string         `json:"name"`
	Version     string         `json:"version"`
	OS          string         `json:"os"`
	Arch        string         `json:"arch"`
	Channel     ReleaseChannel `json:"channel"`
	Size        int64          `json:"size"`
	SHA256      string         `json:"sha256"`
	PublishedAt time.Time      `json:"publishedAt"`
	URL         string         `json:"url"`
	// Patches are the binary patches to this release from earlier ones
	// (oldest source first); hosts on one of those versions download a
	// patch instead of the whole file.
	Patches []ReleasePatch `json:"patches,omitempty"`
}

// ReleasePatch is a bsdiff patch from an earlier release (extension).
type ReleasePatch struct {
	FromVersion string `json:"fromVersion"`
	FromSHA256  string `json:"fromSha256"` // the source artifact's SHA-256
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"` // the patch file's SHA-256
	URL         string `json:"url"`
}

// Href is one link of a HAL `_links` object.
type Href struct {
	Href string `json:"href"`
}

// LinksSelf is the `_links` object with a self link.
type LinksSelf struct {
	Self *Href `json:"self,omitempty"`
}

// Agent is one managed program on one host, as a member of a pool.
type Agent struct {
	ID                  string            `json:"id,omitempty"`
	IsHidden            *bool             `json:"isHidden,omitempty"`
	IsLatestGAedVersion *bool             `json:"isLatestGAedVersion,omitempty"`
	LastConnection      *time.Time        `json:"lastConnection,omitempty"`
	Name                string            `json:"name,omitempty"`
	OperationalStatus   OperationalStatus `json:"operationalStatus,omitempty"`
	// OperationalMessage is a read-only extension, present when the
	// agent is not OPERATIONAL because its host's health watch failed:
	// why ("health check failed: GET ...: HTTP 503", "crash loop: ...").
	OperationalMessage string                    `json:"operationalMessage,omitempty"`
	PoolID             string                    `json:"poolId,omitempty"`
	Type               AgentType                 `json:"type,omitempty"`
	UpdateMessage      string                    `json:"updateMessage,omitempty"`
	UpdateStatus       AgentUpdateInstanceStatus `json:"updateStatus,omitempty"`
	Version            string                    `json:"version,omitempty"`
	Links              *LinksSelf                `json:"_links,omitempty"`
	// Progress is a read-only extension of an update's agents, present
	// once the agent's host has been handed a job of the update: the
	// host's last reported progress, 0 to 100.
	Progress *int `json:"progress,omitempty"`
	// Phase is a read-only extension next to Progress: the step the host
	// last reported (e.g. "download", "swap"), when it named one.
	Phase string `json:"phase,omitempty"`
	// DispatchedAt is a read-only extension next to Progress: when the
	// server handed the agent's host its job of the update (the time the
	// update's start rate, rollout.maxPerMinute and rollout.ramp, counts).
	DispatchedAt *time.Time `json:"dispatchedAt,omitempty"`
	// ClockSkewSeconds is an extension, present once the agent's host
	// sent a timestamped heartbeat to this server: the server's receive
	// time minus the host's timestamp, in seconds (positive: the host's
	// clock is behind).
	ClockSkewSeconds *float64 `json:"clockSkewSeconds,omitempty"`
	// ReportedType is an extension, present only on the entry of a
	// managed agent whose type is not its pool's (updateMessage starts
	// TYPE_MISMATCH): the type its host reported. It is no agent of the
	// pool: no update can name it.
	ReportedType string `json:"reportedType,omitempty"`
}

// AgentPool is a group of agents of one type.
type AgentPool struct {
	Agents            []Agent           `json:"agents"`
	ID                string            `json:"id"`
	Name              string            `json:"name"`
	OperationalStatus OperationalStatus `json:"operationalStatus"`
	Type              AgentType         `json:"type"`
}

// AutoUpdateSchedule is an update's maintenance schedule.
type AutoUpdateSchedule struct {
	Cron        string     `json:"cron,omitempty"`
	Delay       *int       `json:"delay,omitempty"`
	Duration    *int       `json:"duration,omitempty"`
	LastUpdated *time.Time `json:"lastUpdated,omitempty"`
	Timezone    string     `json:"timezone,omitempty"`
}

// AgentPoolUpdate is a fleet-wide update of a pool's agents.
type AgentPoolUpdate struct {
	Agents        []Agent              `json:"agents"`
	AgentType     AgentType            `json:"agentType,omitempty"`
	Enabled       bool                 `json:"enabled"`
	ID            string               `json:"id"`
	Name          string               `json:"name,omitempty"`
	NotifyAdmin   bool                 `json:"notifyAdmin"`
	Reason        string               `json:"reason,omitempty"`
	Schedule      *AutoUpdateSchedule  `json:"schedule,omitempty"`
	SortOrder     int                  `json:"sortOrder"`
	Status        AgentUpdateJobStatus `json:"status"`
	TargetVersion string               `json:"targetVersion,omitempty"`
	Links         *LinksSelf           `json:"_links,omitempty"`
	// AllowDowngrade is an extension, present only when true: the update
	// may install a version below the installed one.
	AllowDowngrade bool `json:"allowDowngrade,omitempty"`
	// NextWindow is a read-only extension, present only on a scheduled
	// update that is Scheduled, InProgress, Paused or Failed: its current
	// maintenance window while open, else the next one.
	NextWindow *UpdateWindow `json:"nextWindow,omitempty"`
	// Rollout is an extension, present when the update has a rollout
	// policy: the policy (canary, waves, error budget, splay, ...) and
	// the engine's progress (wave, halted).
	Rollout json.RawMessage `json:"rollout,omitempty"`
	// AgentCounts is a read-only extension: how many of the update's
	// agents are in each per-agent status (every status of the seed is
	// present, 0 included), whatever part of the agents array the reply
	// carries.
	AgentCounts map[AgentUpdateInstanceStatus]int `json:"agentCounts,omitempty"`
}

// UpdateWindow is one maintenance window of a scheduled update
// (extension): it opens at Start and closes at Finish, both in UTC.
type UpdateWindow struct {
	Start  time.Time `json:"start"`
	Finish time.Time `json:"finish"`
	// Zones is present on a schedule in each host's zone (timezone
	// "host"): the window of every zone holding hosts still to update,
	// earliest first; Start and Finish are the first of them.
	Zones []ZoneWindow `json:"zones,omitempty"`
}

// ZoneWindow is the current or next window of the hosts in one time zone
// under a schedule in each host's zone (extension).
type ZoneWindow struct {
	// Timezone is the IANA zone; hosts that reported none (or one the
	// server does not know) are in the default, UTC.
	Timezone string    `json:"timezone"`
	Start    time.Time `json:"start"`
	Finish   time.Time `json:"finish"`
	// Open: the window is open now.
	Open bool `json:"open"`
	// Hosts is how many of the update's hosts still to update are in it.
	Hosts int `json:"hosts"`
}

// AgentPoolUpdateSetting is a pool's automatic update settings.
type AgentPoolUpdateSetting struct {
	AgentType               AgentType      `json:"agentType"`
	ContinueOnError         bool           `json:"continueOnError"`
	LatestVersion           string         `json:"latestVersion,omitempty"`
	MinimalSupportedVersion string         `json:"minimalSupportedVersion,omitempty"`
	PoolID                  string         `json:"poolId"`
	PoolName                string         `json:"poolName"`
	ReleaseChannel          ReleaseChannel `json:"releaseChannel"`
	// MaxUnavailable is an extension: how many of the pool's agents may
	// be updating or unhealthy at once.
	MaxUnavailable int `json:"maxUnavailable,omitempty"`
	// MinOperational is an extension: no agent gets a job while fewer than
	// this many of the pool's agents are OPERATIONAL.
	MinOperational int `json:"minOperational"`
	// RequireAllConnected is an extension: no agent gets a job while any
	// agent of the pool is disconnected.
	RequireAllConnected bool `json:"requireAllConnected,omitempty"`
	// ArtifactMirrors is an extension: base URLs of mirrors of the
	// artifact store, tried in this order before the store and poolserver.
	// A mirror serves each artifact at <base>/<sha256>.
	ArtifactMirrors []string `json:"artifactMirrors,omitempty"`
}

// ErrorCause is one entry of an Error's errorCauses.
type ErrorCause struct {
	ErrorSummary string `json:"errorSummary"`
}

// Error is Okta's error object. ErrorCauses is always an array (never null):
// the Node SDK falls back to a bare HTTP error otherwise.
type Error struct {
	ErrorCode    string       `json:"errorCode"`
	ErrorSummary string       `json:"errorSummary"`
	ErrorLink    string       `json:"errorLink"`
	ErrorID      string       `json:"errorId"`
	ErrorCauses  []ErrorCause `json:"errorCauses"`
}

// Okta's error codes that poolserver returns.
const (
	CodeValidation       = "E0000001" // API validation failed
	CodeMalformedBody    = "E0000003" // the request body was not well-formed
	CodeAuthentication   = "E0000004" // authentication failed
	CodeForbidden        = "E0000006" // no permission for the action
	CodeNotFound         = "E0000007" // resource not found
	CodeInvalidToken     = "E0000011" // invalid token provided
	CodeMethodNotAllowed = "E0000022" // the endpoint does not support the method
	CodeRateLimit        = "E0000047" // API call exceeded rate limit
	CodeInternal         = "E0000009" // internal server error
)

// AuditActor is who made a change (extension): an API token (type
// "token", its id and name) or a poolserver command (type "cli", id the
// OS user who ran it).
type AuditActor struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// AuditEntry is one entry of GET /api/v1/auditLog (extension). It never
// holds a secret.
type AuditEntry struct {
	ID           string     `json:"id"`
	Published    time.Time  `json:"published"`
	Actor        AuditActor `json:"actor"`
	Action       string     `json:"action"`
	PoolID       string     `json:"poolId,omitempty"`
	UpdateID     string     `json:"updateId,omitempty"`
	Target       string     `json:"target,omitempty"`
	StatusBefore string     `json:"statusBefore,omitempty"`
	StatusAfter  string     `json:"statusAfter,omitempty"`
	Detail       string     `json:"detail,omitempty"`
}
