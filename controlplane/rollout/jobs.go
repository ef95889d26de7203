package rollout

import (
	"context"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/internal/vercmp"
	"go.uber.org/zap"
)

// SelfName is the release name of poolagent itself.
const SelfName = "poolagent"

// SelfJobPrefix starts the id of a poolagent self-update job.
const SelfJobPrefix = "self-"

// ArtifactPath is the path an artifact is served at (the server prefixes
// its base URL).
func ArtifactPath(r *store.Release) string {
	return fmt.Sprintf("/artifacts/%s/%s/%s/%s", r.Name, r.Version, r.OS, r.Arch)
}

// PatchPath is the path a patch is served at (the server prefixes its base
// URL); download metrics key on its /artifacts/patches/ prefix.
func PatchPath(sha string) string { return "/artifacts/patches/" + sha }

// updInfo is what every published job of an update shares; replaced, not
// changed, when the update's window, target or policy change.
type updInfo struct {
	updateID, poolID string
	status           okta.AgentUpdateJobStatus
	target           string
	allowDowngrade   bool
	maint            sailpoint.Maintenance
	windowStart      time.Time
	policy           *Policy
}

func (a *updInfo) same(b *updInfo) bool {
	return a != nil && b != nil && a.updateID == b.updateID && a.status == b.status && a.target == b.target &&
		a.allowDowngrade == b.allowDowngrade && a.maint == b.maint && a.windowStart.Equal(b.windowStart) && a.policy == b.policy
}

// jobSnap is one published job in flight: immutable, so a heartbeat reads
// it without the engine's lock.
type jobSnap struct {
	info        *updInfo
	id          string
	seq         int64
	running     bool
	agentID     string
	agentName   string
	typ         string
	rel         *store.Release
	fromVersion string
	// revert: a fleet rollback's job back to version (rollback.go).
	revert  bool
	version string
}

// selfSnap is a published poolagent self-update offer.
type selfSnap struct {
	version string
	rel     *store.Release
	poolID  string
}

// clientJobs is what one client is handed.
type clientJobs struct {
	jobs []*jobSnap
	self *selfSnap
}

// jobTable publishes each client's jobs, sharded so heartbeats on many
// connections do not queue on one lock.
type jobTable struct {
	seed   maphash.Seed
	shards [64]struct {
		mu sync.RWMutex
		m  map[string]*clientJobs
	}
}

func (t *jobTable) init() {
	t.seed = maphash.MakeSeed()
	for i := range t.shards {
		t.shards[i].m = map[string]*clientJobs{}
	}
}

func (t *jobTable) shard(id string) int {
	return int(maphash.String(t.seed, id) % uint64(len(t.shards)))
}

func (t *jobTable) get(id string) *clientJobs {
	s := &t.shards[t.shard(id)]
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m[id]
}

func (t *jobTable) set(id string, cj *clientJobs) {
	s := &t.shards[t.shard(id)]
	s.mu.Lock()
	if cj == nil {
		delete(s.m, id)
	} else {
		s.m[id] = cj
	}
	s.mu.Unlock()
}

func (t *jobTable) clear() {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		clear(s.m)
		s.mu.Unlock()
	}
}

// refreshInfos brings every update's job info up to now, once a tick
// (the writes need it before publishing; an update read again since has
// none yet).
func (e *Engine) refreshInfos(now time.Time) {
	e.infoNow = now
	for _, us := range e.updates {
		if e.infoTick != e.ticks || us.info == nil {
			e.refreshInfo(us, now)
		}
	}
	e.infoTick = e.ticks
}

// refreshInfo computes what an update's jobs share; a change republishes
// the jobs of its agents in flight.
func (e *Engine) refreshInfo(us *updState, now time.Time) {
	u := us.u
	target := Target(u, us.pool.p, e.cat)
	in := e.makeInfo(us, target, now, "")
	zoneChanged := e.refreshZoneInfos(us, target, now)
	if in.same(us.info) && !zoneChanged {
		return
	}
	us.info = in
	for i := range u.Agents {
		if live(&u.Agents[i]) {
			if as := e.agents[u.Agents[i].AgentID]; as != nil {
				e.markClient(as.client)
			}
		}
	}
}

