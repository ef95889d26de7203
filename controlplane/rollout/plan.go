package rollout

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/internal/vercmp"
	"go.uber.org/zap"
)

// mutate applies fn to one row; a change updates the counts and is queued
// for writing.
func (e *Engine) mutate(us *updState, i int, fn func(ua *store.UpdateAgent)) {
	old := us.u.Agents[i]
	fn(&us.u.Agents[i])
	if us.u.Agents[i] != old {
		e.rowChanged(us, i, old)
		us.dirty[i] = struct{}{}
	}
}

func setAgent(ua *store.UpdateAgent, st okta.AgentUpdateInstanceStatus, msg string, now time.Time) {
	if ua.Status != st || ua.Message != msg {
		ua.Status, ua.Message, ua.ModifiedAt = st, msg, now
	}
}

// planAll applies the rollout rules to every active update and writes
// what changed.
func (e *Engine) planAll(ctx context.Context, now time.Time) error {
	start := time.Now()
	dispatched := 0
	for _, ps := range e.pools {
		for _, us := range ps.updates {
			n, err := e.plan(ctx, us, now)
			if err != nil {
				return err
			}
			dispatched += n
		}
	}
	e.stats.dispatched = dispatched
	if dispatched > 0 && e.d.Dispatched != nil {
		e.d.Dispatched(dispatched)
	}
	e.stats.plan = time.Since(start)
	start = time.Now()
	err := e.write(ctx, now)
	e.stats.write = time.Since(start)
	return err
}

// reserveSeqs makes sure n job sequence numbers are reserved.
func (e *Engine) reserveSeqs(ctx context.Context, n int) error {
	if have := int(e.seqEnd - e.seqNext); have >= n {
		return nil
	}
	want := n + 256
	first, err := e.d.Store.NextSequence(ctx, "job", want)
	if err != nil {
		return fmt.Errorf("reserve job sequence numbers: %w", err)
	}
	e.seqNext, e.seqEnd = first, first+int64(want)
	return nil
}

