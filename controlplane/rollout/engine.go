// Package rollout is poolserver's rollout engine: the update state machine,
// maintenance windows, waves and canaries, the availability guard, the
// error budget, version selection, and the per-client job table that
// heartbeats answer from.
//
// The engine is incremental. It loads the active updates, the pools, their
// agents and clients once, then follows the store's change feed
// (store.ChangesSince): a host's report, an agent that appeared or changed
// version, an operator's action, a new update all arrive as changed rows.
// A tick applies what changed, re-plans only the updates that something
// touched, writes only the rows it changed (in batches, each row
// compare-and-set on its revision, so a concurrent report is never
// overwritten) and republishes the jobs of only the clients concerned.
// Liveness (a host going silent) runs on a deadline heap fed by Heard. Work
// per tick grows with what changed, not with the fleet.
//
// With a store several replicas share (store.Leader), one replica leads and
// writes; the others follow the same feed to keep their job tables current,
// so a heartbeat can reach any replica.
package rollout

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
	"go.uber.org/zap"
)

// Store is what the engine needs of the control plane's persistence.
type Store interface {
	ListPools(ctx context.Context, q store.PoolQuery) ([]*store.Pool, error)
	ListAgents(ctx context.Context, poolIDs ...string) ([]*store.Agent, error)
	ListClients(ctx context.Context, poolIDs ...string) ([]*store.Client, error)
	ListActiveUpdates(ctx context.Context, statuses ...okta.AgentUpdateJobStatus) ([]*store.Update, error)
	ListUpdateHeaders(ctx context.Context, statuses ...okta.AgentUpdateJobStatus) ([]*store.Update, error)
	GetUpdate(ctx context.Context, poolID, id string) (*store.Update, error)
	CreateUpdate(ctx context.Context, u *store.Update) error
	NextSequence(ctx context.Context, name string, n int) (int64, error)
	JobOwner(ctx context.Context, jobID string) (string, error)
	Revision(ctx context.Context) (int64, error)
	ChangesSince(ctx context.Context, rev int64, skip ...int64) (*store.Changes, error)
	WriteRollout(ctx context.Context, w *store.RolloutWrite) (int, error)
}

// Config tunes the engine.
type Config struct {
	// Tick is how often the engine runs when nothing asks it to.
	Tick time.Duration
	// InactiveAfter is how long a host may be silent before its agents
	// count as disconnected (INACTIVE).
	InactiveAfter time.Duration
	// SelfUpdate offers hosts the newest poolagent release of their
	// pool's channel.
	SelfUpdate bool
	// WriteBatch bounds the rows of one write transaction, so heartbeats'
	// writes interleave with a large dispatch (default 4096).
	WriteBatch int
	// HeartbeatInterval is the hosts' heartbeat interval: a dispatch
	// writes its rows in the order the hosts are expected to check in.
	HeartbeatInterval time.Duration
}

// Deps is what the engine is built with.
type Deps struct {
	Store  Store
	Now    func() time.Time
	Log    *zap.Logger
	Config Config
	// Catalog returns a current snapshot of the release catalog.
	Catalog func(ctx context.Context) (Catalog, error)
	// Dispatched is told how many jobs a tick handed out (metrics); may
	// be nil.
	Dispatched func(n int)
}

// activeStatuses are the statuses of updates the engine keeps in memory.
var activeStatuses = []okta.AgentUpdateJobStatus{okta.JobScheduled, okta.JobInProgress, okta.JobPaused, okta.JobFailed}

func isActive(s okta.AgentUpdateJobStatus) bool {
	switch s {
	case okta.JobScheduled, okta.JobInProgress, okta.JobPaused, okta.JobFailed:
		return true
	}
	return false
}

// tickStats is what one tick did, for its log line.
type tickStats struct {
	feed, dispatched, written, published int
	// passed counts the rows the plan's passes went over.
	passed int
	// Where the time went.
	read, plan, write, publish time.Duration
}

