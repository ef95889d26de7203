package rollout

import "github.com/poolagent/poolagent/controlplane/store"

// The store interns the low-variety columns of the rows it scans (pool
// ids, types, versions, statuses: store.Agent.Intern). Ids are unique per
// row, but not per read: a row the change feed brings back (every report
// of a rollout) carries the same ids as the one it replaces, and an update
// row the same agent id as its agent. Each read brought its own copies; at
// 300,000 hosts those copies were some 60 MB the heap kept and the
// collector traced. The engine keeps the copy it holds.

// keep returns old when s equals it: the copy already kept.
func keep(s, old string) string {
	if s == old {
		return old
	}
	return s
}

// shareAgent makes an agent row share its ids with the row it replaces
// (old; nil for a new agent) or with its host's row.
func (e *Engine) shareAgent(a, old *store.Agent) {
	if old == nil {
		if cs := e.clients[a.ClientID]; cs != nil {
			a.ClientID = cs.c.ID
		}
		return
	}
	a.ID = keep(a.ID, old.ID)
	a.ClientID = keep(a.ClientID, old.ClientID)
	a.Name = keep(a.Name, old.Name)
}

// shareRow makes an update row share its ids with the row it replaces
// (old; zero for a new row) or with its agent's row.
func (e *Engine) shareRow(ua, old *store.UpdateAgent) {
	if ua.AgentID == old.AgentID {
		ua.AgentID = old.AgentID
	} else if as := e.agents[ua.AgentID]; as != nil {
		ua.AgentID = as.a.ID
	}
	ua.JobID = keep(ua.JobID, old.JobID)
}