// plan applies the rollout rules to one update: the window, wave
// promotion, dispatch within the pool's slots and the error budget, and
// the aggregate status. The pass over the agents runs only when something
// that decides who may start changed; everything else is kept in counts.
func (e *Engine) plan(ctx context.Context, us *updState, now time.Time) (int, error) {
	u, ps := us.u, us.pool
	p := ps.p
	target := Target(u, p, e.cat)
	wasActive := u.Status == okta.JobScheduled || u.Status == okta.JobInProgress
	statusBefore := u.Status
	open, _, _, werr := Window(u, target, e.cat, now)
	if hostZoned(u) {
		open, werr = e.syncZones(us, target, now) // open while any host's window is
	}
	if werr != nil && us.replan {
		e.d.Log.Warn("update has an unusable schedule", zap.String("update", u.ID), zap.Error(werr))
	}
	switch {
	case u.Status == okta.JobScheduled && u.Enabled && open:
		u.Status = okta.JobInProgress // the window opened: the run starts
	case u.Status == okta.JobInProgress && u.Schedule != nil && !open:
		u.Status = okta.JobScheduled // the window closed: wait for the next
	}
	if u.Status != statusBefore {
		us.replan = true
	}
	doc := us.doc
	docBefore := docString(u, doc)
	waves, lastWave := us.wavesOf()
	if u.Status == okta.JobInProgress && doc.State.Wave < lastWave && (us.touched || us.replan || doc.State.WaveDoneAt != nil) {
		e.promote(us, &doc, waves, now) // before dispatch: a promoted wave starts in this tick
	}
	rbChanged := us.touched || us.replan
	us.touched = false
	dispatching := u.Status == okta.JobInProgress && u.Enabled
	dispatched := 0
	// The start rate in force (maxPerMinute, ramp), shown on the update.
	doc.State.CurrentPerMinute = us.rateNow()
	// The pass over the agents: when something changed, or when slots
	// are free for agents waiting (in an open zone, for a host-zoned
	// update) and the start rate lets one start.
	if us.replan || (dispatching && us.waiting > 0 && ps.free() > 0 && us.rateOpen(now) && us.zonesWaiting()) {
		blocked := ""
		if dispatching {
			blocked = Guard(p, ps.h)
			if err := e.reserveSeqs(ctx, min(us.waiting, max(ps.free(), 0))); err != nil {
				return 0, err
			}
		}
		// With an error budget, jobs in flight count as failures that may
		// come: no more are handed out than the budget could absorb, so a
		// bad release halts at the budget, not at the budget plus
		// maxUnavailable.
		budgetRoom := -1 // unbounded
		if doc.Policy != nil && doc.Policy.ErrorBudget != nil {
			budgetRoom = max(AllowedFailures(doc.Policy.ErrorBudget, len(u.Agents))+1-us.failed-us.live, 0)
		}
		// A pass run only because the start rate has room again stops once
		// the room is used: the agents after are as the last full pass left
		// them, so its cost follows the hosts started (ramp.go).
		rateOnly := !us.replan && doc.Policy.LimitsRate()
		openWaiting := 0 // rows of a host-zoned update waiting in an open zone
		cut := false     // the start rate's room ran out before the last row
		for i := range u.Agents {
			if rateOnly && dispatched > 0 && !us.rateOpen(now) {
				cut = true
				break
			}
			e.stats.passed++
			ua := &u.Agents[i]
			if IsRevertJob(ua) {
				continue // a fleet rollback's (rollback.go)
			}
			switch ua.Status {
			case okta.InstanceCancelled:
				// A host cancels a job when the server takes it back or
				// the window closes; while the update runs, it is due
				// again.
				if u.Status == okta.JobScheduled || u.Status == okta.JobInProgress {
					e.mutate(us, i, func(ua *store.UpdateAgent) {
						clearJob(ua)
						setAgent(ua, okta.InstanceScheduled, "", now)
					})
				}
			case okta.InstanceScheduled:
			default:
				continue
			}
			if ua.Status != okta.InstanceScheduled {
				continue
			}
			// The host's own window is closed (a host-zoned update): it
			// waits, and says until when also while no zone is open.
			zoneWait := e.zoneWait(us, ua)
			showWait := zoneWait != "" && (dispatching || u.Status == okta.JobScheduled)
			if ua.JobID != "" {
				if !dispatching || zoneWait != "" {
					e.mutate(us, i, func(ua *store.UpdateAgent) {
						if revoke(ua, now) && showWait {
							setAgent(ua, okta.InstanceScheduled, zoneWait, now)
						}
					})
				}
				continue
			}
			if showWait {
				e.mutate(us, i, func(ua *store.UpdateAgent) { setAgent(ua, okta.InstanceScheduled, zoneWait, now) })
				continue
			}
			if !dispatching {
				continue
			}
			openWaiting++
			if w := waves[ua.AgentID]; w > doc.State.Wave {
				e.mutate(us, i, func(ua *store.UpdateAgent) {
					setAgent(ua, okta.InstanceScheduled, fmt.Sprintf("waiting: wave %d of %d", w+1, lastWave+1), now)
				})
				continue
			}
			if blocked != "" {
				e.mutate(us, i, func(ua *store.UpdateAgent) { setAgent(ua, okta.InstanceScheduled, blocked, now) })
				continue
			}
			if budgetRoom == 0 {
				e.mutate(us, i, func(ua *store.UpdateAgent) {
					setAgent(ua, okta.InstanceScheduled, "waiting: the jobs in flight could use up the error budget", now)
				})
				continue
			}
			if e.dispatch(us, i, target, now) {
				dispatched++
				openWaiting--
				if budgetRoom > 0 {
					budgetRoom--
				}
			}
		}
		if us.zones != nil {
			if cut {
				// The rows after the cut were not counted: some may
				// wait in an open zone, so a later free slot still
				// runs a pass (which recounts if it reaches the end).
				openWaiting = max(openWaiting, 1)
			}
			us.zones.openWaiting = openWaiting
		}
		us.replan = false
	}

	// Aggregate the agents into the update's status.
	if wasActive || u.Status == okta.JobInProgress || u.Status == okta.JobScheduled {
		finished := false
		var budget *ErrorBudget
		if doc.Policy != nil {
			budget = doc.Policy.ErrorBudget
		}
		total := len(u.Agents)
		over, why := BudgetExceeded(budget, us.failed, total)
		switch {
		case over:
			u.Status, finished = okta.JobFailed, true
			doc.State.Halted = why
		case us.failed > 0 && budget == nil && !p.Settings.ContinueOnError:
			u.Status, finished = okta.JobFailed, true
			if doc.Policy != nil && doc.Policy.RollbackOnHalt {
				doc.State.Halted = haltedOnFailure(us.failed, total) // a halt: the fleet rollback follows
			}
		case total > 0 && us.done == total && len(us.watching) == 0:
			// Every host finished and none is still watched: the
			// update's end. (While some are, it stays as it is, so a
			// regression within the watch still fails it.)
			u.Status, finished = okta.JobSuccess, true
			if us.failed > 0 {
				u.Status = okta.JobFailed
			}
		}
		if finished {
			for i := range u.Agents {
				if u.Agents[i].Status == okta.InstanceScheduled && u.Agents[i].JobID != "" && !IsRevertJob(&u.Agents[i]) {
					e.mutate(us, i, func(ua *store.UpdateAgent) { revoke(ua, now) })
				}
			}
			if u.Schedule != nil {
				sc := *u.Schedule
				sc.LastUpdated = now
				u.Schedule = &sc
			}
			us.hdrDirty = true
			ps.minDirty = true
		}
	}
	if err := e.planRollback(ctx, us, &doc, rbChanged, now); err != nil {
		return dispatched, err
	}
	us.doc = doc
	if docString(u, doc) != docBefore {
		WriteDoc(u, doc)
		us.hdrDirty = true
	}
	if u.Status != statusBefore {
		us.hdrDirty = true
		e.d.Log.Info("update status", zap.String("pool", u.PoolID), zap.String("update", u.ID),
			zap.String("from", string(statusBefore)), zap.String("to", string(u.Status)))
	}
	if us.hdrDirty {
		u.ModifiedAt = now
	}
	return dispatched, nil
}

