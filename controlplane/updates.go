package controlplane

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/rollout"
	"github.com/poolagent/poolagent/controlplane/store"
	"go.uber.org/zap"
)

// getPoolUpdate is the prologue of the handlers of one update: it reads
// the pool and the update named in the path; a missing one is the API's
// 404 naming it.
func (s *Server) getPoolUpdate(r *http.Request) (*store.Pool, *store.Update, error) {
	p, err := s.getPool(r)
	if err != nil {
		return nil, nil, err
	}
	u, err := s.getPathUpdate(r, p)
	if err != nil {
		return nil, nil, err
	}
	return p, u, nil
}

// getPathUpdate reads the update named in the path from pool p (read with
// getPool).
func (s *Server) getPathUpdate(r *http.Request, p *store.Pool) (*store.Update, error) {
	u, err := s.store.GetUpdate(r.Context(), p.ID, r.PathValue("updateId"))
	if err != nil {
		return nil, updateErr(r, err)
	}
	return u, nil
}

// updateErr maps a store error about the update named in the path to the
// API's 404; other errors pass through.
func updateErr(r *http.Request, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound("agent pool update " + r.PathValue("updateId"))
	}
	return err
}

// updateView renders an update with its agents (the replies of writes;
// the GETs stream the same JSON: updateread.go).
func (s *Server) updateView(r *http.Request, u *store.Update, agents map[string]*store.Agent) okta.AgentPoolUpdate {
	cat, _ := s.catalog(r.Context()) // nil on a store error: isLatestGAedVersion is left out
	v := s.updateHead(r, u, cat)
	v.Agents = make([]okta.Agent, 0, len(u.Agents))
	for i := range u.Agents {
		v.Agents = append(v.Agents, s.updateAgent(u, &u.Agents[i], agents[u.Agents[i].AgentID], cat))
	}
	return v
}

// completeAgents adds to an "all agents" update that is Scheduled or
// InProgress the pool's agents it has no row for yet, Scheduled, in the
// pool's order: the rows of a new update that the rollout engine has not
// written yet, so the update reads back complete. list is the pool's
// agents in creation order.
func completeAgents(u *store.Update, list []*store.Agent) {
	if !u.AllAgents || (u.Status != okta.JobScheduled && u.Status != okta.JobInProgress) || len(u.Agents) >= len(list) {
		return
	}
	have := make(map[string]bool, len(u.Agents))
	for _, ua := range u.Agents {
		have[ua.AgentID] = true
	}
	for _, a := range list {
		if !have[a.ID] {
			u.Agents = append(u.Agents, store.UpdateAgent{AgentID: a.ID, Position: len(u.Agents), Status: okta.InstanceScheduled, ModifiedAt: u.CreatedAt})
		}
	}
}

// needsAgents reports whether completeAgents may add rows to u.
func needsAgents(u *store.Update) bool {
	return u.AllAgents && (u.Status == okta.JobScheduled || u.Status == okta.JobInProgress)
}

// poolAgents returns a pool's agents by id, and in creation order.
func (s *Server) poolAgents(r *http.Request, poolID string) (map[string]*store.Agent, []*store.Agent, error) {
	list, err := s.store.ListAgents(r.Context(), poolID)
	if err != nil {
		return nil, nil, err
	}
	m := make(map[string]*store.Agent, len(list))
	for _, a := range list {
		m[a.ID] = a
	}
	return m, list, nil
}

// handleListUpdates serves GET /api/v1/agentPools/{poolId}/updates.
func (s *Server) handleListUpdates(w http.ResponseWriter, r *http.Request, _ *store.Token) error {
	p, err := s.getPool(r)
	if err != nil {
		return err
	}
	var scheduled *bool
	if v := r.URL.Query().Get("scheduled"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return newOktaError(http.StatusBadRequest, okta.CodeValidation, "Api validation failed: query parameters",
				fmt.Sprintf("scheduled: must be true or false, got %q", v))
		}
		scheduled = &b
	}
	return s.listUpdates(w, r, p, scheduled) // streamed: updateread.go
}

