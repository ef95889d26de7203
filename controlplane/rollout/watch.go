package rollout

import (
	"cmp"
	"container/heap"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
	"go.uber.org/zap"
)

// Regressions: a host whose install succeeded is watched for the update's
// watch (rollout.watchMinutes after its install, default the soak). If its
// agent turns unhealthy (its host's health watch fails: DEGRADED or worse,
// crash loops included) or its host stops heartbeating (INACTIVE) within
// the watch, the host failed the update: its row goes Failed with
// "REGRESSION: <what was seen>", which counts against the error budget,
// holds the wave's promotion and halts the update as any failure does.
//
// The watch is incremental like the rest of the engine: a heap holds one
// entry per watched host, popped when its watch ends; an agent whose health
// or connection changes (reclass) is a suspect, looked at in the next tick.
// Nothing scans the fleet.
//
// An update whose hosts all finished stays InProgress (or where it is)
// until the last watch ends, and only then becomes Success: an update
// reported Success never turns Failed afterwards.

// RegressionPrefix starts the updateMessage of a host failed by a
// regression within its watch.
const RegressionPrefix = "REGRESSION: "

// watchPrefix starts the updateMessage of a host being watched.
const watchPrefix = "watching its health until "

// watchEntry is when a host's watch after its install ends.
type watchEntry struct {
	at      time.Time
	us      *updState
	agentID string
}

// watchHeap orders the watches by their end.
type watchHeap []watchEntry

func (h watchHeap) Len() int           { return len(h) }
func (h watchHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h watchHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }

// Push implements heap.Interface; use heap.Push.
func (h *watchHeap) Push(x any) { *h = append(*h, x.(watchEntry)) }

