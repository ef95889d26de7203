package controlplane

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/internal/vercmp"
)

// Bounds of the compliance endpoint's page of non-compliant agents.
const (
	defaultComplianceLimit = 200
	maxComplianceLimit     = 1000
)

// complianceInput is what an agent's compliance is judged from.
type complianceInput struct {
	Version string // the agent's version ("" when it reported none)
	Latest  string // the pool's latest version ("" when it has none)
	Minimum string // the pool's minimalSupportedVersion ("" when unset)
	// Status is the agent's operationalStatus as the API shows it:
	// INACTIVE when its host was not heard from.
	Status okta.OperationalStatus
	// Updating: the agent holds a job of an active update.
	Updating bool
}

// complianceClass is an agent's compliance: exactly one version class,
// belowMinimum beside it, and at most one health class ("" when healthy).
type complianceClass struct {
	Version      okta.ComplianceState // latest, updating, outdated or unknown
	BelowMinimum bool
	Health       okta.ComplianceState // unreachable, degraded or ""
}

// classify judges one agent. It is the one definition of the compliance
// states (docs/api.md#compliance):
//
//   - version class, exclusive: updating when it holds a job (whatever its
//     version: the job may move it anywhere); else unknown when it reported
//     no version or the pool has no latest version; else latest when its
//     version is the pool's latest or newer; else outdated.
//   - belowMinimum, overlapping the version class: its version is below a
//     set minimalSupportedVersion (updating or not).
//   - health class, exclusive of each other, overlapping the rest:
//     unreachable when INACTIVE; degraded when DEGRADED or DISRUPTED.
func classify(in complianceInput) complianceClass {
	var c complianceClass
	switch {
	case in.Updating:
		c.Version = okta.ComplianceUpdating
	case in.Version == "" || in.Latest == "":
		c.Version = okta.ComplianceUnknown
	case vercmp.Compare(in.Version, in.Latest) >= 0:
		c.Version = okta.ComplianceLatest
	default:
		c.Version = okta.ComplianceOutdated
	}
	c.BelowMinimum = in.Version != "" && in.Minimum != "" && vercmp.Compare(in.Version, in.Minimum) < 0
	switch in.Status {
	case okta.OperationalStatusInactive:
		c.Health = okta.ComplianceUnreachable
	case okta.OperationalStatusDegraded, okta.OperationalStatusDisrupted:
		c.Health = okta.ComplianceDegraded
	}
	return c
}

// Compliant reports whether the agent is on the latest version, at or
// above the minimum, reachable and healthy: anything else is listed.
func (c complianceClass) Compliant() bool {
	return c.Version == okta.ComplianceLatest && !c.BelowMinimum && c.Health == ""
}

// States lists the states the agent is in, in okta.ComplianceStates order.
func (c complianceClass) States() []okta.ComplianceState {
	out := []okta.ComplianceState{c.Version}
	if c.BelowMinimum {
		out = append(out, okta.ComplianceBelowMinimum)
	}
	if c.Health != "" {
		out = append(out, c.Health)
	}
	return out
}

// count adds an agent's class to counts.
func (c complianceClass) count(n *okta.ComplianceCounts) {
	n.Total++
	if !c.Compliant() {
		n.NonCompliant++
	}
	switch c.Version {
	case okta.ComplianceLatest:
		n.Latest++
	case okta.ComplianceUpdating:
		n.Updating++
	case okta.ComplianceOutdated:
		n.Outdated++
	default:
		n.Unknown++
	}
	if c.BelowMinimum {
		n.BelowMinimum++
	}
	switch c.Health {
	case okta.ComplianceUnreachable:
		n.Unreachable++
	case okta.ComplianceDegraded:
		n.Degraded++
	}
}

// classifyAgent judges a stored agent of a pool whose latest version is
// latest: its status as the API shows it, and whether it holds a job from
// the rollout engine's published job table (no store read).
func (s *Server) classifyAgent(p *store.Pool, a *store.Agent, latest string, now time.Time) (complianceClass, okta.OperationalStatus) {
	st := s.operational(a, now)
	return classify(complianceInput{Version: a.Version, Latest: latest, Minimum: p.Settings.MinimalSupportedVersion,
		Status: st, Updating: s.engine.HoldsJob(a.ClientID, a.ID)}), st
}

