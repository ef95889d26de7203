package controlplane

import (
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
	"go.uber.org/zap"
)

// typeMismatch is a managed agent a host reports whose type names an Okta
// agent type but not its pool's ("RADIUS" or "LDAP" in a Radius pool): it
// is not one of the pool's agents, and must not go unnoticed.
type typeMismatch struct {
	Name     string         // the program's name on its host
	Reported string         // its type as reported
	Type     okta.AgentType // the Okta type Reported names
	Pool     okta.AgentType // the pool's type
	Version  string
}

// warning is the reply's warnings[] text for m.
func (m typeMismatch) warning() string {
	fix := fmt.Sprintf("enroll the host in a %s pool, or correct the agent's type", m.Type)
	if m.Type == m.Pool {
		fix = fmt.Sprintf("spell its type %q, as Okta does (poolagent from this version on normalises it)", string(m.Pool))
	}
	return fmt.Sprintf("TYPE_MISMATCH: managed agent %q has type %q, which is not its pool's type %q: it is not one of the pool's agents and gets no updates; %s",
		m.Name, m.Reported, string(m.Pool), fix)
}

// updateMessage is the Agent Pools API's updateMessage for m.
func (m typeMismatch) updateMessage() string {
	return fmt.Sprintf("TYPE_MISMATCH: agent type %s is not the pool's type %s", m.Reported, m.Pool)
}

// typeMismatches lists the reported agents whose type names an Okta agent
// type (in any case) other than exactly the pool's. Other types
// (poolagent itself, programs that are no Okta agent) are the host's own
// business and kept in its facts only.
func typeMismatches(agents []sailpoint.AgentReport, pool okta.AgentType) []typeMismatch {
	if pool == "" {
		return nil // the pool is gone or unreadable: nothing to compare with
	}
	var out []typeMismatch
	for _, a := range agents {
		if okta.AgentType(a.Type) == pool {
			continue
		}
		t, ok := okta.ParseAgentType(a.Type)
		if !ok {
			continue
		}
		out = append(out, typeMismatch{Name: a.Name, Reported: a.Type, Type: t, Pool: pool, Version: a.Version})
	}
	return out
}

// hostNote is what the server keeps in memory of a host's last heartbeat
// beyond the store: its clock skew and its agents of the wrong type. It
// is per replica and rebuilt by the next heartbeat after a restart.
type hostNote struct {
	poolID     string
	host       string
	status     sailpoint.ClientStatus
	seen       time.Time
	skew       time.Duration // server receive time minus the host's timestamp
	hasSkew    bool          // the heartbeat carried a timestamp
	mismatches []typeMismatch
	logged     string // the mismatches last logged, so each set is logged once
}

// hostNotes holds the notes of every host heard from, by client id. Of
// most hosts only the clock skew is ever read (skew, maxSkew), so that is
// all it keeps of them (a Duration a host); the whole note is kept only
// for the hosts with mismatches, which the pool listing reads.
type hostNotes struct {
	mu sync.Mutex
	// skews holds the skew of each host whose last heartbeat carried a
	// timestamp.
	skews map[string]time.Duration
	// mismatched holds the notes of the hosts with mismatches.
	mismatched map[string]*hostNote
}

// maxHostNotes bounds each of hostNotes' maps (like the per-host tables,
// maxHosts): past it the notes start over, refilled by the next
// heartbeats.
const maxHostNotes = maxHosts

func newHostNotes() hostNotes {
	return hostNotes{skews: map[string]time.Duration{}, mismatched: map[string]*hostNote{}}
}

// record keeps a heartbeat's notes and reports whether its mismatches
// differ from the ones last logged for the host (log them now).
func (h *hostNotes) record(clientID string, n hostNote) (logNow bool) {
	key := ""
	for _, m := range n.mismatches {
		key += m.Name + "\x00" + m.Reported + "\x00" + string(m.Pool) + "\x00"
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.mismatched[clientID]
	_, hadSkew := h.skews[clientID]
	if (n.hasSkew && !hadSkew && len(h.skews) >= maxHostNotes) || (key != "" && old == nil && len(h.mismatched) >= maxHostNotes) {
		clear(h.skews)
		clear(h.mismatched)
		old = nil
	}
	logged := "" // a host without mismatches last logged none
	if old != nil {
		logged = old.logged
	}
	logNow = key != "" && key != logged
	if n.hasSkew {
		h.skews[clientID] = n.skew
	} else {
		delete(h.skews, clientID)
	}
	if key != "" {
		n.logged = key
		h.mismatched[clientID] = &n
	} else {
		delete(h.mismatched, clientID)
	}
	return logNow
}

// skew returns a host's clock skew at its last heartbeat.
func (h *hostNotes) skew(clientID string) (time.Duration, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, ok := h.skews[clientID]
	return d, ok
}

// maxSkew returns the largest absolute clock skew of the hosts heard from.
func (h *hostNotes) maxSkew() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	var most time.Duration
	for _, d := range h.skews {
		most = max(most, absDuration(d))
	}
	return most
}

