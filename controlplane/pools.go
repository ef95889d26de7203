package controlplane

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/internal/vercmp"
)

// Defaults and bounds of the Agent Pools API.
const (
	defaultLimitPerPoolType = 5
	maxLimitPerPoolType     = 200
)

// poolCursor is the opaque `after` cursor: per pool type, the Seq of the
// last pool already returned (-1: that type is exhausted).
type poolCursor map[okta.AgentType]int64

func (c poolCursor) encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodePoolCursor(s string) (poolCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	var c poolCursor
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	for t := range c {
		if !t.Valid() {
			return nil, fmt.Errorf("unknown pool type %q", t)
		}
	}
	return c, nil
}

// handleListPools serves GET /api/v1/agentPools.
func (s *Server) handleListPools(w http.ResponseWriter, r *http.Request, _ *store.Token) error {
	q := r.URL.Query()
	var causes []string
	limit := defaultLimitPerPoolType
	if v := q.Get("limitPerPoolType"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimitPerPoolType {
			causes = append(causes, fmt.Sprintf("limitPerPoolType: must be an integer from 1 to %d, got %q", maxLimitPerPoolType, v))
		}
		limit = n
	}
	types := okta.AgentTypes
	if v := q.Get("poolType"); v != "" {
		if t := okta.AgentType(v); t.Valid() {
			types = []okta.AgentType{t}
		} else {
			causes = append(causes, fmt.Sprintf("poolType: unknown agent type %q; want one of %s", v, joinTypes()))
		}
	}
	cursor := poolCursor{}
	if v := q.Get("after"); v != "" {
		c, err := decodePoolCursor(v)
		if err != nil {
			causes = append(causes, "after: not a cursor this server issued; take it from the Link header's rel=\"next\"")
		}
		cursor = c
	}
	if len(causes) > 0 {
		return newOktaError(http.StatusBadRequest, okta.CodeValidation, "Api validation failed: query parameters", causes...)
	}

	var pools []*store.Pool
	next := poolCursor{}
	more := false
	for _, t := range types {
		after, seen := cursor[t]
		if seen && after < 0 {
			next[t] = -1
			continue
		}
		page, err := s.store.ListPools(r.Context(), store.PoolQuery{Type: t, AfterSeq: after, Limit: limit + 1})
		if err != nil {
			return err
		}
		if len(page) > limit {
			page = page[:limit]
			more = true
			next[t] = page[len(page)-1].Seq
		} else {
			next[t] = -1
		}
		pools = append(pools, page...)
	}
	ids := make([]string, len(pools))
	for i, p := range pools {
		ids[i] = p.ID
	}
	agents, err := s.store.ListAgents(r.Context(), ids...)
	if err != nil {
		return err
	}
	cat, err := s.catalog(r.Context())
	if err != nil {
		return err
	}
	byPool := map[string][]okta.Agent{}
	for _, a := range agents {
		byPool[a.PoolID] = append(byPool[a.PoolID], s.agentView(a, cat))
	}
	out := make([]okta.AgentPool, 0, len(pools))
	for _, p := range pools {
		as := byPool[p.ID]
		if as == nil {
			as = []okta.Agent{}
		}
		status := poolStatus(as)
		// Agents of the wrong type its hosts report are listed too, with
		// TYPE_MISMATCH, but count for nothing in the pool's status.
		as = append(as, s.mismatchViews(p.ID)...)
		out = append(out, okta.AgentPool{ID: p.ID, Name: p.Name, Type: p.Type, Agents: as, OperationalStatus: status})
	}

	self := s.baseURL(r) + "/api/v1/agentPools"
	if r.URL.RawQuery != "" {
		self += "?" + r.URL.RawQuery
	}
	w.Header().Add("Link", fmt.Sprintf(`<%s>; rel="self"`, self))
	if more {
		nq := url.Values{}
		nq.Set("limitPerPoolType", strconv.Itoa(limit))
		if v := q.Get("poolType"); v != "" {
			nq.Set("poolType", v)
		}
		nq.Set("after", next.encode())
		w.Header().Add("Link", fmt.Sprintf(`<%s/api/v1/agentPools?%s>; rel="next"`, s.baseURL(r), nq.Encode()))
	}
	writeJSON(w, http.StatusOK, forClient(w, r, out))
	return nil
}

func joinTypes() string {
	names := make([]string, len(okta.AgentTypes))
	for i, t := range okta.AgentTypes {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

// poolStatus derives a pool's operationalStatus from its agents': no agents
// or none operational is INACTIVE or DISRUPTED, all operational is
// OPERATIONAL, anything between is DEGRADED.
func poolStatus(agents []okta.Agent) okta.OperationalStatus {
	if len(agents) == 0 {
		return okta.OperationalStatusInactive
	}
	up := 0
	for _, a := range agents {
		if a.OperationalStatus == okta.OperationalStatusOperational {
			up++
		}
	}
	switch up {
	case len(agents):
		return okta.OperationalStatusOperational
	case 0:
		return okta.OperationalStatusDisrupted
	}
	return okta.OperationalStatusDegraded
}

// agentView renders an agent for the API. An agent not heard from for
// heartbeat.inactive_after intervals is INACTIVE whatever it last reported.
func (s *Server) agentView(a *store.Agent, cat *catalog) okta.Agent {
	v := okta.Agent{
		ID:                a.ID,
		Name:              a.Name,
		Type:              a.Type,
		PoolID:            a.PoolID,
		Version:           a.Version,
		OperationalStatus: a.OperationalStatus,
		IsHidden:          &a.IsHidden,
	}
	last := a.LastConnection
	if t, ok := s.seen.get(a.ClientID); ok && t.After(last) {
		last = t // a keep-alive not yet written
	}
	if !last.IsZero() {
		t := last.UTC()
		v.LastConnection = &t
	}
	if last.IsZero() || s.clock.Now().Sub(last) > s.inactiveAfter() {
		v.OperationalStatus = okta.OperationalStatusInactive
	} else if v.OperationalStatus != okta.OperationalStatusOperational {
		v.OperationalMessage = a.OperationalMessage
	}
	if skew, ok := s.notes.skew(a.ClientID); ok {
		v.ClockSkewSeconds = skewSeconds(skew)
	}
	if cat != nil && a.Version != "" {
		if latest := cat.Latest(string(a.Type), okta.ChannelGA); latest != "" {
			is := vercmp.Compare(a.Version, latest) >= 0
			v.IsLatestGAedVersion = &is
		}
	}
	return v
}

// getPool reads the pool named in the path; a missing one is the API's
// 404 naming it.
func (s *Server) getPool(r *http.Request) (*store.Pool, error) {
	p, err := s.store.GetPool(r.Context(), r.PathValue("poolId"))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound("agent pool " + r.PathValue("poolId"))
	}
	return p, err
}
