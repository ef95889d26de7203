package rollout

import (
	"cmp"
	"slices"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
)

// poolState is a pool, its agents and the availability guard's counts.
type poolState struct {
	p      *store.Pool
	agents map[string]*agentState
	h      Health
	// updates are the pool's active updates in (sortOrder, creation)
	// order: the order they take the pool's slots in.
	updates []*updState
	// minDirty: the minimalSupportedVersion check of every agent is due
	// (settings, the catalog or the pool's updates changed); minCheck:
	// that of these agents (their versions changed, or they joined).
	minDirty bool
	minCheck map[*agentState]struct{}
}

// checkMin makes as due for the minimalSupportedVersion check: one agent's
// new version costs one agent's check, not the pool's. Past a quarter of
// the pool the whole pool is checked instead (cheaper then; and on a
// follower, which never checks, the set stays bounded).
func (ps *poolState) checkMin(as *agentState) {
	if ps.minDirty || ps.p.Settings.MinimalSupportedVersion == "" {
		return // the whole pool is checked anyway, or nothing is (a new setting checks it whole)
	}
	if len(ps.minCheck) >= max(len(ps.agents)/4, 16) {
		ps.minDirty = true
		clear(ps.minCheck)
		return
	}
	if ps.minCheck == nil {
		ps.minCheck = map[*agentState]struct{}{}
	}
	ps.minCheck[as] = struct{}{}
}

// free is how many more of the pool's agents may start a job now.
func (ps *poolState) free() int {
	return max(ps.p.Settings.MaxUnavailable, 1) - ps.h.Live - ps.h.UnhealthyIdle
}

// agentState is one agent as the engine sees it.
type agentState struct {
	a      *store.Agent
	pool   *poolState
	client *clientState
	busy   int // jobs in flight for this agent
	// watchedBy are the updates watching this agent after its install.
	watchedBy []*updState
	// What the agent adds to its pool's Health now.
	counted             bool
	op, disc, idleUnfit bool
}

// hostRow is what the engine keeps of a client row: at 300,000 hosts a
// whole store.Client each (its hostname, secret hash, status ...) was
// 60 MB the engine never reads.
type hostRow struct {
	ID, PoolID, OS, Arch, AgentVersion, Timezone string
}

// clientState is one host.
type clientState struct {
	c         hostRow
	seen      time.Time
	connected bool
	inHeap    bool
	agents    []*agentState
	// zone is the zone host-zoned schedules use for the host;
	// zoneDefault: the default, for want of a known reported zone.
	zone        string
	zoneDefault bool
}

// updState is an active update with its agents' shares.
type updState struct {
	u    *store.Update
	pool *poolState
	idx  map[string]int // agent id -> index in u.Agents
	doc  Doc
	// waves maps agent ids to waves (nil: one wave); computed for the
	// agent count in wavesFor.
	waves    map[string]int
	lastWave int
	wavesFor int
	wavesOK  bool
	// Counts kept as rows change.
	failed, done, live, waiting int
	// byStatus counts the rows by updateStatus.
	byStatus map[okta.AgentUpdateInstanceStatus]int
	// touched: a row changed since the last plan (wave promotion looks).
	touched bool
	// Rows and header the engine changed, to write.
	dirty    map[int]struct{}
	hdrDirty bool
	// replan: the rows need a pass (something that decides who may start
	// changed).
	replan bool
	info   *updInfo // what the update's published jobs share
	// rate is the start-rate bookkeeping of a policy with maxPerMinute or
	// a ramp (ramp.go).
	rate rateState
	// watching maps the agents this update watches after their install
	// to the end of their watch (watch.go).
	watching map[string]time.Time
	// rbPending counts hosts a fleet rollback found moved that wait for
	// a slot, rbOffline those that wait for their host to connect
	// (rollback.go).
	rbPending, rbOffline int
	// zones are a host-zoned update's windows by zone (nil otherwise);
	// zinfo its jobs' infos by zone.
	zones *zoneSet
	zinfo map[string]*updInfo
}