// mismatchesIn returns copies of the notes of the hosts of a pool that
// report agents of the wrong type, by client id in a stable order.
func (h *hostNotes) mismatchesIn(poolID string) ([]string, []hostNote) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ids []string
	for id, n := range h.mismatched {
		if n.poolID == poolID {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	notes := make([]hostNote, len(ids))
	for i, id := range ids {
		notes[i] = *h.mismatched[id]
	}
	return ids, notes
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// skewSeconds renders a skew for the API: seconds, to the millisecond.
func skewSeconds(d time.Duration) *float64 {
	s := math.Round(d.Seconds()*1000) / 1000
	return &s
}

// mismatchAgentID is the stable id of a mismatched agent's entry in the
// pool listing (it is no agent of the store: no update can name it).
func mismatchAgentID(clientID, name string) string {
	h := fnv.New64a()
	h.Write([]byte(clientID))
	h.Write([]byte{0})
	h.Write([]byte(name))
	return fmt.Sprintf("agx%016x", h.Sum64())
}

// mismatchViews renders the agents of the wrong type reported by the
// hosts of pool p, for the pool listing: each named host/agent, with the
// Okta type its reported type names, reportedType, and an updateMessage
// starting TYPE_MISMATCH.
func (s *Server) mismatchViews(p string) []okta.Agent {
	ids, notes := s.notes.mismatchesIn(p)
	now := s.clock.Now()
	var out []okta.Agent
	for i, n := range notes {
		op := clientStatusToOperational(n.status)
		last := n.seen.UTC()
		if now.Sub(last) > s.inactiveAfter() {
			op = okta.OperationalStatusInactive
		}
		for _, m := range n.mismatches {
			hidden := false
			v := okta.Agent{
				ID: mismatchAgentID(ids[i], m.Name), Name: n.host + "/" + m.Name, Type: m.Type, PoolID: p,
				Version: m.Version, OperationalStatus: op, LastConnection: &last, IsHidden: &hidden,
				UpdateMessage: m.updateMessage(), ReportedType: m.Reported,
			}
			if n.hasSkew {
				v.ClockSkewSeconds = skewSeconds(n.skew)
			}
			out = append(out, v)
		}
	}
	return out
}

// noteHeartbeat keeps a heartbeat's clock skew and type mismatches, logs
// a host's mismatches once (again only when they change), and returns
// the reply's warnings.
func (s *Server) noteHeartbeat(clientID, poolID, host string, req *sailpoint.StatusRequest, now time.Time) []string {
	n := hostNote{poolID: poolID, host: host, status: req.Status, seen: now}
	if ts, err := time.Parse(time.RFC3339Nano, req.Timestamp); req.Timestamp != "" && err == nil {
		n.skew, n.hasSkew = now.Sub(ts), true
		s.metrics.clockSkew.Observe(absDuration(n.skew).Seconds())
	}
	poolType := s.poolType(poolID)
	n.mismatches = typeMismatches(req.Body.Agents, poolType)
	if s.notes.record(clientID, n) {
		for _, m := range n.mismatches {
			s.log.Warn("a managed agent's type is not its pool's type: it is not one of the pool's agents",
				zap.String("client", clientID), zap.String("host", host), zap.String("pool", poolID),
				zap.String("agent", m.Name), zap.String("type", m.Reported), zap.String("pool_type", string(poolType)))
		}
	}
	warnings := make([]string, 0, len(n.mismatches))
	for _, m := range n.mismatches {
		warnings = append(warnings, m.warning())
	}
	return warnings
}

// hostName is the name a host's agents are listed under.
func hostName(b *sailpoint.ClientBody, clientID string) string {
	if b.Hostname != "" {
		return string(b.Hostname)
	}
	return clientID
}