// handleCompliance serves GET /api/v1/agentPools/{poolId}/compliance
// (extension): the pool's agents counted by compliance state and a page of
// the non-compliant ones, in the pool's order. It reads the pool's agents
// from the store (one query, the same the pool listing makes); whether an
// agent is updating comes from the engine's memory.
func (s *Server) handleCompliance(w http.ResponseWriter, r *http.Request, _ *store.Token) error {
	q := r.URL.Query()
	var causes []string
	limit := defaultComplianceLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxComplianceLimit {
			causes = append(causes, fmt.Sprintf("limit: must be an integer from 1 to %d, got %q", maxComplianceLimit, v))
		}
		limit = n
	}
	var after int64
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			causes = append(causes, "after: not a cursor this server issued; take it from the Link header's rel=\"next\"")
		}
		after = n
	}
	if len(causes) > 0 {
		return newOktaError(http.StatusBadRequest, okta.CodeValidation, "Api validation failed: query parameters", causes...)
	}
	p, err := s.getPool(r)
	if err != nil {
		return err
	}
	out, next, err := s.poolCompliance(r.Context(), p, after, limit)
	if err != nil {
		return err
	}
	base := s.baseURL(r) + "/api/v1/agentPools/" + url.PathEscape(p.ID) + "/compliance"
	self := base
	if r.URL.RawQuery != "" {
		self += "?" + r.URL.RawQuery
	}
	w.Header().Add("Link", fmt.Sprintf(`<%s>; rel="self"`, self))
	if next > 0 {
		nq := url.Values{}
		nq.Set("limit", strconv.Itoa(limit))
		nq.Set("after", strconv.FormatInt(next, 10))
		w.Header().Add("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, base, nq.Encode()))
	}
	writeJSON(w, http.StatusOK, forClient(w, r, out))
	return nil
}

// poolCompliance counts a pool's agents and lists up to limit of the
// non-compliant ones whose Seq is above after; next is the cursor of the
// following page (0: none).
func (s *Server) poolCompliance(ctx context.Context, p *store.Pool, after int64, limit int) (okta.PoolCompliance, int64, error) {
	cat, err := s.catalog(ctx)
	if err != nil {
		return okta.PoolCompliance{}, 0, err
	}
	agents, err := s.store.ListAgents(ctx, p.ID)
	if err != nil {
		return okta.PoolCompliance{}, 0, err
	}
	slices.SortFunc(agents, func(a, b *store.Agent) int { return cmp.Compare(a.Seq, b.Seq) })
	latest := effectiveLatest(p, cat)
	out := okta.PoolCompliance{PoolID: p.ID, PoolName: p.Name, AgentType: p.Type, LatestVersion: latest,
		MinimalSupportedVersion: p.Settings.MinimalSupportedVersion, NonCompliant: []okta.NonCompliantAgent{}}
	now := s.clock.Now()
	var next, last int64
	for _, a := range agents {
		c, st := s.classifyAgent(p, a, latest, now)
		c.count(&out.Counts)
		if c.Compliant() || a.Seq <= after || next > 0 {
			continue
		}
		if len(out.NonCompliant) == limit {
			next = last // more follow: the next page starts after the last listed
			continue
		}
		out.NonCompliant = append(out.NonCompliant, okta.NonCompliantAgent{ID: a.ID, Name: a.Name, Version: a.Version,
			OperationalStatus: st, States: c.States()})
		last = a.Seq
	}
	return out, next, nil
}

// poolHostsDesc is the per-pool compliance gauge (docs/metrics.md).
var poolHostsDesc = prometheus.NewDesc("poolserver_pool_hosts",
	"Managed agents of each pool by compliance state (latest, updating, outdated, unknown, belowMinimum, unreachable, degraded, total).",
	[]string{"pool", "state"}, nil)

// complianceMetrics counts each pool's agents by compliance state from the
// agents the fleet collector already read (no store query of its own).
func (s *Server) complianceMetrics(ctx context.Context, pools []*store.Pool, agents []*store.Agent, now time.Time) []prometheus.Metric {
	cat, _ := s.catalog(ctx) // nil on an error: the pinned latest versions still count
	byPool := make(map[string][]*store.Agent, len(pools))
	for _, a := range agents {
		byPool[a.PoolID] = append(byPool[a.PoolID], a)
	}
	out := make([]prometheus.Metric, 0, len(pools)*(len(okta.ComplianceStates)+1))
	for _, p := range pools {
		var n okta.ComplianceCounts
		latest := effectiveLatest(p, cat)
		for _, a := range byPool[p.ID] {
			c, _ := s.classifyAgent(p, a, latest, now)
			c.count(&n)
		}
		for _, st := range okta.ComplianceStates {
			out = append(out, prometheus.MustNewConstMetric(poolHostsDesc, prometheus.GaugeValue, float64(n.Of(st)), p.ID, string(st)))
		}
		out = append(out, prometheus.MustNewConstMetric(poolHostsDesc, prometheus.GaugeValue, float64(n.Total), p.ID, "total"))
	}
	return out
}