// Pop implements heap.Interface; use heap.Pop.
func (h *watchHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// installed reports whether a row is a finished install (not an agent
// found already at the target): what a watch follows.
func installed(ua *store.UpdateAgent) bool {
	// A finished revert (fleet rollback) is not watched: its host is
	// going back, and an unhealthy one is ROLLED_BACK, not a REGRESSION.
	return ua.Status == okta.InstanceSuccess && ua.JobID != "" && !IsRevertJob(ua)
}

// watchRow starts or ends a row's watch as it changes from old to cur
// (called by rowChanged). A row finishing its install within its watch is
// watched, and looked at once at once: a host may be unhealthy already.
func (e *Engine) watchRow(us *updState, cur, old *store.UpdateAgent, as *agentState) {
	was, is := installed(old), installed(cur)
	if was == is {
		return
	}
	if was {
		e.unwatch(us, cur.AgentID)
		return
	}
	d := us.doc.Policy.Watch()
	if d <= 0 || as == nil || e.suspects == nil {
		return
	}
	end := cur.ModifiedAt.Add(d)
	if !end.After(e.d.Now()) {
		return // its watch ended (a restart, a new leader)
	}
	if us.watching == nil {
		us.watching = map[string]time.Time{}
	}
	us.watching[cur.AgentID] = end
	as.watchedBy = append(as.watchedBy, us)
	heap.Push(&e.watches, watchEntry{at: end, us: us, agentID: cur.AgentID})
	e.suspects[as] = struct{}{}
}

// unwatch ends an agent's watch by an update (its watch ended, it
// regressed, or its row changed).
func (e *Engine) unwatch(us *updState, agentID string) {
	if _, ok := us.watching[agentID]; !ok {
		return
	}
	delete(us.watching, agentID)
	if as := e.agents[agentID]; as != nil {
		as.watchedBy = slices.DeleteFunc(as.watchedBy, func(x *updState) bool { return x == us })
	}
}

// watchTick looks at the suspects and ends the watches that are over. A
// follower decides nothing (the leader writes); a new leader's load
// watches again the hosts still within their watch and looks at each.
func (e *Engine) watchTick(now time.Time, lead bool) {
	if e.silentAgain && now.Sub(e.loadedAt) > e.d.Config.InactiveAfter {
		// Hosts silent across this replica's start are judged once it
		// has listened for InactiveAfter: a pass over the watched hosts,
		// once per load.
		e.silentAgain = false
		for _, us := range e.updates {
			for id := range us.watching {
				if as := e.agents[id]; as != nil && (as.client == nil || !as.client.connected) {
					e.suspects[as] = struct{}{}
				}
			}
		}
	}
	for as := range e.suspects {
		delete(e.suspects, as)
		if !lead {
			continue
		}
		for _, us := range slices.Clone(as.watchedBy) {
			e.lookAt(us, as, now)
		}
	}
	for len(e.watches) > 0 && !e.watches[0].at.After(now) {
		x := heap.Pop(&e.watches).(watchEntry)
		end, ok := x.us.watching[x.agentID]
		if !ok || !end.Equal(x.at) || e.updates[x.us.u.ID] != x.us {
			continue // no longer watched, or watched again since
		}
		e.unwatch(x.us, x.agentID)
		if i, ok := x.us.idx[x.agentID]; ok && lead {
			e.mutate(x.us, i, func(ua *store.UpdateAgent) {
				if strings.HasPrefix(ua.Message, watchPrefix) {
					ua.Message = "healthy through its watch after the install"
				}
			})
		}
	}
}

// lookAt fails an agent's row in an update watching it when the agent is
// unhealthy or its host silent; a healthy one shows until when it is
// watched.
func (e *Engine) lookAt(us *updState, as *agentState, now time.Time) {
	end, ok := us.watching[as.a.ID]
	i, ok2 := us.idx[as.a.ID]
	if !ok || !ok2 {
		return
	}
	ua := &us.u.Agents[i]
	since := ua.ModifiedAt
	// What was seen, and when: what happened after the watch's end is
	// not the update's, even when this tick is the first to see it.
	seen, at := "", now
	switch {
	case as.client == nil || !as.client.connected:
		at = as.a.LastConnection
		if as.client != nil {
			at = as.client.seen
		}
		if now.Sub(at) <= e.d.Config.InactiveAfter || now.Sub(e.loadedAt) <= e.d.Config.InactiveAfter {
			// Silent across this replica's start (or a leader's
			// change): the host or the server? Looked at again once
			// the engine has listened for InactiveAfter.
			return
		}
		seen = fmt.Sprintf("the host stopped heartbeating %s after install (last heard %s)", ago(at.Sub(since)), at.UTC().Format(time.RFC3339))
	case as.a.OperationalStatus != okta.OperationalStatusOperational:
		// The row comes with the heartbeat that changed it.
		at = cmp.Or(as.a.LastConnection, now)
		why := cmp.Or(as.a.OperationalMessage, "the host reports the agent "+string(as.a.OperationalStatus))
		seen = afterInstall(why, ago(at.Sub(since)))
	}
	if at.After(end) {
		return // after the watch: its end (the heap) lets it go
	}
	if seen == "" {
		if msg := watchPrefix + end.UTC().Format(time.RFC3339); ua.Message != msg {
			// Not through setAgent: ModifiedAt stays the install's time,
			// which the watch counts from.
			e.mutate(us, i, func(ua *store.UpdateAgent) { ua.Message = msg })
		}
		return
	}
	e.unwatch(us, as.a.ID)
	e.d.Log.Warn("a host regressed within its watch after the install: it fails the update", zap.String("pool", us.u.PoolID),
		zap.String("update", us.u.ID), zap.String("agent", as.a.ID), zap.String("seen", seen))
	e.mutate(us, i, func(ua *store.UpdateAgent) { setAgent(ua, okta.InstanceFailed, RegressionPrefix+seen, now) })
}

// afterInstall puts when into what the host said: "health check failed:
// GET ...: 503" becomes "health check failed 4m after install: GET ...:
// 503".
func afterInstall(why, when string) string {
	if head, rest, ok := strings.Cut(why, ": "); ok {
		return head + " " + when + " after install: " + rest
	}
	return why + " " + when + " after install"
}

// ago renders a duration for a message: 45s, 4m, 2h5m.
func ago(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	}
	return strings.TrimSuffix(d.Truncate(time.Minute).String(), "0s")
}