// makeInfo computes what an update's jobs share for hosts in hostZone
// (which only a host-zoned schedule reads, see WindowIn).
func (e *Engine) makeInfo(us *updState, target string, now time.Time, hostZone string) *updInfo {
	u := us.u
	open, start, end, _ := WindowIn(u, target, e.cat, now, hostZone)
	in := &updInfo{updateID: u.ID, poolID: u.PoolID, status: u.Status, target: target, allowDowngrade: u.AllowDowngrade,
		maint: sailpoint.Maintenance{Window: fmt.Sprint(open), WindowStartTime: start.UTC().Format(time.RFC3339)}, windowStart: start}
	if !end.IsZero() {
		in.maint.WindowFinishTime = end.UTC().Format(time.RFC3339)
	}
	in.policy = us.doc.Policy // replaced only when the update is read again
	return in
}

// Summary is an active update's agents counted by updateStatus, as of
// the engine's last tick.
type Summary struct {
	Counts map[okta.AgentUpdateInstanceStatus]int
	Total  int
}

// Summary returns an active update's counts without reading its rows; ok
// is false for an update the engine does not hold (finished, or not seen
// yet). It takes no engine lock.
func (e *Engine) Summary(updateID string) (Summary, bool) {
	if m := e.summaries.Load(); m != nil {
		if s, ok := (*m)[updateID]; ok {
			return s, true
		}
	}
	if c, ok := e.created.Load(updateID); ok {
		return c.(createdSummary).Summary, true
	}
	return Summary{}, false
}

// createdSummary is an update's counts from its creation until a tick
// holds the update.
type createdSummary struct {
	Summary
	at time.Time
}

// Created tells the engine of an update just created for all of a pool's
// total agents, none of whose rows exist yet: until a tick holds it,
// Summary counts them all Scheduled (the truth until the engine hands out
// a job). Without it a read of a big update between its create and the
// end of the tick that dispatches it (seconds at 300,000 hosts) reads
// every agent of the pool. It returns those counts.
func (e *Engine) Created(updateID string, total int) Summary {
	sum := Summary{Counts: map[okta.AgentUpdateInstanceStatus]int{okta.InstanceScheduled: total}, Total: total}
	e.created.Store(updateID, createdSummary{Summary: sum, at: e.d.Now()})
	return sum
}

// publishSummaries publishes every active update's counts.
func (e *Engine) publishSummaries() {
	sums := make(map[string]Summary, len(e.updates))
	for _, us := range e.updates {
		c := make(map[okta.AgentUpdateInstanceStatus]int, len(us.byStatus))
		for st, n := range us.byStatus {
			if n != 0 {
				c[st] = n
			}
		}
		sums[us.u.ID] = Summary{Counts: c, Total: len(us.u.Agents)}
	}
	e.summaries.Store(&sums)
	// A created update leaves created once a tick holds it (its
	// summary is above), or after a while if it never comes (deleted).
	now := e.d.Now()
	e.created.Range(func(k, v any) bool {
		if _, held := sums[k.(string)]; held || now.Sub(v.(createdSummary).at) > 10*time.Minute {
			e.created.Delete(k)
		}
		return true
	})
	sizes := make(map[string]int, len(e.pools))
	for id, ps := range e.pools {
		sizes[id] = len(ps.agents)
	}
	e.poolSizes.Store(&sizes)
}

// PoolAgents returns how many agents a pool has, as of the engine's last
// tick: the rows it will write for an update of every agent of the pool.
// ok is false for a pool the engine has not loaded yet. It takes no
// engine lock.
func (e *Engine) PoolAgents(poolID string) (n int, ok bool) {
	m := e.poolSizes.Load()
	if m == nil {
		return 0, false
	}
	n, ok = (*m)[poolID]
	return n, ok
}

// publish rebuilds the published jobs of the clients something touched
// and the updates' summaries.
func (e *Engine) publish(now time.Time) {
	e.refreshInfos(now)
	e.publishSummaries()
	e.stats.published += len(e.dirty)
	for cs := range e.dirty {
		delete(e.dirty, cs)
		e.publishClient(cs)
	}
}