// versionMatters reports whether a new version of agent id can change
// what a pass over us's rows does: its row waits for a job (the dispatch
// compares the version with the target) or was cancelled (it is due
// again), or a fleet rollback runs (it judges which hosts moved). Every
// job that succeeds changes its agent's version: a pass over all rows for
// each would cost the fleet's size per tick while a rollout reports.
func (us *updState) versionMatters(id string) bool {
	if rb := us.doc.State.Rollback; rb != nil && rb.State == RollbackInProgress {
		return true
	}
	i, ok := us.idx[id]
	if !ok {
		return false
	}
	ua := &us.u.Agents[i]
	return ua.Status == okta.InstanceCancelled || (ua.Status == okta.InstanceScheduled && ua.JobID == "")
}

// live reports whether an agent's share holds a job in flight.
func live(ua *store.UpdateAgent) bool {
	if ua.JobID == "" {
		return false
	}
	switch ua.Status {
	case okta.InstanceScheduled, okta.InstanceInProgress, okta.InstancePendingCompletion:
		return true
	}
	return false
}

func (e *Engine) markClient(c *clientState) {
	if c != nil {
		e.dirty[c] = struct{}{}
	}
}

// connectedAt reports whether a host last seen at seen counts as connected.
func (e *Engine) connectedAt(seen, now time.Time) bool {
	return !seen.IsZero() && now.Sub(seen) <= e.d.Config.InactiveAfter
}

// upsertClient applies a client row.
func (e *Engine) upsertClient(c *store.Client, now time.Time) {
	row := hostRow{ID: c.ID, PoolID: c.PoolID, OS: c.OS, Arch: c.Arch, AgentVersion: c.AgentVersion, Timezone: c.Timezone}
	cs := e.clients[c.ID]
	if cs == nil {
		cs = &clientState{c: row}
		e.clients[c.ID] = cs
	} else {
		row.ID = cs.c.ID // the copy kept (share.go)
		cs.c = row
	}
	e.setClientZone(cs)
	e.markClient(cs)
	e.see(cs, c.LastSeen, now)
}

// see records that a host was heard from at t.
func (e *Engine) see(cs *clientState, t, now time.Time) {
	if t.After(cs.seen) {
		cs.seen = t
	}
	if conn := e.connectedAt(cs.seen, now); conn != cs.connected {
		cs.connected = conn
		e.markClient(cs)
		for _, a := range cs.agents {
			e.reclass(a)
		}
	}
	if cs.connected && !cs.inHeap {
		e.live.push(liveEntry{at: cs.seen.Add(e.d.Config.InactiveAfter), c: cs})
		cs.inHeap = true
	}
}

// upsertAgent applies an agent row.
func (e *Engine) upsertAgent(a *store.Agent, now time.Time) {
	as := e.agents[a.ID]
	if as == nil {
		e.shareAgent(a, nil)
		as = &agentState{a: a}
		e.agents[a.ID] = as
	} else {
		old := as.a
		e.shareAgent(a, old)
		as.a = a
		if old.Version != a.Version && as.pool != nil {
			as.pool.checkMin(as)
			for _, us := range as.pool.updates {
				if us.versionMatters(a.ID) {
					us.replan = true
				}
			}
		}
		if old.PoolID != a.PoolID || old.ClientID != a.ClientID {
			e.detachAgent(as)
		}
	}
	if as.pool == nil {
		ps := e.pools[a.PoolID]
		if ps == nil {
			// A pool created after this tick's listing: the row is kept
			// for the next tick (adoptOrphans), which lists the pool; the
			// feed does not bring an unchanged row back.
			delete(e.agents, a.ID)
			e.orphans = append(e.orphans, a)
			return
		}
		as.pool = ps
		ps.agents[a.ID] = as
		ps.checkMin(as)
		for _, us := range ps.updates {
			if us.u.AllAgents && (us.u.Status == okta.JobScheduled || us.u.Status == okta.JobInProgress) {
				if _, ok := us.idx[a.ID]; !ok {
					// Agents that joined the pool join an "all agents"
					// update.
					e.appendRow(us, store.UpdateAgent{AgentID: a.ID, Status: okta.InstanceScheduled, ModifiedAt: now})
					us.dirty[len(us.u.Agents)-1] = struct{}{}
				}
			}
		}
	}
	if as.client == nil && a.ClientID != "" {
		if cs := e.clients[a.ClientID]; cs != nil {
			as.client = cs
			cs.agents = append(cs.agents, as)
		}
	}
	if as.client != nil {
		e.see(as.client, a.LastConnection, now)
		e.markClient(as.client)
	}
	e.reclass(as)
}

