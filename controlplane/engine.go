package controlplane

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/controlplane/schedule"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/internal/vercmp"
	"go.uber.org/zap"
)

// Engine is the rollout engine. Every tick it moves updates through their
// windows, hands jobs to agents within each pool's concurrency budget,
// aggregates the agents' reports into the update's status, and rebuilds the
// per-client job cache that heartbeats answer from (so a heartbeat reads no
// rollout state from the store).
type Engine struct {
	srv  *Server
	kick chan struct{}

	mu    sync.RWMutex
	jobs  map[string][]sailpoint.Job // by client id
	owner map[string]string          // job id -> client id
	// selfFailed remembers self-updates a host reported failed (client id
	// + version), so the same version is not offered again; in memory: a
	// restarted server offers it once more.
	selfFailed sync.Map
}

func newEngine(s *Server) *Engine {
	return &Engine{srv: s, kick: make(chan struct{}, 1), jobs: map[string][]sailpoint.Job{}, owner: map[string]string{}}
}

// Kick asks for a tick as soon as possible (after an operator's change).
func (e *Engine) Kick() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// leaderLock names the lock replicas on one PostgreSQL database compete
// for: its holder alone writes rollout decisions.
const leaderLock = "poolserver-rollout-engine"

// Run ticks until ctx ends. With a store shared by several replicas
// (store.Leader), one replica leads: it moves updates and hands out jobs;
// the others only rebuild their job caches from the store each tick, so
// heartbeats reach any replica. A replica whose lease dies stops writing
// and competes again.
func (e *Engine) Run(ctx context.Context) {
	t := time.NewTicker(e.srv.cfg.Rollout.Tick.Duration)
	defer t.Stop()
	locker, shared := e.srv.store.(store.Leader)
	var lease store.Lease
	defer func() {
		if lease != nil {
			lease.Release()
		}
	}()
	for {
		lead := true
		if shared {
			if lease != nil && !lease.Alive(ctx) {
				e.srv.log.Warn("lost the rollout engine's leader lock")
				lease.Release()
				lease = nil
			}
			if lease == nil {
				l, err := locker.TryLead(ctx, leaderLock)
				if err != nil && ctx.Err() == nil {
					e.srv.log.Error("take the rollout engine's leader lock", zap.Error(err))
				}
				if l != nil {
					e.srv.log.Info("this replica leads the rollout engine")
					lease = l
				}
			}
			lead = lease != nil
		}
		if err := e.tick(ctx, lead); err != nil && ctx.Err() == nil {
			e.srv.log.Error("rollout tick", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.kick:
		}
	}
}

func (e *Engine) jobsFor(clientID string) []sailpoint.Job {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return slices.Clone(e.jobs[clientID])
}

// owns reports whether jobID is a job of clientID: from the cache for
// jobs in flight, else from the store (a job of an update stopped since).
func (e *Engine) owns(ctx context.Context, clientID, jobID string) bool {
	e.mu.RLock()
	owner, ok := e.owner[jobID]
	e.mu.RUnlock()
	if ok {
		return owner == clientID
	}
	owner, err := e.srv.store.JobOwner(ctx, jobID)
	return err == nil && owner == clientID
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

// tickData is what one tick knows of the fleet.
type tickData struct {
	now     time.Time
	pools   map[string]*store.Pool
	agents  map[string]*store.Agent
	clients map[string]*store.Client
	cat     *catalog
	health  map[string]poolHealth // by pool
}

var errNoChange = errors.New("no change")

// Tick runs the engine once, as the leader.
func (e *Engine) Tick(ctx context.Context) error { return e.tick(ctx, true) }

// tick runs the engine once; a follower (lead false) writes nothing and
// only rebuilds the job cache from the store.
func (e *Engine) tick(ctx context.Context, lead bool) error {
	s := e.srv
	// Hosts that only kept alive since the last tick: their last-seen
	// times decide who is connected.
	s.flushSeen(ctx)
	updates, err := s.store.ListActiveUpdates(ctx, okta.JobScheduled, okta.JobInProgress, okta.JobPaused, okta.JobFailed)
	if err != nil {
		return err
	}
	cat, err := s.loadCatalog(ctx, true)
	if err != nil {
		return err
	}
	allPools := map[string]*store.Pool{}
	for _, t := range okta.AgentTypes {
		pools, err := s.store.ListPools(ctx, store.PoolQuery{Type: t, Limit: 1 << 20})
		if err != nil {
			return err
		}
		for _, p := range pools {
			allPools[p.ID] = p
		}
	}
	if lead {
		created, err := e.enforceMinimum(ctx, updates, cat, allPools)
		if err != nil {
			return err
		}
		updates = append(updates, created...)
	}
	d := &tickData{now: s.clock.Now().UTC(), pools: map[string]*store.Pool{}, agents: map[string]*store.Agent{}, clients: map[string]*store.Client{}}
	d.cat = cat
	var poolIDs []string
	for _, u := range updates {
		if d.pools[u.PoolID] == nil {
			p := allPools[u.PoolID]
			if p == nil {
				continue // pool created after the listing: next tick
			}
			d.pools[u.PoolID] = p
			poolIDs = append(poolIDs, u.PoolID)
		}
	}
	if len(poolIDs) > 0 {
		agents, err := s.store.ListAgents(ctx, poolIDs...)
		if err != nil {
			return err
		}
		for _, a := range agents {
			d.agents[a.ID] = a
		}
		clients, err := s.store.ListClients(ctx, poolIDs...)
		if err != nil {
			return err
		}
		for _, c := range clients {
			d.clients[c.ID] = c
		}
	}
	// The availability guard: at most maxUnavailable of a pool's agents
	// updating (a job in flight) or unhealthy (not OPERATIONAL) at once.
	free := map[string]int{}
	for _, p := range d.pools {
		free[p.ID] = max(p.Settings.MaxUnavailable, 1)
	}
	busy := map[string]bool{}
	for _, u := range updates {
		for i := range u.Agents {
			if live(&u.Agents[i]) {
				free[u.PoolID]--
				busy[u.Agents[i].AgentID] = true
			}
		}
	}
	d.health = map[string]poolHealth{}
	for _, a := range d.agents {
		h := d.health[a.PoolID]
		h.size++
		switch s.operational(a, d.now) {
		case okta.OperationalStatusOperational:
			h.operational++
		case okta.OperationalStatusInactive:
			h.disconnected++
			fallthrough
		default:
			if !busy[a.ID] {
				h.unhealthy++
				free[a.PoolID]--
			}
		}
		d.health[a.PoolID] = h
	}

	jobs := map[string][]sailpoint.Job{}
	owner := map[string]string{}
	for _, u := range updates {
		p := d.pools[u.PoolID]
		if p == nil {
			continue
		}
		// Dry run on the snapshot; write only when something changes.
		dry := cloneUpdate(u)
		slots := free[p.ID]
		if lead && e.plan(dry, p, d, &slots, nil) {
			var seqs *int64
			if slots < free[p.ID] {
				first, err := s.store.NextSequence(ctx, "job", free[p.ID]-slots)
				if err != nil {
					return err
				}
				seqs = &first
			}
			var fresh *store.Update
			slots = free[p.ID]
			_, err := s.store.ModifyUpdate(ctx, u.PoolID, u.ID, func(fu *store.Update) error {
				fresh = fu
				if !e.plan(fu, p, d, &slots, seqs) {
					return errNoChange
				}
				fu.ModifiedAt = d.now
				return nil
			})
			switch {
			case errors.Is(err, errNoChange):
			case errors.Is(err, store.ErrNotFound):
				continue // deleted meanwhile
			case err != nil:
				return fmt.Errorf("update %s: %w", u.ID, err)
			default:
				if fresh.Status != u.Status {
					s.log.Info("update status", zap.String("pool", u.PoolID), zap.String("update", u.ID),
						zap.String("from", string(u.Status)), zap.String("to", string(fresh.Status)))
				}
			}
			free[p.ID] = slots
			if fresh != nil {
				u = fresh
			}
		}
		e.collectJobs(u, p, d, jobs, owner)
	}
	if s.cfg.Rollout.SelfUpdate {
		if err := e.selfUpdates(ctx, d, allPools, jobs, owner); err != nil {
			return err
		}
	}
	e.mu.Lock()
	e.jobs, e.owner = jobs, owner
	e.mu.Unlock()
	return nil
}

// enforceMinimum gives a job to every agent below its pool's
// minimalSupportedVersion that no update covers: it creates an update
// named "minimalSupportedVersion <v>" targeting the pool's latest version.
// An agent in a failed update is left to the operator (retry), so a broken
// release is not retried forever.
func (e *Engine) enforceMinimum(ctx context.Context, updates []*store.Update, cat *catalog, pools map[string]*store.Pool) ([]*store.Update, error) {
	s := e.srv
	covered := map[string]bool{}
	for _, u := range updates {
		for _, ua := range u.Agents {
			covered[ua.AgentID] = true
		}
	}
	var created []*store.Update
	{
		for _, p := range pools {
			min := p.Settings.MinimalSupportedVersion
			if min == "" {
				continue
			}
			target := effectiveLatest(p, cat)
			if target == "" || vercmp.Compare(target, min) < 0 {
				continue // nothing to update to
			}
			agents, err := s.store.ListAgents(ctx, p.ID)
			if err != nil {
				return nil, err
			}
			now := s.clock.Now().UTC()
			u := &store.Update{ID: store.NewID("upd"), PoolID: p.ID, Name: "minimalSupportedVersion " + min, AgentType: p.Type,
				Enabled: true, Status: okta.JobInProgress, TargetVersion: target, CreatedAt: now, ModifiedAt: now,
				Reason: "agents below the pool's minimal supported version " + min}
			for _, a := range agents {
				if a.Version != "" && vercmp.Compare(a.Version, min) < 0 && !covered[a.ID] {
					u.Agents = append(u.Agents, store.UpdateAgent{AgentID: a.ID, Status: okta.InstanceScheduled, ModifiedAt: now})
				}
			}
			if len(u.Agents) == 0 {
				continue
			}
			if err := s.store.CreateUpdate(ctx, u); err != nil {
				return nil, err
			}
			s.log.Info("update created for agents below the minimal supported version", append(updateFields(u), zap.Int("agents", len(u.Agents)))...)
			created = append(created, u)
		}
	}
	return created, nil
}

func cloneUpdate(u *store.Update) *store.Update {
	c := *u
	c.Agents = slices.Clone(u.Agents)
	if u.Schedule != nil {
		sc := *u.Schedule
		c.Schedule = &sc
	}
	return &c
}

// window returns whether u may dispatch now and its current or next
// window. Flow 2 updates are always open (start = creation, no finish).
func (e *Engine) window(u *store.Update, target string, d *tickData) (open bool, start, end time.Time, err error) {
	if u.Schedule == nil {
		return true, u.CreatedAt, time.Time{}, nil
	}
	dur := DefaultWindowMinutes
	if u.Schedule.Duration != nil && *u.Schedule.Duration > 0 {
		dur = *u.Schedule.Duration
	}
	w, err := schedule.NewWindow(u.Schedule.Cron, u.Schedule.Timezone, dur)
	if err != nil {
		return false, time.Time{}, time.Time{}, err
	}
	delay := 0
	if u.Schedule.Delay != nil {
		delay = *u.Schedule.Delay
	}
	released := d.now
	if t, ok := d.cat.published(string(u.AgentType), target); ok {
		released = t
	}
	start, end = w.NextEligible(released, delay, d.now)
	return !d.now.Before(start) && d.now.Before(end), start, end, nil
}

// revoke takes back a job that was handed out but not started.
func revoke(ua *store.UpdateAgent, now time.Time) {
	if ua.Status == okta.InstanceScheduled && ua.JobID != "" {
		ua.JobID, ua.JobSeq, ua.DispatchedAt, ua.Progress, ua.Phase = "", 0, time.Time{}, 0, ""
		ua.ModifiedAt = now
	}
}

func setAgent(ua *store.UpdateAgent, st okta.AgentUpdateInstanceStatus, msg string, now time.Time) {
	if ua.Status != st || ua.Message != msg {
		ua.Status, ua.Message, ua.ModifiedAt = st, msg, now
	}
}

// plan applies the rollout rules to u once and reports whether it changed
// it. slots is the pool's remaining concurrency; seqs, when not nil, hands
// out job sequence numbers (nil: a dry run that only counts).
func (e *Engine) plan(u *store.Update, p *store.Pool, d *tickData, slots *int, seqs *int64) bool {
	before := cloneUpdate(u)
	now := d.now
	target := u.TargetVersion
	if target == "" {
		target = effectiveLatest(p, d.cat)
	}
	active := u.Status == okta.JobScheduled || u.Status == okta.JobInProgress

	// Agents that joined the pool join an "all agents" update.
	if u.AllAgents && active {
		have := map[string]bool{}
		for _, ua := range u.Agents {
			have[ua.AgentID] = true
		}
		for _, a := range d.agents {
			if a.PoolID == u.PoolID && !have[a.ID] {
				u.Agents = append(u.Agents, store.UpdateAgent{AgentID: a.ID, Status: okta.InstanceScheduled, ModifiedAt: now})
			}
		}
		slices.SortStableFunc(u.Agents, func(a, b store.UpdateAgent) int {
			return cmpSeq(d.agents[a.AgentID], d.agents[b.AgentID])
		})
	}

	open, _, _, werr := e.window(u, target, d)
	if werr != nil {
		e.srv.log.Warn("update has an unusable schedule", zap.String("update", u.ID), zap.Error(werr))
	}
	switch {
	case u.Status == okta.JobScheduled && u.Enabled && open:
		u.Status = okta.JobInProgress // the window opened: the run starts
	case u.Status == okta.JobInProgress && u.Schedule != nil && !open:
		u.Status = okta.JobScheduled // the window closed: wait for the next
	}
	doc := readRollout(u)
	waves, lastWave := waveOf(u, doc.Policy)
	if u.Status == okta.JobInProgress && doc.State.Wave < lastWave {
		e.promote(u, &doc, waves, now) // before dispatch: a promoted wave starts in this tick
	}
	dispatching := u.Status == okta.JobInProgress && u.Enabled
	blocked := ""
	if dispatching {
		blocked = guard(p, d.health[p.ID])
	}
	// With an error budget, jobs in flight count as failures that may
	// come: no more are handed out than the budget could absorb, so a bad
	// release halts at the budget, not at the budget plus maxUnavailable.
	budgetRoom := -1 // unbounded
	if doc.Policy != nil && doc.Policy.ErrorBudget != nil {
		allowed := allowedFailures(doc.Policy.ErrorBudget, len(u.Agents))
		budgetRoom = allowed + 1
		for i := range u.Agents {
			if u.Agents[i].Status == okta.InstanceFailed || live(&u.Agents[i]) {
				budgetRoom--
			}
		}
	}

	for i := range u.Agents {
		ua := &u.Agents[i]
		switch ua.Status {
		case okta.InstanceCancelled:
			// A host cancels a job when the server takes it back or the
			// window closes; while the update runs, it is due again.
			if u.Status == okta.JobScheduled || u.Status == okta.JobInProgress {
				ua.JobID, ua.JobSeq, ua.DispatchedAt, ua.Progress, ua.Phase = "", 0, time.Time{}, 0, ""
				setAgent(ua, okta.InstanceScheduled, "", now)
			}
		case okta.InstanceScheduled:
			if ua.JobID != "" {
				if !dispatching {
					revoke(ua, now)
				}
				continue
			}
			if !dispatching {
				continue
			}
			if w := waves[ua.AgentID]; w > doc.State.Wave {
				setAgent(ua, okta.InstanceScheduled, fmt.Sprintf("waiting: wave %d of %d", w+1, lastWave+1), now)
				continue
			}
			if blocked != "" {
				setAgent(ua, okta.InstanceScheduled, blocked, now)
				continue
			}
			if budgetRoom == 0 {
				setAgent(ua, okta.InstanceScheduled, "waiting: the jobs in flight could use up the error budget", now)
				continue
			}
			before := *slots
			e.dispatch(u, ua, p, d, target, slots, seqs)
			if budgetRoom > 0 && *slots < before {
				budgetRoom--
			}
		}
	}

	// Aggregate the agents into the update's status.
	var failed, done int
	for i := range u.Agents {
		switch u.Agents[i].Status {
		case okta.InstanceFailed:
			failed++
			done++
		case okta.InstanceSuccess:
			done++
		}
	}
	if active || u.Status == okta.JobInProgress || u.Status == okta.JobScheduled {
		finished := false
		var budget *ErrorBudget
		if doc.Policy != nil {
			budget = doc.Policy.ErrorBudget
		}
		over, why := budgetExceeded(budget, failed, len(u.Agents))
		switch {
		case over:
			u.Status, finished = okta.JobFailed, true
			doc.State.Halted = why
		case failed > 0 && budget == nil && !p.Settings.ContinueOnError:
			u.Status, finished = okta.JobFailed, true
		case len(u.Agents) > 0 && done == len(u.Agents):
			u.Status, finished = okta.JobSuccess, true
			if failed > 0 {
				u.Status = okta.JobFailed
			}
		}
		if finished {
			for i := range u.Agents {
				revoke(&u.Agents[i], now)
			}
			if u.Schedule != nil {
				u.Schedule.LastUpdated = now
			}
		}
	}
	writeRollout(u, doc)
	return !updatesEqual(before, u)
}

// promote opens the next wave once every agent of the waves so far has
// finished without failures and the soak time has passed; with manual
// promotion the update is Paused until an operator resumes it; a wave
// with failures is held (Paused) for the operator.
func (e *Engine) promote(u *store.Update, doc *rolloutDoc, waves map[string]int, now time.Time) {
	failed := false
	for _, ua := range u.Agents {
		if waves[ua.AgentID] > doc.State.Wave {
			continue
		}
		switch ua.Status {
		case okta.InstanceSuccess:
		case okta.InstanceFailed:
			failed = true
		default:
			return // the wave is still running
		}
	}
	if doc.State.WaveDoneAt == nil {
		t := now
		doc.State.WaveDoneAt = &t
	}
	soak := time.Duration(doc.Policy.SoakMinutes) * time.Minute
	if now.Sub(*doc.State.WaveDoneAt) < soak {
		return
	}
	if failed || doc.Policy.ManualPromotion {
		doc.State.AwaitingPromotion = true
		u.ResumeStatus, u.Status = u.Status, okta.JobPaused
		return
	}
	doc.State.Wave++
	doc.State.WaveDoneAt = nil
}

func cmpSeq(a, b *store.Agent) int {
	switch {
	case a == nil || b == nil:
		return 0
	case a.Seq < b.Seq:
		return -1
	case a.Seq > b.Seq:
		return 1
	}
	return 0
}

// dispatch decides what to do with one agent that has no job yet.
func (e *Engine) dispatch(u *store.Update, ua *store.UpdateAgent, p *store.Pool, d *tickData, target string, slots *int, seqs *int64) {
	now := d.now
	a := d.agents[ua.AgentID]
	if a == nil {
		setAgent(ua, okta.InstanceFailed, "the agent is no longer in the pool", now)
		return
	}
	if target == "" {
		setAgent(ua, okta.InstanceScheduled, fmt.Sprintf("waiting: no release of %s on channel %s", p.Type, p.Settings.ReleaseChannel), now)
		return
	}
	switch c := vercmp.Compare(a.Version, target); {
	case a.Version != "" && c == 0:
		setAgent(ua, okta.InstanceSuccess, "already at "+target, now)
		return
	case a.Version != "" && c > 0 && !u.AllowDowngrade:
		setAgent(ua, okta.InstanceFailed, fmt.Sprintf("DOWNGRADE: the installed version %s is newer than the target %s; set allowDowngrade to downgrade", a.Version, target), now)
		return
	}
	cl := d.clients[a.ClientID]
	if cl == nil {
		setAgent(ua, okta.InstanceFailed, "the agent has no managed client to run the job", now)
		return
	}
	if now.Sub(a.LastConnection) > e.srv.inactiveAfter() {
		setAgent(ua, okta.InstanceScheduled, "waiting: the host is not connected", now)
		return
	}
	rel := d.cat.get(string(a.Type), target, cl.OS, cl.Arch)
	if rel == nil {
		setAgent(ua, okta.InstanceFailed, fmt.Sprintf("NO_ARTIFACT: no release %s %s for %s/%s in the catalog", a.Type, target, cl.OS, cl.Arch), now)
		return
	}
	if *slots <= 0 {
		h := d.health[p.ID]
		setAgent(ua, okta.InstanceScheduled, fmt.Sprintf("waiting: maxUnavailable %d reached (%d agents unhealthy)", max(p.Settings.MaxUnavailable, 1), h.unhealthy), now)
		return
	}
	*slots--
	if seqs == nil {
		ua.JobID = "dry-run"
		return
	}
	ua.JobID, ua.JobSeq, ua.DispatchedAt, ua.FromVersion = uuid.NewString(), *seqs, now, a.Version
	e.srv.metrics.jobsDispatch.Inc()
	*seqs++
	ua.Progress, ua.Phase = 0, ""
	setAgent(ua, okta.InstanceScheduled, "", now)
	ua.ModifiedAt = now
}

func updatesEqual(a, b *store.Update) bool {
	if a.Status != b.Status || a.ResumeStatus != b.ResumeStatus || a.Rollout != b.Rollout || !slices.Equal(a.Agents, b.Agents) {
		return false
	}
	if (a.Schedule == nil) != (b.Schedule == nil) {
		return false
	}
	return a.Schedule == nil || a.Schedule.LastUpdated.Equal(b.Schedule.LastUpdated)
}

// collectJobs adds u's jobs in flight to the per-client cache.
func (e *Engine) collectJobs(u *store.Update, p *store.Pool, d *tickData, jobs map[string][]sailpoint.Job, owner map[string]string) {
	target := u.TargetVersion
	if target == "" {
		target = effectiveLatest(p, d.cat)
	}
	var m *sailpoint.Maintenance
	var windowStart time.Time
	doc := readRollout(u)
	for i := range u.Agents {
		ua := &u.Agents[i]
		if !live(ua) {
			continue
		}
		// A paused or halted update lets running jobs finish and hands
		// out nothing new.
		if u.Status != okta.JobInProgress && ua.Status == okta.InstanceScheduled {
			continue
		}
		a := d.agents[ua.AgentID]
		if a == nil {
			continue
		}
		cl := d.clients[a.ClientID]
		if cl == nil {
			continue
		}
		if m == nil {
			open, start, end, _ := e.window(u, target, d)
			windowStart = start
			m = &sailpoint.Maintenance{Window: fmt.Sprint(open), WindowStartTime: start.UTC().Format(time.RFC3339)}
			if !end.IsZero() {
				m.WindowFinishTime = end.UTC().Format(time.RFC3339)
			}
		}
		state := sailpoint.JobRunning
		if ua.Status == okta.InstanceScheduled {
			state = sailpoint.JobPending
		}
		mp := sailpoint.ManagedProcess{Version: target, Path: string(a.Type) + "/" + a.AgentName, Type: string(a.Type)}
		if rel := d.cat.get(string(a.Type), target, cl.OS, cl.Arch); rel != nil {
			mp.Artifact = &sailpoint.Artifact{Name: rel.Name, Version: rel.Version, OS: rel.OS, Arch: rel.Arch, URL: artifactURL(rel),
				Size: rel.Size, SHA256: rel.SHA256, Signature: rel.Signature}
		}
		job := sailpoint.Job{
			UUID: ua.JobID, Cookbook: ua.JobID, State: state, Type: sailpoint.JobTypeUpgrade, TargetID: cl.ID,
			ManagedProcessConfiguration: map[string]sailpoint.ManagedProcess{a.AgentName: mp},
			UpdateID:                    u.ID, PoolID: u.PoolID, AllowDowngrade: u.AllowDowngrade, Sequence: ua.JobSeq, Maintenance: m,
			Precheck: &sailpoint.Precheck{FromVersion: ua.FromVersion},
		}
		if mp.Artifact != nil {
			size := mp.Artifact.Size
			job.Precheck.FreeBytes = 2*size + max(size/10, 16<<20)
		}
		if pol := doc.Policy; pol != nil {
			job.Precheck.MinPoolagentVersion = pol.MinPoolagentVersion
			job.DownloadRateLimit = pol.DownloadRateLimit
			if pol.SplayMinutes > 0 {
				at := windowStart.Add(splayOffset(u.ID, ua.AgentID, time.Duration(pol.SplayMinutes)*time.Minute))
				job.StartAfter = at.UTC().Format(time.RFC3339)
			}
		}
		jobs[cl.ID] = append(jobs[cl.ID], job)
		owner[ua.JobID] = cl.ID
	}
}

// selfJobPrefix starts the id of a poolagent self-update job.
const selfJobPrefix = "self-"

// selfUpdates offers each connected host the newest poolagent release on
// its pool's channel when its poolagent is older. Self-updates are not
// counted against maxUnavailable: they restart poolagent, not the managed
// agents. A host that reports one failed is not offered that version again.
func (e *Engine) selfUpdates(ctx context.Context, d *tickData, pools map[string]*store.Pool, jobs map[string][]sailpoint.Job, owner map[string]string) error {
	if d.cat.latest(SelfName, okta.ChannelTest) == "" {
		return nil // no poolagent release at all
	}
	clients, err := e.srv.store.ListClients(ctx)
	if err != nil {
		return err
	}
	for _, c := range clients {
		p := pools[c.PoolID]
		if p == nil || c.AgentVersion == "" || d.now.Sub(c.LastSeen) > e.srv.inactiveAfter() {
			continue
		}
		if t, ok := e.srv.seen.get(c.ID); ok && t.After(c.LastSeen) {
			c.LastSeen = t
		}
		latest := d.cat.latest(SelfName, p.Settings.ReleaseChannel)
		if latest == "" || vercmp.Compare(c.AgentVersion, latest) >= 0 {
			continue
		}
		if _, failed := e.selfFailed.Load(c.ID + "\x00" + latest); failed {
			continue
		}
		rel := d.cat.get(SelfName, latest, c.OS, c.Arch)
		if rel == nil {
			continue
		}
		id := selfJobPrefix + c.ID + "-" + latest
		jobs[c.ID] = append(jobs[c.ID], sailpoint.Job{
			UUID: id, Cookbook: id, State: sailpoint.JobPending, Type: sailpoint.JobTypeUpgrade, TargetID: c.ID,
			ManagedProcessConfiguration: map[string]sailpoint.ManagedProcess{SelfName: {Version: latest, Path: SelfName, Type: SelfName,
				Artifact: &sailpoint.Artifact{Name: rel.Name, Version: rel.Version, OS: rel.OS, Arch: rel.Arch, URL: artifactURL(rel),
					Size: rel.Size, SHA256: rel.SHA256, Signature: rel.Signature}}},
			PoolID: c.PoolID, Sequence: rel.Seq,
			Maintenance: &sailpoint.Maintenance{Window: "true", WindowStartTime: d.now.Format(time.RFC3339)},
		})
		owner[id] = c.ID
	}
	return nil
}

// selfReport records a host's report on a self-update job: its end is
// logged (self-updates have no update in the Agent Pools API), and a
// failed version is not offered to the host again.
func (e *Engine) selfReport(clientID string, j sailpoint.JobReport) {
	prefix := selfJobPrefix + clientID + "-"
	if len(j.UUID) <= len(prefix) || j.UUID[:len(prefix)] != prefix {
		return
	}
	version := j.UUID[len(prefix):]
	log := e.srv.log.With(zap.String("client", clientID), zap.String("job", j.UUID), zap.String("version", version),
		zap.String("state", string(j.State)), zap.String("updateStatus", j.UpdateStatus))
	switch j.State {
	case sailpoint.JobFinished:
		log.Info("poolagent self-update finished")
	case sailpoint.JobFailed:
		log.Warn("poolagent self-update failed; this version is not offered to the host again", zap.String("updateMessage", j.UpdateMessage))
		e.selfFailed.Store(clientID+"\x00"+version, true)
	}
}