// publishClient rebuilds one client's published jobs.
func (e *Engine) publishClient(cs *clientState) {
	if e.clients[cs.c.ID] != cs {
		return
	}
	var cj clientJobs
	for _, as := range cs.agents {
		if as.pool == nil {
			continue
		}
		for _, us := range as.pool.updates {
			i, ok := us.idx[as.a.ID]
			if !ok {
				continue
			}
			ua := &us.u.Agents[i]
			if !live(ua) {
				continue
			}
			if IsRevertJob(ua) {
				cj.jobs = append(cj.jobs, &jobSnap{info: us.info, id: ua.JobID, seq: ua.JobSeq, running: ua.Status != okta.InstanceScheduled,
					agentID: ua.AgentID, agentName: as.a.AgentName, typ: string(as.a.Type), revert: true, version: ua.FromVersion,
					rel: e.cat.Get(string(as.a.Type), ua.FromVersion, cs.c.OS, cs.c.Arch)})
				continue
			}
			// A paused or halted update lets running jobs finish and
			// hands out nothing new; a stopped one (kept for its
			// rollback) cancels them.
			if us.u.Status == okta.JobCancelled || (us.u.Status != okta.JobInProgress && ua.Status == okta.InstanceScheduled) {
				continue
			}
			info := us.info
			if hostZoned(us.u) {
				info = e.zoneInfo(us, cs.zone) // the host's own window
			}
			cj.jobs = append(cj.jobs, &jobSnap{info: info, id: ua.JobID, seq: ua.JobSeq, running: ua.Status != okta.InstanceScheduled,
				agentID: ua.AgentID, agentName: as.a.AgentName, typ: string(as.a.Type), fromVersion: ua.FromVersion,
				rel: e.cat.Get(string(as.a.Type), info.target, cs.c.OS, cs.c.Arch)})
		}
	}
	if e.d.Config.SelfUpdate {
		cj.self = e.selfOffer(cs)
	}
	if len(cj.jobs) == 0 && cj.self == nil {
		e.table.set(cs.c.ID, nil)
	} else {
		e.table.set(cs.c.ID, &cj)
	}
}

// selfOffer is the newest poolagent release on the client's pool channel
// when its poolagent is older: self-updates are not counted against
// maxUnavailable (they restart poolagent, not the managed agents). A host
// that reported one failed is not offered that version again.
func (e *Engine) selfOffer(cs *clientState) *selfSnap {
	c := cs.c
	ps := e.pools[c.PoolID]
	if ps == nil || c.AgentVersion == "" || !cs.connected || e.cat == nil {
		return nil
	}
	latest := e.cat.Latest(SelfName, ps.p.Settings.ReleaseChannel)
	if latest == "" || vercmp.Compare(c.AgentVersion, latest) >= 0 {
		return nil
	}
	if _, failed := e.selfFailed.Load(c.ID + "\x00" + latest); failed {
		return nil
	}
	rel := e.cat.Get(SelfName, latest, c.OS, c.Arch)
	if rel == nil {
		return nil
	}
	return &selfSnap{version: latest, rel: rel, poolID: c.PoolID}
}

// artifactOf describes r's artifact, with the patch from the binary the
// host reported (rep, nil when it reported none) when r has one: same
// version and same SHA-256, so a patch is offered only for the exact bytes
// it was built from. The release's patches are in memory (the catalog):
// no store read per job.
func artifactOf(r *store.Release, rep *sailpoint.AgentReport) *sailpoint.Artifact {
	a := &sailpoint.Artifact{Name: r.Name, Version: r.Version, OS: r.OS, Arch: r.Arch, URL: ArtifactPath(r),
		Size: r.Size, SHA256: r.SHA256, Signature: r.Signature}
	if rep == nil || rep.SHA256 == "" {
		return a
	}
	for _, p := range r.Patches {
		if p.FromVersion == rep.Version && strings.EqualFold(p.FromSHA256, rep.SHA256) {
			a.Patch = &sailpoint.ArtifactPatch{FromVersion: p.FromVersion, FromSHA256: p.FromSHA256, URL: PatchPath(p.SHA256), Size: p.Size, SHA256: p.SHA256}
			break
		}
	}
	return a
}

// reportOf returns the agent named name in a heartbeat's report, or nil.
func reportOf(installed []sailpoint.AgentReport, name string) *sailpoint.AgentReport {
	for i := range installed {
		if installed[i].Name == name {
			return &installed[i]
		}
	}
	return nil
}