// detachAgent takes an agent out of its pool and client (it moved).
func (e *Engine) detachAgent(as *agentState) {
	if as.pool != nil {
		e.uncount(as)
		delete(as.pool.agents, as.a.ID)
		as.pool = nil
	}
	if as.client != nil {
		cs := as.client
		cs.agents = slices.DeleteFunc(cs.agents, func(x *agentState) bool { return x == as })
		e.markClient(cs)
		as.client = nil
	}
}

// uncount removes what an agent adds to its pool's health.
func (e *Engine) uncount(as *agentState) {
	if !as.counted {
		return
	}
	h := &as.pool.h
	h.Size--
	if as.op {
		h.Operational--
	}
	if as.disc {
		h.Disconnected--
	}
	if as.idleUnfit {
		h.UnhealthyIdle--
	}
	as.counted = false
}

// reclass recomputes what an agent adds to its pool's health: OPERATIONAL
// when its host is connected and reports it so; disconnected when its host
// is silent; unfit and idle (using up a slot of maxUnavailable) when not
// OPERATIONAL and holding no job.
func (e *Engine) reclass(as *agentState) {
	if len(as.watchedBy) > 0 {
		e.suspects[as] = struct{}{} // its health or connection may have changed
	}
	if as.pool == nil {
		return
	}
	connected := as.client != nil && as.client.connected
	if as.client == nil {
		connected = e.connectedAt(as.a.LastConnection, e.d.Now())
	}
	op := connected && as.a.OperationalStatus == okta.OperationalStatusOperational
	disc := !connected
	unfit := !op && as.busy == 0
	if as.counted && op == as.op && disc == as.disc && unfit == as.idleUnfit {
		return
	}
	e.uncount(as)
	h := &as.pool.h
	h.Size++
	if op {
		h.Operational++
	}
	if disc {
		h.Disconnected++
	}
	if unfit {
		h.UnhealthyIdle++
	}
	as.op, as.disc, as.idleUnfit, as.counted = op, disc, unfit, true
	for _, us := range as.pool.updates {
		if us.waiting > 0 || us.rbOffline > 0 {
			us.replan = true
		}
	}
}

// addUpdate starts tracking an active update read from the store.
func (e *Engine) addUpdate(u *store.Update) {
	ps := e.pools[u.PoolID]
	if ps == nil {
		return // its pool appears in the next tick's listing
	}
	us := &updState{u: u, pool: ps, idx: make(map[string]int, len(u.Agents)), dirty: map[int]struct{}{}, replan: true,
		byStatus: map[okta.AgentUpdateInstanceStatus]int{}}
	us.doc = ReadDoc(u)
	rows := u.Agents
	u.Agents = make([]store.UpdateAgent, 0, len(rows))
	for _, ua := range rows {
		e.appendRow(us, ua)
	}
	if u.AllAgents && (u.Status == okta.JobScheduled || u.Status == okta.JobInProgress) && len(u.Agents) < len(ps.agents) {
		// An "all agents" update is created without rows (or gained
		// agents since): the engine writes the missing ones, in the
		// pool's order.
		missing := make([]*agentState, 0, len(ps.agents)-len(u.Agents))
		for id, as := range ps.agents {
			if _, ok := us.idx[id]; !ok {
				missing = append(missing, as)
			}
		}
		slices.SortFunc(missing, func(a, b *agentState) int { return cmp.Compare(a.a.Seq, b.a.Seq) })
		for _, as := range missing {
			e.appendRow(us, store.UpdateAgent{AgentID: as.a.ID, Status: okta.InstanceScheduled, ModifiedAt: u.CreatedAt})
			us.dirty[len(u.Agents)-1] = struct{}{}
		}
	}
	e.updates[u.ID] = us
	ps.updates = append(ps.updates, us)
	slices.SortStableFunc(ps.updates, func(a, b *updState) int {
		return cmp.Or(cmp.Compare(a.u.SortOrder, b.u.SortOrder), cmp.Compare(a.u.Seq, b.u.Seq))
	})
}

