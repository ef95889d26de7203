package controlplane

import (
	"sync"
	"time"
)

// The heartbeat path's per-host state lives in shards, each with its own
// mutex, so concurrent heartbeats of different hosts rarely wait on one
// another.

// hbShards is the number of shards of each per-host table.
const hbShards = 32

// maxHosts bounds each per-host table. Entries are made only for
// authenticated clients, so the registered fleet already bounds them; the
// cap guards memory beyond what one node is sized for, well above the
// 300,000 hosts it is measured with. (At 200,000 a 300,000-host fleet
// emptied the tables over and over, and every heartbeat after that was
// taken for a change and written in full.)
const maxHosts = 2_000_000

// maxHostsPerShard bounds each shard of a per-host table: past it the
// shard starts over, refilled by the next heartbeats.
const maxHostsPerShard = maxHosts / hbShards

// shardOf spreads client ids over the shards (FNV-1a).
func shardOf(id string) int {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return int(h % hbShards)
}

// The client cache (Server.clients) keeps authenticated clients by secret
// hash, so a heartbeat does not read the store to authenticate. It holds
// only what never changes once a client is enrolled (its id, pool and
// secret hash: there is no client deletion nor secret rotation), so an
// entry never goes stale and needs no expiry; a miss (a client enrolled
// on another replica, a shard reset to bound memory) reads the store once.

// hbPrint is a heartbeat's fingerprints: the host's facts, its agents,
// its job reports.
type hbPrint [3]uint64

// What changed since a host's last heartbeat (hbState.changed).
const (
	changedFacts = 1 << iota
	changedAgents
	changedJobs
)

// hbState remembers each client's last heartbeat fingerprints, so a
// heartbeat that changes nothing but the time is not written at once, and
// one that changes only a job report writes only that.
type hbState struct {
	shards [hbShards]fpShard
}

type fpShard struct {
	mu sync.Mutex
	m  map[string]hbPrint
}

// changed records a heartbeat's fingerprints and reports what differs
// from the host's last one (everything for a host not seen yet).
func (h *hbState) changed(clientID string, fp hbPrint) int {
	sh := &h.shards[shardOf(clientID)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old, ok := sh.m[clientID]
	if ok && old == fp {
		return 0
	}
	if sh.m == nil || len(sh.m) >= maxHostsPerShard {
		sh.m = map[string]hbPrint{}
	}
	sh.m[clientID] = fp
	if !ok {
		return changedFacts | changedAgents | changedJobs
	}
	out := 0
	for i, bit := range []int{changedFacts, changedAgents, changedJobs} {
		if old[i] != fp[i] {
			out |= bit
		}
	}
	return out
}

func (h *hbState) forget(clientID string) {
	sh := &h.shards[shardOf(clientID)]
	sh.mu.Lock()
	delete(sh.m, clientID)
	sh.mu.Unlock()
}

// seenCoalescer keeps the last-seen time of every host whose heartbeats
// changed nothing but the time, and hands the store (take, every flush)
// the times that moved on. A host's time is written at most once per
// resolution (heartbeat.flush_interval) however often it heartbeats, and
// always at the first flush at least resolution after the last write, so
// the stored time lags the host's last heartbeat by at most resolution
// plus one flush. Readers (get) have the exact time from memory.
//
// A host that heartbeats every interval (longer than the resolution) is
// written once per heartbeat, as before; one that heartbeats faster (a
// load test, a misconfigured host, many hosts sharing a client) no longer
// costs a write per flush.
type seenCoalescer struct {
	res    time.Duration
	shards [hbShards]seenShard
}

type seenShard struct {
	mu sync.Mutex
	m  map[string]seenEntry
	// pending lists the hosts whose last time is after the one written.
	pending map[string]struct{}
}

// seenEntry is one host's last keep-alive and the time last written for
// it, in Unix nanoseconds (0: none): 16 bytes kept in the map itself, where
// two time.Time behind a pointer cost 48 and a separate allocation a host.
type seenEntry struct {
	last, written int64
}

// unixNano is t as a seenEntry time; fromUnixNano turns one back into a
// time (in UTC, as the heartbeat path's times are).
func unixNano(t time.Time) int64 { return t.UnixNano() }

func fromUnixNano(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// init makes the shards' maps; res is the resolution of written times.
func (c *seenCoalescer) init(res time.Duration) {
	c.res = res
	for i := range c.shards {
		c.shards[i].m = map[string]seenEntry{}
		c.shards[i].pending = map[string]struct{}{}
	}
}

// mark records a keep-alive of id at t.
func (c *seenCoalescer) mark(id string, t time.Time) {
	sh := &c.shards[shardOf(id)]
	sh.mu.Lock()
	e, ok := sh.m[id]
	if !ok && len(sh.m) >= maxHostsPerShard {
		sh.evictWritten()
	}
	if ns := unixNano(t); ns > e.last {
		e.last = ns
	}
	sh.m[id] = e
	if e.last > e.written {
		sh.pending[id] = struct{}{}
	}
	sh.mu.Unlock()
}

// wrote records that the store has id's last-seen time t (a heartbeat
// written through the group-commit writer).
func (c *seenCoalescer) wrote(id string, t time.Time) {
	sh := &c.shards[shardOf(id)]
	sh.mu.Lock()
	if e, ok := sh.m[id]; ok && unixNano(t) > e.written {
		e.written = unixNano(t)
		if e.last <= e.written {
			e.last = e.written
			delete(sh.pending, id)
		}
		sh.m[id] = e
	}
	sh.mu.Unlock()
}

// evictWritten drops the entries whose time is in the store.
func (sh *seenShard) evictWritten() {
	for id := range sh.m {
		if _, p := sh.pending[id]; !p {
			delete(sh.m, id)
		}
	}
}

// get returns id's last keep-alive known to this replica.
func (c *seenCoalescer) get(id string) (time.Time, bool) {
	sh := &c.shards[shardOf(id)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e, ok := sh.m[id]; ok {
		return fromUnixNano(e.last), true
	}
	return time.Time{}, false
}

// take returns the times due for writing at now (all pending ones when
// all is set), and counts them written; give them back with untake when
// the write fails.
func (c *seenCoalescer) take(now time.Time, all bool) map[string]time.Time {
	var out map[string]time.Time
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for id := range sh.pending {
			e, ok := sh.m[id]
			if !ok {
				delete(sh.pending, id)
				continue
			}
			if !all && unixNano(now)-e.written < int64(c.res) {
				continue
			}
			if out == nil {
				out = map[string]time.Time{}
			}
			out[id] = fromUnixNano(e.last)
			e.written = e.last
			sh.m[id] = e
			delete(sh.pending, id)
		}
		sh.mu.Unlock()
	}
	return out
}

// untake marks the times of a failed write pending again.
func (c *seenCoalescer) untake(m map[string]time.Time) {
	for id, t := range m {
		sh := &c.shards[shardOf(id)]
		sh.mu.Lock()
		if e, ok := sh.m[id]; ok && e.written == unixNano(t) {
			e.written = 0
			sh.m[id] = e
			sh.pending[id] = struct{}{}
		}
		sh.mu.Unlock()
	}
}