// JobsFor returns the jobs a client's heartbeat hands out: its agents'
// jobs in flight and a poolagent self-update offer. installed is what the
// heartbeat reported of the host's agents: a job offers the patch from
// the reported version and binary. Artifact URLs are paths; now stamps
// the self-update's window. It takes no engine lock. Every job's
// ManagedProcessConfiguration (and its artifacts) is new for the call:
// the caller may change them.
func (e *Engine) JobsFor(clientID string, now time.Time, installed ...sailpoint.AgentReport) []sailpoint.Job {
	cj := e.table.get(clientID)
	if cj == nil {
		return nil
	}
	out := make([]sailpoint.Job, 0, len(cj.jobs)+1)
	for _, s := range cj.jobs {
		in := s.info
		state := sailpoint.JobPending
		if s.running {
			state = sailpoint.JobRunning
		}
		if s.revert {
			out = append(out, revertJob(clientID, s, now, installed))
			continue
		}
		mp := sailpoint.ManagedProcess{Version: in.target, Path: s.typ + "/" + s.agentName, Type: s.typ}
		if s.rel != nil {
			mp.Artifact = artifactOf(s.rel, reportOf(installed, s.agentName))
		}
		m := in.maint
		job := sailpoint.Job{
			UUID: s.id, Cookbook: s.id, State: state, Type: sailpoint.JobTypeUpgrade, TargetID: clientID,
			ManagedProcessConfiguration: map[string]sailpoint.ManagedProcess{s.agentName: mp},
			UpdateID:                    in.updateID, PoolID: in.poolID, AllowDowngrade: in.allowDowngrade, Sequence: s.seq, Maintenance: &m,
			Precheck: &sailpoint.Precheck{FromVersion: s.fromVersion},
		}
		if mp.Artifact != nil {
			size := mp.Artifact.Size
			job.Precheck.FreeBytes = 2*size + max(size/10, 16<<20)
		}
		if pol := in.policy; pol != nil {
			job.Precheck.MinPoolagentVersion = pol.MinPoolagentVersion
			job.DownloadRateLimit = pol.DownloadRateLimit
			if pol.SplayMinutes > 0 {
				at := in.windowStart.Add(SplayOffset(in.updateID, s.agentID, time.Duration(pol.SplayMinutes)*time.Minute))
				job.StartAfter = at.UTC().Format(time.RFC3339)
			}
		}
		out = append(out, job)
	}
	if s := cj.self; s != nil {
		if _, failed := e.selfFailed.Load(clientID + "\x00" + s.version); !failed {
			id := SelfJobPrefix + clientID + "-" + s.version
			out = append(out, sailpoint.Job{
				UUID: id, Cookbook: id, State: sailpoint.JobPending, Type: sailpoint.JobTypeUpgrade, TargetID: clientID,
				ManagedProcessConfiguration: map[string]sailpoint.ManagedProcess{SelfName: {Version: s.version, Path: SelfName, Type: SelfName,
					Artifact: artifactOf(s.rel, reportOf(installed, SelfName))}},
				PoolID: s.poolID, Sequence: s.rel.Seq,
				Maintenance: &sailpoint.Maintenance{Window: "true", WindowStartTime: now.UTC().Format(time.RFC3339)},
			})
		}
	}
	return out
}

// Owns reports whether jobID is a job of clientID: from the published
// jobs for jobs in flight, else from the store (a job of an update stopped
// since).
func (e *Engine) Owns(ctx context.Context, clientID, jobID string) bool {
	if cj := e.table.get(clientID); cj != nil {
		for _, s := range cj.jobs {
			if s.id == jobID {
				return true
			}
		}
	}
	owner, err := e.d.Store.JobOwner(ctx, jobID)
	return err == nil && owner == clientID
}

// SelfReport records a host's report on a self-update job: its end is
// logged (self-updates have no update in the Agent Pools API), and a
// failed version is not offered to the host again.
func (e *Engine) SelfReport(clientID string, j sailpoint.JobReport) {
	prefix := SelfJobPrefix + clientID + "-"
	if len(j.UUID) <= len(prefix) || !strings.HasPrefix(j.UUID, prefix) {
		return
	}
	version := j.UUID[len(prefix):]
	log := e.d.Log.With(zap.String("client", clientID), zap.String("job", j.UUID), zap.String("version", version),
		zap.String("state", string(j.State)), zap.String("updateStatus", j.UpdateStatus))
	switch j.State {
	case sailpoint.JobFinished:
		log.Info("poolagent self-update finished")
	case sailpoint.JobFailed:
		log.Warn("poolagent self-update failed; this version is not offered to the host again", zap.String("updateMessage", j.UpdateMessage))
		e.selfFailed.Store(clientID+"\x00"+version, true)
	}
}