// removeUpdate stops tracking an update (finished, deleted, reloaded).
func (e *Engine) removeUpdate(us *updState) {
	for i := range us.u.Agents {
		old := us.u.Agents[i]
		us.u.Agents[i] = store.UpdateAgent{AgentID: old.AgentID}
		e.rowChanged(us, i, old)
	}
	delete(e.updates, us.u.ID)
	ps := us.pool
	ps.updates = slices.DeleteFunc(ps.updates, func(x *updState) bool { return x == us })
	us.info = nil
}

// appendRow adds an agent's share to an update.
func (e *Engine) appendRow(us *updState, ua store.UpdateAgent) {
	i := len(us.u.Agents)
	ua.Position = i
	e.shareRow(&ua, &store.UpdateAgent{})
	us.u.Agents = append(us.u.Agents, store.UpdateAgent{AgentID: ua.AgentID})
	us.idx[ua.AgentID] = i
	blank := us.u.Agents[i]
	us.u.Agents[i] = ua
	e.rowChanged(us, i, blank)
	us.replan = true
}

// rowChanged keeps the counts, the agents' load and the job table in step
// with a row that changed from old.
func (e *Engine) rowChanged(us *updState, i int, old store.UpdateAgent) {
	cur := &us.u.Agents[i]
	us.touched = true
	count := func(ua *store.UpdateAgent, d int) {
		us.byStatus[ua.Status] += d
		switch ua.Status {
		case okta.InstanceFailed:
			us.failed += d
			us.done += d
		case okta.InstanceSuccess:
			us.done += d
		case okta.InstanceScheduled:
			if ua.JobID == "" {
				us.waiting += d
			}
		}
	}
	if old.Status != "" {
		count(&old, -1)
	}
	if cur.Status != "" {
		count(cur, 1)
	}
	e.rateRow(us, old, cur)
	wasLive, isLive := live(&old), live(cur)
	as := e.agents[cur.AgentID]
	if wasLive != isLive {
		d := 1
		if wasLive {
			d = -1
		}
		us.live += d
		us.pool.h.Live += d
		if as != nil {
			as.busy += d
			e.reclass(as)
		}
		if wasLive && us.waiting > 0 {
			us.replan = true // a slot freed
		}
	}
	if cur.Status == okta.InstanceCancelled {
		us.replan = true
	}
	if as != nil && (wasLive || isLive) && (old.JobID != cur.JobID || old.Status != cur.Status || wasLive != isLive) {
		e.markClient(as.client)
	}
	e.watchRow(us, cur, &old, as)
}

// wavesOf returns the update's wave assignment, computed again when its
// agents changed.
func (us *updState) wavesOf() (map[string]int, int) {
	if !us.wavesOK || us.wavesFor != len(us.u.Agents) {
		us.waves, us.lastWave = Waves(us.u, us.doc.Policy)
		us.wavesFor, us.wavesOK = len(us.u.Agents), true
	}
	return us.waves, us.lastWave
}

// adoptOrphans applies again the agent rows whose pool was not listed yet
// when they arrived, now that the pools were listed again; rows of a pool
// still unknown (deleted) are dropped. It runs before the change feed, so
// a newer row of the same agent in the feed wins.
func (e *Engine) adoptOrphans(now time.Time) {
	orphans := e.orphans
	e.orphans = nil
	for _, a := range orphans {
		if e.pools[a.PoolID] != nil && e.agents[a.ID] == nil {
			e.upsertAgent(a, now)
		}
	}
}
