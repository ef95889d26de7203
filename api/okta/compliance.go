package okta

// ComplianceState is one way a pool's agent is or is not compliant
// (extension, GET /api/v1/agentPools/{poolId}/compliance).
//
// Latest, Updating, Outdated and Unknown are the version classes: each
// agent is in exactly one of them. BelowMinimum overlaps them. Unreachable
// and Degraded are the health classes: an agent is in at most one of them,
// whatever its version class.
type ComplianceState string

// The compliance states.
const (
	// ComplianceLatest: on the pool's latest version (or newer), holding
	// no job.
	ComplianceLatest ComplianceState = "latest"
	// ComplianceUpdating: holding a job of an active update, whatever its
	// version.
	ComplianceUpdating ComplianceState = "updating"
	// ComplianceOutdated: below the pool's latest version, holding no job.
	ComplianceOutdated ComplianceState = "outdated"
	// ComplianceUnknown: holding no job, and either the agent reported no
	// version or the pool has no latest version to compare with.
	ComplianceUnknown ComplianceState = "unknown"
	// ComplianceBelowMinimum: below the pool's minimalSupportedVersion
	// (whether or not it is updating).
	ComplianceBelowMinimum ComplianceState = "belowMinimum"
	// ComplianceUnreachable: INACTIVE, its host not heard from for
	// heartbeat.inactive_after intervals (or never).
	ComplianceUnreachable ComplianceState = "unreachable"
	// ComplianceDegraded: heard from, and its host reports it DEGRADED or
	// DISRUPTED.
	ComplianceDegraded ComplianceState = "degraded"
)

// ComplianceStates lists every compliance state in the order counts are
// shown.
var ComplianceStates = []ComplianceState{ComplianceLatest, ComplianceUpdating, ComplianceOutdated, ComplianceUnknown,
	ComplianceBelowMinimum, ComplianceUnreachable, ComplianceDegraded}

// ComplianceCounts counts a pool's agents by compliance state. Latest +
// Updating + Outdated + Unknown = Total; BelowMinimum, Unreachable and
// Degraded overlap them (Unreachable and Degraded never overlap each
// other). NonCompliant counts the agents the nonCompliant list holds over
// all its pages.
type ComplianceCounts struct {
	Latest       int `json:"latest"`
	Updating     int `json:"updating"`
	Outdated     int `json:"outdated"`
	Unknown      int `json:"unknown"`
	BelowMinimum int `json:"belowMinimum"`
	Unreachable  int `json:"unreachable"`
	Degraded     int `json:"degraded"`
	Total        int `json:"total"`
	NonCompliant int `json:"nonCompliant"`
}

// Of returns the count of one state (0 for an unknown state).
func (c ComplianceCounts) Of(s ComplianceState) int {
	switch s {
	case ComplianceLatest:
		return c.Latest
	case ComplianceUpdating:
		return c.Updating
	case ComplianceOutdated:
		return c.Outdated
	case ComplianceUnknown:
		return c.Unknown
	case ComplianceBelowMinimum:
		return c.BelowMinimum
	case ComplianceUnreachable:
		return c.Unreachable
	case ComplianceDegraded:
		return c.Degraded
	}
	return 0
}

// NonCompliantAgent is an agent of a pool that is not on the pool's latest
// version, healthy and reachable: its version, status and every state it
// is in.
type NonCompliantAgent struct {
	ID                string            `json:"id"`
	Name              string            `json:"name,omitempty"`
	Version           string            `json:"version,omitempty"`
	OperationalStatus OperationalStatus `json:"operationalStatus"`
	States            []ComplianceState `json:"states"`
}

// PoolCompliance is the reply of GET /api/v1/agentPools/{poolId}/compliance
// (extension): the pool's versions, its agents counted by compliance state,
// and a page of its non-compliant agents (NonCompliant; more pages behind
// the Link header's rel="next").
type PoolCompliance struct {
	PoolID                  string              `json:"poolId"`
	PoolName                string              `json:"poolName"`
	AgentType               AgentType           `json:"agentType"`
	LatestVersion           string              `json:"latestVersion,omitempty"`
	MinimalSupportedVersion string              `json:"minimalSupportedVersion,omitempty"`
	Counts                  ComplianceCounts    `json:"counts"`
	NonCompliant            []NonCompliantAgent `json:"nonCompliant"`
}