// Engine is the rollout engine. Build it with New, run it with Run.
type Engine struct {
	d     Deps
	kick  chan struct{}
	heard heardLog
	table jobTable
	// selfFailed remembers self-updates a host reported failed (client id
	// + version), so the same version is not offered again; in memory: a
	// restarted server offers it once more.
	selfFailed sync.Map
	summaries  atomic.Pointer[map[string]Summary]
	// created holds the counts of updates created by count (Created)
	// until a tick holds them: updateID → createdSummary.
	created   sync.Map
	poolSizes atomic.Pointer[map[string]int] // agents by pool id (PoolAgents)
	zonesPub  atomic.Pointer[map[string][]ZoneWindow]
	// expect: pools whose hosts may get jobs within seconds (soon.go).
	expect expectSet

	mu      sync.Mutex // held by a tick; guards everything below
	loaded  bool
	rev     int64
	cat     Catalog
	pools   map[string]*poolState
	agents  map[string]*agentState
	clients map[string]*clientState
	updates map[string]*updState
	live    liveHeap
	// watches ends the hosts' watches after their installs; suspects are
	// watched agents whose health or connection changed (watch.go).
	watches  watchHeap
	suspects map[*agentState]struct{}
	// loadedAt is when the state was last loaded; silentAgain: the
	// watched hosts that look silent are to be looked at again once
	// InactiveAfter has passed since (watch.go).
	loadedAt    time.Time
	silentAgain bool
	// orphans are agent rows that arrived before their pool was listed.
	orphans []*store.Agent
	// zoneTimers are host-zoned updates' zone windows opening or closing.
	zoneTimers zoneHeap
	// infoNow is the time the jobs' infos were last refreshed at.
	infoNow time.Time
	// dirty clients need their published jobs rebuilt after the writes.
	dirty map[*clientState]struct{}
	// own are the revisions of the engine's writes since the feed was
	// last read: the feed leaves them out (memory already holds them).
	own     []int64
	seqNext int64 // reserved job sequence numbers [seqNext, seqEnd)
	stats   tickStats
	// ticks counts ticks; infoTick is the tick the updates' job info was
	// last computed in.
	ticks, infoTick int
	// seenPolled is when other replicas' last-seen times were last read.
	seenPolled time.Time
	seqEnd     int64
	lead       bool
	// tickStart is when the running tick began (d.Now).
	tickStart time.Time
}

// New builds an engine; it loads its state on its first tick.
func New(d Deps) *Engine {
	if d.Log == nil {
		d.Log = zap.NewNop()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Config.WriteBatch <= 0 {
		d.Config.WriteBatch = 4096
	}
	if d.Config.Tick <= 0 {
		d.Config.Tick = time.Second
	}
	e := &Engine{d: d, kick: make(chan struct{}, 1)}
	e.heard.m = map[string]time.Time{}
	e.table.init()
	return e
}

// Kick asks for a tick as soon as possible (an operator's change, a
// host's report that finishes a job).
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
// the others follow the change feed and keep their job tables current. A
// replica whose lease dies stops writing and competes again; one that
// becomes leader rebuilds its state once.
func (e *Engine) Run(ctx context.Context) {
	t := time.NewTicker(e.d.Config.Tick)
	defer t.Stop()
	// Kicks come in bursts (every finished job kicks): at most one tick
	// per minGap, so a burst costs one tick, not one per report.
	minGap := min(e.d.Config.Tick, 100*time.Millisecond)
	locker, shared := e.d.Store.(store.Leader)
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
				e.d.Log.Warn("lost the rollout engine's leader lock")
				lease.Release()
				lease = nil
			}
			if lease == nil {
				l, err := locker.TryLead(ctx, leaderLock)
				if err != nil && ctx.Err() == nil {
					e.d.Log.Error("take the rollout engine's leader lock", zap.Error(err))
				}
				if l != nil {
					e.d.Log.Info("this replica leads the rollout engine")
					lease = l
				}
			}
			lead = lease != nil
		}
		start := time.Now()
		if err := e.tick(ctx, lead); err != nil && ctx.Err() == nil {
			e.d.Log.Error("rollout tick", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.kick:
			if d := minGap - time.Since(start); d > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			}
		}
	}
}

// Tick runs the engine once, as the leader.
func (e *Engine) Tick(ctx context.Context) error { return e.tick(ctx, true) }