// docString is the rollout document d would be stored as.
func docString(u *store.Update, d Doc) string {
	c := *u
	WriteDoc(&c, d)
	return c.Rollout
}

// promote opens the next wave once every agent of the waves so far has
// finished without failures and the soak time has passed; with manual
// promotion the update is Paused until an operator resumes it; a wave
// with failures is held (Paused) for the operator.
func (e *Engine) promote(us *updState, doc *Doc, waves map[string]int, now time.Time) {
	failed := false
	for _, ua := range us.u.Agents {
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
	u := us.u
	if failed || doc.Policy.ManualPromotion {
		doc.State.AwaitingPromotion = true
		u.ResumeStatus, u.Status = u.Status, okta.JobPaused
		return
	}
	doc.State.Wave++
	doc.State.WaveDoneAt = nil
	us.replan = true
}

// dispatch decides what to do with one agent that has no job yet; it
// reports whether it handed one out.
func (e *Engine) dispatch(us *updState, i int, target string, now time.Time) bool {
	ps := us.pool
	p := ps.p
	ua := &us.u.Agents[i]
	as := e.agents[ua.AgentID]
	wait := func(st okta.AgentUpdateInstanceStatus, msg string) bool {
		e.mutate(us, i, func(ua *store.UpdateAgent) { setAgent(ua, st, msg, now) })
		return false
	}
	if as == nil || as.pool != ps {
		return wait(okta.InstanceFailed, "the agent is no longer in the pool")
	}
	a := as.a
	if target == "" {
		return wait(okta.InstanceScheduled, fmt.Sprintf("waiting: no release of %s on channel %s", p.Type, p.Settings.ReleaseChannel))
	}
	switch c := vercmp.Compare(a.Version, target); {
	case a.Version != "" && c == 0:
		return wait(okta.InstanceSuccess, "already at "+target)
	case a.Version != "" && c > 0 && !us.u.AllowDowngrade:
		return wait(okta.InstanceFailed, fmt.Sprintf("DOWNGRADE: the installed version %s is newer than the target %s; set allowDowngrade to downgrade", a.Version, target))
	}
	cs := as.client
	if cs == nil {
		return wait(okta.InstanceFailed, "the agent has no managed client to run the job")
	}
	if !cs.connected {
		return wait(okta.InstanceScheduled, "waiting: the host is not connected")
	}
	if e.cat == nil || e.cat.Get(string(a.Type), target, cs.c.OS, cs.c.Arch) == nil {
		return wait(okta.InstanceFailed, fmt.Sprintf("NO_ARTIFACT: no release %s %s for %s/%s in the catalog", a.Type, target, cs.c.OS, cs.c.Arch))
	}
	if ps.free() <= 0 {
		return wait(okta.InstanceScheduled, fmt.Sprintf("waiting: maxUnavailable %d reached (%d agents unhealthy)", max(p.Settings.MaxUnavailable, 1), ps.h.UnhealthyIdle))
	}
	if msg := us.rateWait(now); msg != "" {
		return wait(okta.InstanceScheduled, msg)
	}
	if e.seqNext >= e.seqEnd {
		return false // reserved too few: the next tick
	}
	seq := e.seqNext
	e.seqNext++
	e.mutate(us, i, func(ua *store.UpdateAgent) {
		ua.JobID, ua.JobSeq, ua.DispatchedAt, ua.FromVersion = newJobID(), seq, now, a.Version
		ua.Progress, ua.Phase = 0, ""
		ua.Status, ua.Message, ua.ModifiedAt = okta.InstanceScheduled, "", now
	})
	return true
}

// newJobID returns a new job id: a UUID, version 7 (time-ordered), so a
// dispatch's rows land at the end of the store's job-id index instead of
// at random places in it (a batch of random ids dirtied a page per row).
func newJobID() string {
	if id, err := uuid.NewV7(); err == nil {
		return id.String()
	}
	return uuid.NewString()
}

// write stores the rows and headers the plan changed, in batches; a row
// that changed meanwhile is skipped by the store, and its update is read
// again so memory holds what the store does.
//
// The rows go in the order their hosts are expected to check in (the one
// heard from longest ago first), and each batch's clients get their jobs
// as soon as the batch is committed: a host learns of its job at its next
// heartbeat, so a dispatch to 300,000 hosts that takes seconds to write
// still reaches every host within one heartbeat interval.
func (e *Engine) write(ctx context.Context, now time.Time) error {
	type ref struct {
		us  *updState
		i   int
		cs  *clientState
		key int64 // when the host is expected to check in next
		// called: the host was told to come back soon (Soon).
		called bool
	}
	var refs []ref
	var hdrs []*updState
	var done []*updState
	for _, ps := range e.pools {
		for _, us := range ps.updates {
			if us.hdrDirty {
				hdrs = append(hdrs, us)
				us.hdrDirty = false
			}
			for i := range us.dirty {
				r := ref{us: us, i: i}
				if as := e.agents[us.u.Agents[i].AgentID]; as != nil && as.client != nil {
					r.cs, r.key = as.client, as.client.seen.UnixNano()+int64(e.d.Config.HeartbeatInterval)
				}
				refs = append(refs, r)
			}
			clear(us.dirty)
			if !tracked(us.u) {
				done = append(done, us)
			}
		}
	}
	if len(refs) == 0 && len(hdrs) == 0 {
		return nil
	}
	// The hosts that checked in since an operator's change were told to
	// come back within seconds (Soon): they are expected then, not an
	// interval later. Once their rows are committed the pool's hosts are
	// no longer told so (a host whose row comes later checks in when the
	// order expects it to).
	gap := map[*poolState]time.Time{}
	for _, ps := range e.pools {
		if since, ok := e.expect.since(ps.p.ID); ok {
			gap[ps] = since
		}
	}
	lastGap := map[*poolState]int{} // 1 + index in refs of the pool's last such row
	soon := int64(NextHeartbeat(e.d.Config.HeartbeatInterval))
	if len(gap) > 0 {
		for k := range refs {
			if since, ok := gap[refs[k].us.pool]; ok && refs[k].cs != nil && !refs[k].cs.seen.Before(since) {
				refs[k].key = refs[k].cs.seen.UnixNano() + soon
				refs[k].called = true
			}
		}
	}
	slices.SortFunc(refs, func(a, b ref) int {
		if c := cmp.Compare(a.key, b.key); c != 0 {
			return c
		}
		var ca, cb string
		if a.cs != nil {
			ca = a.cs.c.ID
		}
		if b.cs != nil {
			cb = b.cs.c.ID
		}
		return cmp.Or(cmp.Compare(ca, cb), cmp.Compare(a.us.u.Seq, b.us.u.Seq), cmp.Compare(a.i, b.i))
	})
	// A client is published after the batch holding its last row.
	batch := e.d.Config.WriteBatch
	lastBatch := map[*clientState]int{}
	for k, r := range refs {
		if r.cs != nil {
			lastBatch[r.cs] = k / batch
		}
		if _, ok := gap[r.us.pool]; ok && (r.called || lastGap[r.us.pool] == 0) {
			lastGap[r.us.pool] = k + 1 // +1: 0 is "none yet"
		}
	}
	e.refreshInfos(now)
	stale := map[*updState]bool{}
	for start := 0; start < len(refs) || (start == 0 && len(hdrs) > 0); start += batch {
		end := min(start+batch, len(refs))
		var w store.RolloutWrite
		for _, r := range refs[start:end] {
			w.Agents = append(w.Agents, store.UpdateAgentRow{UpdateID: r.us.u.ID, UpdateAgent: r.us.u.Agents[r.i]})
		}
		last := end == len(refs)
		if last {
			// Headers with the last rows: an update's status never runs
			// ahead of its agents'.
			for _, us := range hdrs {
				h := *us.u
				h.Agents = nil
				w.Updates = append(w.Updates, &h)
			}
		}
		if _, err := e.d.Store.WriteRollout(ctx, &w); err != nil {
			return fmt.Errorf("write rollout decisions: %w", err)
		}
		e.stats.written += len(w.Agents)
		// Every row written carries the batch's one revision.
		for _, a := range w.Agents {
			if a.Rev != 0 {
				e.own = append(e.own, a.Rev)
				break
			}
		}
		for k, r := range refs[start:end] {
			if w.Agents[k].Rev == r.us.u.Agents[r.i].Rev {
				stale[r.us] = true
				continue
			}
			r.us.u.Agents[r.i].Rev = w.Agents[k].Rev
		}
		if last {
			for k, us := range hdrs {
				if w.Updates[k].Rev == us.u.Rev {
					stale[us] = true
					continue
				}
				us.u.Rev = w.Updates[k].Rev
				e.own = append(e.own, us.u.Rev)
			}
		}
		for _, r := range refs[start:end] {
			if r.cs != nil && lastBatch[r.cs] == start/batch && !stale[r.us] {
				if _, ok := e.dirty[r.cs]; ok {
					e.publishClient(r.cs)
					delete(e.dirty, r.cs)
				}
			}
		}
		for ps, k := range lastGap {
			if k-1 < end {
				e.expect.clearPool(ps.p.ID, e.tickStart)
				delete(lastGap, ps)
			}
		}
		if last {
			break
		}
	}
	for us := range stale {
		e.d.Log.Debug("update changed while the engine wrote it; reading it again", zap.String("update", us.u.ID))
		u, err := e.d.Store.GetUpdate(ctx, us.u.PoolID, us.u.ID)
		e.removeUpdate(us)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return fmt.Errorf("read update %s: %w", us.u.ID, err)
		case tracked(u):
			e.addUpdate(u)
		}
	}
	for _, us := range done {
		if !stale[us] {
			e.removeUpdate(us)
		}
	}
	return nil
}

