package store

import "github.com/poolagent/poolagent/internal/intern"

// The backends intern a row's low-cardinality columns as they scan it: the
// rollout engine keeps every agent, client and update_agents row of the
// fleet in memory, and at 300,000 hosts one copy of each pool id, type,
// version and status per row is tens of megabytes of identical strings.
// Ids, names and hostnames are unique per row and are left alone.

// Intern makes a's low-cardinality fields share one copy per value.
func (a *Agent) Intern() {
	a.PoolID = intern.String(a.PoolID)
	a.AgentName = intern.String(a.AgentName)
	a.Type = intern.Of(a.Type)
	a.Version = intern.String(a.Version)
	a.OperationalStatus = intern.Of(a.OperationalStatus)
	a.OperationalMessage = intern.String(a.OperationalMessage)
}

// Intern makes c's low-cardinality fields share one copy per value.
func (c *Client) Intern() {
	c.PoolID = intern.String(c.PoolID)
	c.Type = intern.String(c.Type)
	c.Status = intern.String(c.Status)
	c.OS = intern.String(c.OS)
	c.Arch = intern.String(c.Arch)
	c.AgentVersion = intern.String(c.AgentVersion)
	c.Timezone = intern.String(c.Timezone)
}

// Intern makes r's low-cardinality fields share one copy per value: an
// active update at 300,000 hosts holds 300,000 of these rows.
func (r *UpdateAgentRow) Intern() {
	r.UpdateID = intern.String(r.UpdateID)
	r.Status = intern.Of(r.Status)
	r.Message = intern.String(r.Message)
	r.Phase = intern.String(r.Phase)
	r.FromVersion = intern.String(r.FromVersion)
}