// tick runs the engine once; a follower (lead false) writes nothing and
// only follows the change feed.
func (e *Engine) tick(ctx context.Context, lead bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	start := time.Now()
	// What operators did before this tick began, it has read, planned and
	// written by its end (or failed, and their hosts wait an interval).
	e.tickStart = e.d.Now()
	defer func() { e.expect.clear(e.tickStart, e.d.Now()) }()
	e.ticks++
	e.stats = tickStats{}
	defer func() {
		// A tick's cost follows what changed: say so when it was big.
		if took := time.Since(start); took > 250*time.Millisecond {
			e.d.Log.Info("rollout tick", zap.Duration("took", took), zap.Bool("lead", lead), zap.Int("feedRows", e.stats.feed),
				zap.Int("dispatched", e.stats.dispatched), zap.Int("rowsWritten", e.stats.written), zap.Int("clientsPublished", e.stats.published),
				zap.Int("rowsPassed", e.stats.passed),
				zap.Duration("read", e.stats.read), zap.Duration("plan", e.stats.plan), zap.Duration("write", e.stats.write), zap.Duration("publish", e.stats.publish))
		}
	}()
	if lead != e.lead {
		e.loaded = false // a new leader rebuilds once
		e.lead = lead
	}
	now := e.d.Now().UTC()
	cat, err := e.d.Catalog(ctx)
	if err != nil {
		return fmt.Errorf("read the release catalog: %w", err)
	}
	catChanged := cat != e.cat
	e.cat = cat
	if !e.loaded {
		if err := e.load(ctx, now); err != nil {
			return err
		}
	} else {
		// The pools first: an agent row in the feed whose pool is new
		// finds it listed.
		if err := e.refreshPools(ctx); err != nil {
			return err
		}
		e.adoptOrphans(now)
		if err := e.follow(ctx, now); err != nil {
			e.loaded = false
			return err
		}
		if catChanged {
			e.catalogChanged()
		}
	}
	if err := e.seenFromReplicas(ctx, now); err != nil {
		e.d.Log.Warn("read which hosts other replicas heard from", zap.Error(err))
	}
	e.liveness(now)
	e.watchTick(now, lead)
	e.zonesDue(now)
	e.publishSummaries() // before a long plan: pollers see new updates now
	e.stats.read = time.Since(start)
	if lead {
		if err := e.enforceMinimum(ctx, now); err != nil {
			return err
		}
		if err := e.planAll(ctx, now); err != nil {
			// Memory may hold decisions the store does not: rebuild.
			e.loaded = false
			return err
		}
	} else {
		e.followZones(now)
	}
	e.publishZones()
	t := time.Now()
	e.publish(now)
	e.stats.publish = time.Since(t)
	return nil
}

// load builds the engine's state from the store.
func (e *Engine) load(ctx context.Context, now time.Time) error {
	rev, err := e.d.Store.Revision(ctx)
	if err != nil {
		return fmt.Errorf("read the change revision: %w", err)
	}
	e.pools = map[string]*poolState{}
	e.agents = map[string]*agentState{}
	e.clients = map[string]*clientState{}
	e.updates = map[string]*updState{}
	e.live = liveHeap{}
	e.watches = watchHeap{}
	e.suspects = map[*agentState]struct{}{}
	e.loadedAt, e.silentAgain = now, true
	e.zoneTimers = nil
	e.orphans = nil
	e.dirty = map[*clientState]struct{}{}
	if err := e.refreshPools(ctx); err != nil {
		return err
	}
	ids := make([]string, 0, len(e.pools))
	for id := range e.pools {
		ids = append(ids, id)
	}
	clients, err := e.d.Store.ListClients(ctx)
	if err != nil {
		return fmt.Errorf("load clients: %w", err)
	}
	for _, c := range clients {
		e.upsertClient(c, now)
	}
	clients = nil
	agents, err := e.d.Store.ListAgents(ctx, ids...)
	if err != nil {
		return fmt.Errorf("load agents: %w", err)
	}
	for _, a := range agents {
		e.upsertAgent(a, now)
	}
	agents = nil
	us, err := e.d.Store.ListActiveUpdates(ctx, activeStatuses...)
	if err != nil {
		return fmt.Errorf("load active updates: %w", err)
	}
	for _, u := range us {
		e.addUpdate(u)
	}
	// A stopped update is kept while its fleet rollback runs. Stopped
	// updates accumulate, so only their headers are read, and the agents
	// of the few whose rollback runs.
	stopped, err := e.d.Store.ListUpdateHeaders(ctx, okta.JobCancelled)
	if err != nil {
		return fmt.Errorf("load stopped updates: %w", err)
	}
	for _, h := range stopped {
		if !RollbackActive(h) {
			continue
		}
		u, err := e.d.Store.GetUpdate(ctx, h.PoolID, h.ID)
		if err != nil {
			return fmt.Errorf("load stopped update %s: %w", h.ID, err)
		}
		e.addUpdate(u)
	}
	// Every client's jobs are published afresh.
	e.table.clear()
	for _, c := range e.clients {
		e.dirty[c] = struct{}{}
	}
	e.rev = rev
	e.own = e.own[:0]
	e.loaded = true
	e.d.Log.Info("rollout engine loaded", zap.Int("pools", len(e.pools)), zap.Int("clients", len(e.clients)),
		zap.Int("agents", len(e.agents)), zap.Int("activeUpdates", len(e.updates)), zap.Int64("revision", rev))
	return nil
}