// handleGetUpdate serves GET /api/v1/agentPools/{poolId}/updates/{updateId}.
func (s *Server) handleGetUpdate(w http.ResponseWriter, r *http.Request, _ *store.Token) error {
	return s.getUpdate(w, r) // streamed, with paging: updateread.go
}

// updateWrite is what a create, a modify or a lifecycle action reads
// before it writes: the pool, the reply's query, the checked body (nil for
// an action) and the pool's agents (listAgents).
type updateWrite struct {
	pool   *store.Pool
	reply  agentsQuery
	body   *parsedUpdate
	agents map[string]*store.Agent
	list   []*store.Agent
}

// readUpdateWrite is the shared prologue of create, modify (withBody)
// and the lifecycle actions (no body): every check that can refuse the
// request runs before anything is written.
func (s *Server) readUpdateWrite(r *http.Request, withBody bool) (*updateWrite, error) {
	p, err := s.getPool(r)
	if err != nil {
		return nil, err
	}
	// The pool's hosts that check in while the update is written and its
	// jobs made are told to come back soon (notify says so again after
	// the write; a refused request's mark ends with the next tick).
	s.engine.Expect(p.ID)
	in := &updateWrite{pool: p}
	if in.reply, err = replyQuery(r); err != nil {
		return nil, err
	}
	if withBody {
		if in.body, err = parseUpdateBody(r, p); err != nil {
			return nil, err
		}
		if err := s.checkTargetChannel(r, p, in.body); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// listAgents reads the pool's agents into in.
func (in *updateWrite) listAgents(s *Server, r *http.Request) (err error) {
	in.agents, in.list, err = s.poolAgents(r, in.pool.ID)
	return err
}

// readUpdateWriteAgents is readUpdateWrite with the pool's agents read
// (modify and the lifecycle actions need them all).
func (s *Server) readUpdateWriteAgents(r *http.Request, withBody bool) (*updateWrite, error) {
	in, err := s.readUpdateWrite(r, withBody)
	if err == nil {
		err = in.listAgents(s, r)
	}
	return in, err
}

// handleCreateUpdate serves POST /api/v1/agentPools/{poolId}/updates.
func (s *Server) handleCreateUpdate(w http.ResponseWriter, r *http.Request, tok *store.Token) error {
	in, err := s.readUpdateWrite(r, true)
	if err != nil {
		return err
	}
	// An update of every agent answered with agents=none (how a script
	// creates one at scale) needs only their count: the engine's, not a
	// listing of the pool (seconds at 300,000 hosts, while the pool's
	// hosts wait for their jobs).
	counted, byCount := 0, false
	allAgents := in.body.Agents == nil || len(*in.body.Agents) == 0
	if n, ok := s.engine.PoolAgents(in.pool.ID); ok && allAgents && in.reply.none {
		counted, byCount = n, true
	} else if err := in.listAgents(s, r); err != nil {
		return err
	}
	p, q, b, agents, list := in.pool, in.reply, in.body, in.agents, in.list
	now := s.clock.Now().UTC()
	u := &store.Update{
		ID:         store.NewID("upd"),
		PoolID:     p.ID,
		AgentType:  p.Type,
		Enabled:    true,
		Schedule:   b.schedule,
		CreatedAt:  now,
		ModifiedAt: now,
	}
	applyFields(u, b)
	if err := setUpdateAgents(u, b.Agents, agents, list, now); err != nil {
		return err
	}
	u.Status = okta.JobInProgress // flow 2: starts at once
	if u.Schedule != nil {
		u.Status = okta.JobScheduled // flow 3: waits for its window
	}
	// An update of every agent of the pool is stored without its agents'
	// rows: the rollout engine adds them, in batches, at its next tick
	// (reads complete them meanwhile: completeAgents). A 300,000-host
	// update is created in the time of one row.
	rows := u.Agents
	if u.AllAgents {
		u.Agents = nil
	}
	err = s.store.CreateUpdate(r.Context(), u)
	u.Agents = rows
	if err != nil {
		return err
	}
	s.log.Info("update created", updateFields(u)...)
	s.audit(r.Context(), tok, store.AuditEntry{Action: AuditUpdateCreate, PoolID: p.ID, UpdateID: u.ID, StatusAfter: string(u.Status),
		Detail: "targetVersion " + u.TargetVersion})
	var sum rollout.Summary
	if byCount {
		sum = s.engine.Created(u.ID, counted) // before the engine may tick on it
	}
	s.notify(p.ID)
	if byCount {
		s.writeUpdateCounts(w, r, http.StatusCreated, u, sum.Counts, sum.Total)
		return nil
	}
	s.writeUpdate(w, r, http.StatusCreated, u, agents, q)
	return nil
}

// checkTargetChannel refuses a body's targetVersion that the pool's
// release channel does not take. The catalog is read fresh: a release
// published a moment ago counts.
func (s *Server) checkTargetChannel(r *http.Request, p *store.Pool, b *parsedUpdate) error {
	if b.TargetVersion == nil || *b.TargetVersion == "" {
		return nil
	}
	cat, err := s.loadCatalog(r.Context(), true)
	if err != nil {
		return err
	}
	if oerr := checkChannel(p, cat, *b.TargetVersion); oerr != nil {
		return oerr
	}
	return nil
}

// setUpdateAgents sets the agents an update targets: the named ones (each
// must belong to the pool), or every agent of the pool when none are
// named. Agents that stay keep their status; new ones are Scheduled.
func setUpdateAgents(u *store.Update, refs *[]agentRef, agents map[string]*store.Agent, list []*store.Agent, now time.Time) error {
	if refs == nil && len(u.Agents) > 0 {
		return nil
	}
	var ids []string
	u.AllAgents = refs == nil || len(*refs) == 0
	if u.AllAgents {
		for _, a := range list {
			ids = append(ids, a.ID)
		}
	} else {
		var causes []string
		for i, ref := range *refs {
			if agents[ref.ID] == nil {
				causes = append(causes, fmt.Sprintf("agents[%d].id: agent %s is not in agent pool %s", i, ref.ID, u.PoolID))
			}
			ids = append(ids, ref.ID)
		}
		if len(causes) > 0 {
			return errValidation(causes...)
		}
	}
	old := map[string]store.UpdateAgent{}
	for _, ua := range u.Agents {
		old[ua.AgentID] = ua
	}
	u.Agents = u.Agents[:0]
	for _, id := range ids {
		ua, ok := old[id]
		if !ok {
			ua = store.UpdateAgent{AgentID: id, Status: okta.InstanceScheduled, ModifiedAt: now}
		}
		u.Agents = append(u.Agents, ua)
	}
	return nil
}

// handleModifyUpdate serves POST /api/v1/agentPools/{poolId}/updates/{updateId}.
// Fields absent from the body keep their values.
func (s *Server) handleModifyUpdate(w http.ResponseWriter, r *http.Request, tok *store.Token) error {
	in, err := s.readUpdateWriteAgents(r, true)
	if err != nil {
		return err
	}
	p, q, b, agents, list := in.pool, in.reply, in.body, in.agents, in.list
	now := s.clock.Now().UTC()
	var from okta.AgentUpdateJobStatus
	u, err := s.store.ModifyUpdate(r.Context(), p.ID, r.PathValue("updateId"), func(u *store.Update) error {
		from = u.Status
		completeAgents(u, list) // rows the engine has not written yet are written here
		wasScheduled := u.Schedule != nil
		applyFields(u, b)
		if b.Agents != nil && !sameAgents(u, *b.Agents) {
			if err := setUpdateAgents(u, b.Agents, agents, list, now); err != nil {
				return err
			}
		}
		// A schedule added to (or removed from) an update that has not
		// started moves it between flow 3 and flow 2.
		if !wasScheduled && u.Schedule != nil && u.Status == okta.JobInProgress && !anyStarted(u) {
			u.Status = okta.JobScheduled
		} else if wasScheduled && u.Schedule == nil && u.Status == okta.JobScheduled {
			u.Status = okta.JobInProgress
		}
		u.ModifiedAt = now
		return nil
	})
	if err != nil {
		return updateErr(r, err)
	}
	s.log.Info("update modified", updateFields(u)...)
	s.audit(r.Context(), tok, store.AuditEntry{Action: AuditUpdateModify, PoolID: p.ID, UpdateID: u.ID, StatusBefore: string(from),
		StatusAfter: string(u.Status), Detail: "targetVersion " + u.TargetVersion})
	s.notify(p.ID)
	s.writeUpdate(w, r, http.StatusCreated, u, agents, q)
	return nil
}

// sameAgents reports whether refs names the update's current agents, so a
// client sending back the object it received (an "all agents" update lists
// every agent) does not pin the list.
func sameAgents(u *store.Update, refs []agentRef) bool {
	if len(refs) == 0 {
		return u.AllAgents
	}
	if len(refs) != len(u.Agents) {
		return false
	}
	for i, ref := range refs {
		if u.Agents[i].AgentID != ref.ID {
			return false
		}
	}
	return true
}

func anyStarted(u *store.Update) bool {
	return slices.ContainsFunc(u.Agents, func(a store.UpdateAgent) bool { return a.Status != okta.InstanceScheduled })
}

// handleDeleteUpdate serves DELETE /api/v1/agentPools/{poolId}/updates/{updateId}.
func (s *Server) handleDeleteUpdate(w http.ResponseWriter, r *http.Request, tok *store.Token) error {
	p, err := s.getPool(r)
	if err != nil {
		return err
	}
	var from okta.AgentUpdateJobStatus
	err = s.store.DeleteUpdate(r.Context(), p.ID, r.PathValue("updateId"), func(u *store.Update) error {
		from = u.Status
		if _, ok := rollout.FindTransition(u, okta.ActionDelete); !ok {
			return illegal(u, okta.ActionDelete)
		}
		return refuseDuringRollback(u, okta.ActionDelete)
	})
	if err != nil {
		return updateErr(r, err)
	}
	s.log.Info("update deleted", zap.String("pool", p.ID), zap.String("update", r.PathValue("updateId")))
	s.audit(r.Context(), tok, store.AuditEntry{Action: AuditUpdateDelete, PoolID: p.ID, UpdateID: r.PathValue("updateId"), StatusBefore: string(from)})
	s.notify(p.ID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleAction serves the lifecycle POSTs (activate, deactivate, pause,
// resume, retry, stop). They carry no body.
func (s *Server) handleAction(a okta.UpdateAction) func(w http.ResponseWriter, r *http.Request, tok *store.Token) error {
	return func(w http.ResponseWriter, r *http.Request, tok *store.Token) error {
		in, err := s.readUpdateWriteAgents(r, false)
		if err != nil {
			return err
		}
		rollback, err := rollbackQuery(r, a)
		if err != nil {
			return err
		}
		p, q, agents, list := in.pool, in.reply, in.agents, in.list
		now := s.clock.Now().UTC()
		var from okta.AgentUpdateJobStatus
		u, err := s.store.ModifyUpdate(r.Context(), p.ID, r.PathValue("updateId"), func(u *store.Update) error {
			from = u.Status
			completeAgents(u, list) // rows the engine has not written yet are written here
			return applyActionRollback(u, a, rollback, now)
		})
		if err != nil {
			return updateErr(r, err)
		}
		s.log.Info("update "+string(a), append(updateFields(u), statusField("from", from))...)
		s.audit(r.Context(), tok, store.AuditEntry{Action: "update." + string(a), PoolID: p.ID, UpdateID: u.ID,
			StatusBefore: string(from), StatusAfter: string(u.Status)})
		s.notify(p.ID)
		s.writeUpdate(w, r, http.StatusCreated, u, agents, q)
		return nil
	}
}