// enforceMinimum gives a job to every agent below its pool's
// minimalSupportedVersion that no update covers: it creates an update
// named "minimalSupportedVersion <v>" targeting the pool's latest version.
// An agent in a failed update is left to the operator (retry), so a broken
// release is not retried forever. It looks at every agent of a pool when
// its settings, its updates or the catalog changed, and otherwise at the
// agents whose versions changed or that joined it: a rollout's reports do
// not make it go over the pool every tick.
func (e *Engine) enforceMinimum(ctx context.Context, now time.Time) error {
	for _, ps := range e.pools {
		if !ps.minDirty && len(ps.minCheck) == 0 {
			continue
		}
		check := ps.agents
		if !ps.minDirty {
			check = make(map[string]*agentState, len(ps.minCheck))
			for as := range ps.minCheck {
				if as.pool == ps { // not moved to another pool since
					check[as.a.ID] = as
				}
			}
		}
		ps.minDirty = false
		clear(ps.minCheck)
		p := ps.p
		minV := p.Settings.MinimalSupportedVersion
		if minV == "" {
			continue
		}
		target := EffectiveLatest(p, e.cat)
		if target == "" || vercmp.Compare(target, minV) < 0 {
			continue // nothing to update to
		}
		var below []*store.Agent
		for _, as := range check {
			a := as.a
			if a.Version == "" || vercmp.Compare(a.Version, minV) >= 0 {
				continue
			}
			covered := false
			for _, us := range ps.updates {
				if _, ok := us.idx[a.ID]; ok {
					covered = true
					break
				}
			}
			if !covered {
				below = append(below, a)
			}
		}
		if len(below) == 0 {
			continue
		}
		slices.SortFunc(below, func(a, b *store.Agent) int { return cmp.Compare(a.Seq, b.Seq) })
		u := &store.Update{ID: store.NewID("upd"), PoolID: p.ID, Name: "minimalSupportedVersion " + minV, AgentType: p.Type,
			Enabled: true, Status: okta.JobInProgress, TargetVersion: target, CreatedAt: now, ModifiedAt: now,
			Reason: "agents below the pool's minimal supported version " + minV}
		for _, a := range below {
			u.Agents = append(u.Agents, store.UpdateAgent{AgentID: a.ID, Status: okta.InstanceScheduled, ModifiedAt: now})
		}
		if err := e.d.Store.CreateUpdate(ctx, u); err != nil {
			return fmt.Errorf("create the minimalSupportedVersion update of pool %s: %w", p.ID, err)
		}
		e.d.Log.Info("update created for agents below the minimal supported version", zap.String("pool", p.ID), zap.String("update", u.ID),
			zap.String("targetVersion", target), zap.Int("agents", len(u.Agents)))
		e.addUpdate(u)
	}
	return nil
}