// refreshPools reads the pools (few: their settings decide the plan).
func (e *Engine) refreshPools(ctx context.Context) error {
	for _, t := range okta.AgentTypes {
		pools, err := e.d.Store.ListPools(ctx, store.PoolQuery{Type: t, Limit: 1 << 20})
		if err != nil {
			return fmt.Errorf("load pools: %w", err)
		}
		for _, p := range pools {
			ps := e.pools[p.ID]
			if ps == nil {
				ps = &poolState{p: p, agents: map[string]*agentState{}, minDirty: true}
				e.pools[p.ID] = ps
				continue
			}
			if !ps.p.Settings.Equal(p.Settings) {
				ps.p = p
				ps.minDirty = true
				for _, us := range ps.updates {
					us.replan = true
				}
				for _, c := range e.clients {
					if c.c.PoolID == p.ID {
						e.markClient(c) // the self-update channel may have changed
					}
				}
			}
		}
	}
	return nil
}

// catalogChanged re-plans everything that depends on releases.
func (e *Engine) catalogChanged() {
	for _, us := range e.updates {
		us.replan = true
	}
	for _, ps := range e.pools {
		ps.minDirty = true
	}
	for _, c := range e.clients {
		e.markClient(c)
	}
}

// follow applies the change feed.
func (e *Engine) follow(ctx context.Context, now time.Time) error {
	ch, err := e.d.Store.ChangesSince(ctx, e.rev, e.own...)
	if err != nil {
		return fmt.Errorf("read the change feed: %w", err)
	}
	e.own = e.own[:0]
	e.stats.feed = len(ch.Clients) + len(ch.Agents) + len(ch.Updates) + len(ch.UpdateAgents)
	for _, c := range ch.Clients {
		e.upsertClient(c, now)
	}
	for _, a := range ch.Agents {
		e.upsertAgent(a, now)
	}
	for _, id := range ch.Deleted {
		e.created.Delete(id)
		if us := e.updates[id]; us != nil {
			e.removeUpdate(us)
		}
	}
	for _, h := range ch.Updates {
		us := e.updates[h.ID]
		switch {
		case us != nil && h.Rev <= us.u.Rev:
			// The engine's own write coming back.
		case !tracked(h):
			e.created.Delete(h.ID) // the engine will not count it
			if us != nil {
				e.removeUpdate(us)
			}
		default:
			if us != nil {
				e.created.Delete(h.ID) // changed since: its counts are the engine's
			}
			// Created, or changed by an operator (who may have changed
			// its agents): read it whole, once.
			u, err := e.d.Store.GetUpdate(ctx, h.PoolID, h.ID)
			if errors.Is(err, store.ErrNotFound) {
				if us != nil {
					e.removeUpdate(us)
				}
				continue
			}
			if err != nil {
				return fmt.Errorf("read update %s: %w", h.ID, err)
			}
			if us != nil {
				e.removeUpdate(us)
			}
			if tracked(u) {
				e.addUpdate(u)
			}
		}
	}
	for i := range ch.UpdateAgents {
		r := &ch.UpdateAgents[i]
		us := e.updates[r.UpdateID]
		if us == nil {
			continue
		}
		j, ok := us.idx[r.AgentID]
		if !ok {
			e.appendRow(us, r.UpdateAgent)
			continue
		}
		if r.Rev <= us.u.Agents[j].Rev {
			continue
		}
		old := us.u.Agents[j]
		e.shareRow(&r.UpdateAgent, &old)
		us.u.Agents[j] = r.UpdateAgent
		us.u.Agents[j].Position = old.Position
		e.rowChanged(us, j, old)
	}
	e.rev = max(e.rev, ch.Rev)
	return nil
}
