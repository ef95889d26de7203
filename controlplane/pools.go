package controlplane

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/rollout"
	"github.com/poolagent/poolagent/controlplane/schedule"
	"github.com/poolagent/poolagent/controlplane/store"
	"github.com/poolagent/poolagent/internal/vercmp"
	"go.uber.org/zap"
)

// Defaults and bounds of the Agent Pools API.
const (
	defaultLimitPerPoolType = 5
	maxLimitPerPoolType     = 200
	// DefaultWindowMinutes is the window length of a schedule sent without
	// a duration (or with 0, as the seed's request sample does).
	DefaultWindowMinutes = rollout.DefaultWindowMinutes
	// DefaultTimezone is the zone of a schedule sent without one.
	DefaultTimezone = "UTC"
)

// baseURL is the absolute URL prefix for links.
func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.ExternalURL != "" {
		return strings.TrimSuffix(s.cfg.ExternalURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

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

// updateErr maps a store error about the update named in the path to the
// API's 404; other errors pass through.
func updateErr(r *http.Request, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound("agent pool update " + r.PathValue("updateId"))
	}
	return err
}

// getPool loads the pool named in the path.
func (s *Server) getPool(r *http.Request) (*store.Pool, error) {
	p, err := s.store.GetPool(r.Context(), r.PathValue("poolId"))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound("agent pool " + r.PathValue("poolId"))
	}
	return p, err
}

// updateView renders an update with its agents (the replies of writes;
// the GETs stream the same JSON: updateread.go).
func (s *Server) updateView(r *http.Request, u *store.Update, agents map[string]*store.Agent) okta.AgentPoolUpdate {
	cat, _ := s.catalog(r.Context()) // nil on a store error: isLatestGAedVersion is left out
	v := s.updateHead(r, u, cat)
	v.Agents = make([]okta.Agent, 0, len(u.Agents))
	for i := range u.Agents {
		v.Agents = append(v.Agents, s.updateAgent(u, &u.Agents[i], agents[u.Agents[i].AgentID], cat))
	}
	return v
}

// poolAgents returns a pool's agents by id.
// completeAgents adds to an "all agents" update that is Scheduled or
// InProgress the pool's agents it has no row for yet, Scheduled, in the
// pool's order: the rows of a new update that the rollout engine has not
// written yet, so the update reads back complete. list is the pool's
// agents in creation order.
func completeAgents(u *store.Update, list []*store.Agent) {
	if !u.AllAgents || (u.Status != okta.JobScheduled && u.Status != okta.JobInProgress) || len(u.Agents) >= len(list) {
		return
	}
	have := make(map[string]bool, len(u.Agents))
	for _, ua := range u.Agents {
		have[ua.AgentID] = true
	}
	for _, a := range list {
		if !have[a.ID] {
			u.Agents = append(u.Agents, store.UpdateAgent{AgentID: a.ID, Position: len(u.Agents), Status: okta.InstanceScheduled, ModifiedAt: u.CreatedAt})
		}
	}
}

// needsAgents reports whether completeAgents may add rows to u.
func needsAgents(u *store.Update) bool {
	return u.AllAgents && (u.Status == okta.JobScheduled || u.Status == okta.JobInProgress)
}

func (s *Server) poolAgents(r *http.Request, poolID string) (map[string]*store.Agent, []*store.Agent, error) {
	list, err := s.store.ListAgents(r.Context(), poolID)
	if err != nil {
		return nil, nil, err
	}
	m := make(map[string]*store.Agent, len(list))
	for _, a := range list {
		m[a.ID] = a
	}
	return m, list, nil
}

// handleListUpdates serves GET /api/v1/agentPools/{poolId}/updates.
func (s *Server) handleListUpdates(w http.ResponseWriter, r *http.Request, _ *store.Token) error {
	p, err := s.getPool(r)
	if err != nil {
		return err
	}
	var scheduled *bool
	if v := r.URL.Query().Get("scheduled"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return newOktaError(http.StatusBadRequest, okta.CodeValidation, "Api validation failed: query parameters",
				fmt.Sprintf("scheduled: must be true or false, got %q", v))
		}
		scheduled = &b
	}
	return s.listUpdates(w, r, p, scheduled) // streamed: updateread.go
}

// handleGetUpdate serves GET /api/v1/agentPools/{poolId}/updates/{updateId}.
func (s *Server) handleGetUpdate(w http.ResponseWriter, r *http.Request, _ *store.Token) error {
	return s.getUpdate(w, r) // streamed, with paging: updateread.go
}

// agentRef is an agent entry of an update body. Only id is used; the
// enum fields are checked so a typo is reported; everything else (the
// read-only fields an SDK sends back) is ignored.
type agentRef struct {
	ID                string                         `json:"id"`
	OperationalStatus okta.OperationalStatus         `json:"operationalStatus"`
	Type              okta.AgentType                 `json:"type"`
	UpdateStatus      okta.AgentUpdateInstanceStatus `json:"updateStatus"`
}

// scheduleBody is the schedule of an update body.
type scheduleBody struct {
	Cron     *string `json:"cron"`
	Delay    *int    `json:"delay"`
	Duration *int    `json:"duration"`
	Timezone *string `json:"timezone"`
}

// updateBody is the body of a create or modify request; nil fields were
// absent. Read-only fields (id, _links, schedule.lastUpdated) are ignored;
// status is checked but ignored.
type updateBody struct {
	Agents        *[]agentRef                `json:"agents"`
	AgentType     *okta.AgentType            `json:"agentType"`
	Enabled       *bool                      `json:"enabled"`
	Name          *string                    `json:"name"`
	NotifyAdmin   *bool                      `json:"notifyAdmin"`
	Reason        *string                    `json:"reason"`
	Schedule      json.RawMessage            `json:"schedule"`
	SortOrder     *int                       `json:"sortOrder"`
	Status        *okta.AgentUpdateJobStatus `json:"status"`
	TargetVersion *string                    `json:"targetVersion"`
	// AllowDowngrade is an extension: install a version below the
	// installed one.
	AllowDowngrade *bool `json:"allowDowngrade"`
	// Rollout is an extension: the update's rollout policy.
	Rollout json.RawMessage `json:"rollout"`
}

// parsedUpdate is a validated updateBody.
type parsedUpdate struct {
	updateBody
	scheduleSet bool            // the body carried a schedule field
	schedule    *store.Schedule // nil: no schedule (or cleared)
	rolloutSet  bool
	rollout     *RolloutPolicy
}

const maxTextField = 1024

// checkVersion reports what is wrong with a version string given by an
// operator, or "". Versions name files on hosts, so separators, "..",
// spaces and control characters are refused.
func checkVersion(v string) string {
	switch {
	case len(v) > 128:
		return "is longer than 128 characters"
	case strings.Contains(v, ".."), strings.ContainsAny(v, `/\:`):
		return "must not contain '..', '/', '\\' or ':'"
	}
	for _, r := range v {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return "must not contain spaces or control characters"
		}
	}
	return ""
}

// parseUpdateBody decodes and validates an update body for a pool.
func parseUpdateBody(r *http.Request, p *store.Pool) (*parsedUpdate, error) {
	raw, oerr := readBody(r)
	if oerr != nil {
		return nil, oerr
	}
	var b updateBody
	if oerr := decodeJSON(raw, &b); oerr != nil {
		return nil, oerr
	}
	pu := &parsedUpdate{updateBody: b}
	var causes []string
	if b.AgentType != nil && *b.AgentType != "" {
		switch {
		case !b.AgentType.Valid():
			causes = append(causes, fmt.Sprintf("agentType: unknown agent type %q; want one of %s", *b.AgentType, joinTypes()))
		case *b.AgentType != p.Type:
			causes = append(causes, fmt.Sprintf("agentType: the pool holds %s agents, not %s", p.Type, *b.AgentType))
		}
	}
	if b.Status != nil && *b.Status != "" && !b.Status.Valid() {
		causes = append(causes, fmt.Sprintf("status: unknown status %q; want one of Cancelled, Failed, InProgress, Paused, Scheduled, Success", *b.Status))
	}
	if b.TargetVersion != nil {
		if msg := checkVersion(*b.TargetVersion); msg != "" {
			causes = append(causes, "targetVersion: "+msg)
		}
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"name", b.Name}, {"reason", b.Reason}} {
		if f.v != nil && len(*f.v) > maxTextField {
			causes = append(causes, fmt.Sprintf("%s: is longer than %d bytes", f.name, maxTextField))
		}
	}
	if b.Agents != nil {
		seen := map[string]bool{}
		for i, a := range *b.Agents {
			switch {
			case a.ID == "":
				causes = append(causes, fmt.Sprintf("agents[%d].id: is required", i))
			case seen[a.ID]:
				causes = append(causes, fmt.Sprintf("agents[%d].id: agent %s is listed twice", i, a.ID))
			}
			seen[a.ID] = true
			if a.OperationalStatus != "" && !a.OperationalStatus.Valid() {
				causes = append(causes, fmt.Sprintf("agents[%d].operationalStatus: unknown value %q", i, a.OperationalStatus))
			}
			if a.Type != "" && !a.Type.Valid() {
				causes = append(causes, fmt.Sprintf("agents[%d].type: unknown agent type %q", i, a.Type))
			}
			if a.UpdateStatus != "" && !a.UpdateStatus.Valid() {
				causes = append(causes, fmt.Sprintf("agents[%d].updateStatus: unknown value %q", i, a.UpdateStatus))
			}
		}
	}
	if len(b.Schedule) > 0 {
		pu.scheduleSet = true
		sc, scCauses, oerr := parseSchedule(b.Schedule)
		if oerr != nil {
			return nil, oerr
		}
		causes = append(causes, scCauses...)
		pu.schedule = sc
	}
	if len(b.Rollout) > 0 {
		pol, rc := parseRolloutPolicy(b.Rollout)
		causes = append(causes, rc...)
		pu.rolloutSet, pu.rollout = true, pol
	}
	if len(causes) > 0 {
		return nil, errValidation(causes...)
	}
	return pu, nil
}

// parseSchedule validates a schedule object. null, {} and a schedule with
// only read-only fields mean "no schedule".
func parseSchedule(raw json.RawMessage) (*store.Schedule, []string, *oktaError) {
	if string(raw) == "null" {
		return nil, nil, nil
	}
	var sb scheduleBody
	if err := json.Unmarshal(raw, &sb); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			return nil, nil, errValidation(fmt.Sprintf("schedule.%s: expected %s, got JSON %s", typ.Field, typ.Type, typ.Value))
		}
		return nil, nil, errMalformed("schedule: must be a JSON object")
	}
	var causes []string
	cron := ""
	if sb.Cron != nil {
		cron = strings.TrimSpace(*sb.Cron)
	}
	if cron == "" {
		if sb.Timezone != nil || sb.Delay != nil || sb.Duration != nil {
			if (sb.Timezone != nil && *sb.Timezone != "") || (sb.Delay != nil && *sb.Delay != 0) || (sb.Duration != nil && *sb.Duration != 0) {
				return nil, []string{"schedule.cron: is required when a schedule is given, e.g. \"0 2 15 * *\" (the 15th at 02:00) or \"0 2 * * 2#1\" (the first Tuesday at 02:00)"}, nil
			}
		}
		return nil, nil, nil
	}
	sc := &store.Schedule{Cron: cron, Timezone: DefaultTimezone}
	if sb.Timezone != nil && *sb.Timezone != "" {
		sc.Timezone = *sb.Timezone
	}
	delay := 0
	if sb.Delay != nil {
		delay = *sb.Delay
		if delay < 0 || delay > 365 {
			causes = append(causes, fmt.Sprintf("schedule.delay: must be from 0 to 365 days, got %d", delay))
		}
	}
	duration := DefaultWindowMinutes
	if sb.Duration != nil && *sb.Duration != 0 {
		duration = *sb.Duration
		if duration < 0 {
			causes = append(causes, fmt.Sprintf("schedule.duration: must be a positive number of minutes, got %d", duration))
		}
	}
	sc.Delay, sc.Duration = &delay, &duration
	_, cronErr := schedule.Parse(sc.Cron)
	if cronErr != nil {
		causes = append(causes, "schedule.cron: "+cronErr.Error())
	}
	_, tzErr := time.LoadLocation(sc.Timezone)
	if tzErr != nil || sc.Timezone == "Local" {
		causes = append(causes, fmt.Sprintf("schedule.timezone: unknown IANA time zone %q (e.g. \"UTC\", \"Europe/Berlin\", \"America/New_York\")", sc.Timezone))
	}
	if cronErr == nil && tzErr == nil && duration > 0 {
		if _, err := schedule.NewWindow(sc.Cron, sc.Timezone, duration); err != nil {
			causes = append(causes, "schedule.duration: "+err.Error())
		}
	}
	return sc, causes, nil
}

// handleCreateUpdate serves POST /api/v1/agentPools/{poolId}/updates.
func (s *Server) handleCreateUpdate(w http.ResponseWriter, r *http.Request, tok *store.Token) error {
	p, err := s.getPool(r)
	if err != nil {
		return err
	}
	b, err := parseUpdateBody(r, p)
	if err != nil {
		return err
	}
	if err := s.checkTargetChannel(r, p, b); err != nil {
		return err
	}
	agents, list, err := s.poolAgents(r, p.ID)
	if err != nil {
		return err
	}
	now := s.clock.Now().UTC()
	u := &store.Update{
		ID:         store.NewID("upd"),
		PoolID:     p.ID,
		AgentType:  p.Type,
		Enabled:    true,
		Schedule:   b.schedule,
		CreatedAt:  now,
		ModifiedAt: now,
	}
	applyFields(u, b)
	if err := setUpdateAgents(u, b.Agents, agents, list, now); err != nil {
		return err
	}
	u.Status = okta.JobInProgress // flow 2: starts at once
	if u.Schedule != nil {
		u.Status = okta.JobScheduled // flow 3: waits for its window
	}
	// An update of every agent of the pool is stored without its agents'
	// rows: the rollout engine adds them, in batches, at its next tick
	// (reads complete them meanwhile: completeAgents). A 300,000-host
	// update is created in the time of one row.
	rows := u.Agents
	if u.AllAgents {
		u.Agents = nil
	}
	err = s.store.CreateUpdate(r.Context(), u)
	u.Agents = rows
	if err != nil {
		return err
	}
	s.log.Info("update created", updateFields(u)...)
	s.audit(r.Context(), tok, store.AuditEntry{Action: AuditUpdateCreate, PoolID: p.ID, UpdateID: u.ID, StatusAfter: string(u.Status),
		Detail: "targetVersion " + u.TargetVersion})
	s.notify(p.ID)
	s.writeUpdate(w, r, http.StatusCreated, u, agents)
	return nil
}

// checkTargetChannel refuses a body's targetVersion that the pool's
// release channel does not take. The catalog is read fresh: a release
// published a moment ago counts.
func (s *Server) checkTargetChannel(r *http.Request, p *store.Pool, b *parsedUpdate) error {
	if b.TargetVersion == nil || *b.TargetVersion == "" {
		return nil
	}
	cat, err := s.loadCatalog(r.Context(), true)
	if err != nil {
		return err
	}
	if oerr := checkChannel(p, cat, *b.TargetVersion); oerr != nil {
		return oerr
	}
	return nil
}

// applyFields copies the writable fields present in b onto u.
func applyFields(u *store.Update, b *parsedUpdate) {
	if b.Name != nil {
		u.Name = *b.Name
	}
	if b.Enabled != nil {
		u.Enabled = *b.Enabled
	}
	if b.NotifyAdmin != nil {
		u.NotifyAdmin = *b.NotifyAdmin
	}
	if b.Reason != nil {
		u.Reason = *b.Reason
	}
	if b.SortOrder != nil {
		u.SortOrder = *b.SortOrder
	}
	if b.TargetVersion != nil {
		u.TargetVersion = *b.TargetVersion
	}
	if b.AllowDowngrade != nil {
		u.AllowDowngrade = *b.AllowDowngrade
	}
	if b.rolloutSet {
		doc := rollout.ReadDoc(u)
		doc.Policy = b.rollout
		rollout.WriteDoc(u, doc)
	}
	if b.scheduleSet {
		if b.schedule != nil && u.Schedule != nil {
			b.schedule.LastUpdated = u.Schedule.LastUpdated
		}
		u.Schedule = b.schedule
	}
}

// setUpdateAgents sets the agents an update targets: the named ones (each
// must belong to the pool), or every agent of the pool when none are
// named. Agents that stay keep their status; new ones are Scheduled.
func setUpdateAgents(u *store.Update, refs *[]agentRef, agents map[string]*store.Agent, list []*store.Agent, now time.Time) error {
	if refs == nil && len(u.Agents) > 0 {
		return nil
	}
	var ids []string
	u.AllAgents = refs == nil || len(*refs) == 0
	if u.AllAgents {
		for _, a := range list {
			ids = append(ids, a.ID)
		}
	} else {
		var causes []string
		for i, ref := range *refs {
			if agents[ref.ID] == nil {
				causes = append(causes, fmt.Sprintf("agents[%d].id: agent %s is not in agent pool %s", i, ref.ID, u.PoolID))
			}
			ids = append(ids, ref.ID)
		}
		if len(causes) > 0 {
			return errValidation(causes...)
		}
	}
	old := map[string]store.UpdateAgent{}
	for _, ua := range u.Agents {
		old[ua.AgentID] = ua
	}
	u.Agents = u.Agents[:0]
	for _, id := range ids {
		ua, ok := old[id]
		if !ok {
			ua = store.UpdateAgent{AgentID: id, Status: okta.InstanceScheduled, ModifiedAt: now}
		}
		u.Agents = append(u.Agents, ua)
	}
	return nil
}

// handleModifyUpdate serves POST /api/v1/agentPools/{poolId}/updates/{updateId}.
// Fields absent from the body keep their values.
func (s *Server) handleModifyUpdate(w http.ResponseWriter, r *http.Request, tok *store.Token) error {
	p, err := s.getPool(r)
	if err != nil {
		return err
	}
	b, err := parseUpdateBody(r, p)
	if err != nil {
		return err
	}
	if err := s.checkTargetChannel(r, p, b); err != nil {
		return err
	}
	agents, list, err := s.poolAgents(r, p.ID)
	if err != nil {
		return err
	}
	now := s.clock.Now().UTC()
	var from okta.AgentUpdateJobStatus
	u, err := s.store.ModifyUpdate(r.Context(), p.ID, r.PathValue("updateId"), func(u *store.Update) error {
		from = u.Status
		completeAgents(u, list) // rows the engine has not written yet are written here
		wasScheduled := u.Schedule != nil
		applyFields(u, b)
		if b.Agents != nil && !sameAgents(u, *b.Agents) {
			if err := setUpdateAgents(u, b.Agents, agents, list, now); err != nil {
				return err
			}
		}
		// A schedule added to (or removed from) an update that has not
		// started moves it between flow 3 and flow 2.
		if !wasScheduled && u.Schedule != nil && u.Status == okta.JobInProgress && !anyStarted(u) {
			u.Status = okta.JobScheduled
		} else if wasScheduled && u.Schedule == nil && u.Status == okta.JobScheduled {
			u.Status = okta.JobInProgress
		}
		u.ModifiedAt = now
		return nil
	})
	if err != nil {
		return updateErr(r, err)
	}
	s.log.Info("update modified", updateFields(u)...)
	s.audit(r.Context(), tok, store.AuditEntry{Action: AuditUpdateModify, PoolID: p.ID, UpdateID: u.ID, StatusBefore: string(from),
		StatusAfter: string(u.Status), Detail: "targetVersion " + u.TargetVersion})
	s.notify(p.ID)
	s.writeUpdate(w, r, http.StatusCreated, u, agents)
	return nil
}

// sameAgents reports whether refs names the update's current agents, so a
// client sending back the object it received (an "all agents" update lists
// every agent) does not pin the list.
func sameAgents(u *store.Update, refs []agentRef) bool {
	if len(refs) == 0 {
		return u.AllAgents
	}
	if len(refs) != len(u.Agents) {
		return false
	}
	for i, ref := range refs {
		if u.Agents[i].AgentID != ref.ID {
			return false
		}
	}
	return true
}

func anyStarted(u *store.Update) bool {
	return slices.ContainsFunc(u.Agents, func(a store.UpdateAgent) bool { return a.Status != okta.InstanceScheduled })
}

// handleDeleteUpdate serves DELETE /api/v1/agentPools/{poolId}/updates/{updateId}.
func (s *Server) handleDeleteUpdate(w http.ResponseWriter, r *http.Request, tok *store.Token) error {
	p, err := s.getPool(r)
	if err != nil {
		return err
	}
	var from okta.AgentUpdateJobStatus
	err = s.store.DeleteUpdate(r.Context(), p.ID, r.PathValue("updateId"), func(u *store.Update) error {
		from = u.Status
		if _, ok := rollout.FindTransition(u, ActionDelete); !ok {
			return illegal(u, ActionDelete)
		}
		return nil
	})
	if err != nil {
		return updateErr(r, err)
	}
	s.log.Info("update deleted", zap.String("pool", p.ID), zap.String("update", r.PathValue("updateId")))
	s.audit(r.Context(), tok, store.AuditEntry{Action: AuditUpdateDelete, PoolID: p.ID, UpdateID: r.PathValue("updateId"), StatusBefore: string(from)})
	s.notify(p.ID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleAction serves the lifecycle POSTs (activate, deactivate, pause,
// resume, retry, stop). They carry no body.
func (s *Server) handleAction(a Action) func(w http.ResponseWriter, r *http.Request, tok *store.Token) error {
	return func(w http.ResponseWriter, r *http.Request, tok *store.Token) error {
		p, err := s.getPool(r)
		if err != nil {
			return err
		}
		agents, list, err := s.poolAgents(r, p.ID)
		if err != nil {
			return err
		}
		now := s.clock.Now().UTC()
		var from okta.AgentUpdateJobStatus
		u, err := s.store.ModifyUpdate(r.Context(), p.ID, r.PathValue("updateId"), func(u *store.Update) error {
			from = u.Status
			completeAgents(u, list) // rows the engine has not written yet are written here
			return applyAction(u, a, now)
		})
		if err != nil {
			return updateErr(r, err)
		}
		s.log.Info("update "+string(a), append(updateFields(u), statusField("from", from))...)
		s.audit(r.Context(), tok, store.AuditEntry{Action: "update." + string(a), PoolID: p.ID, UpdateID: u.ID,
			StatusBefore: string(from), StatusAfter: string(u.Status)})
		s.notify(p.ID)
		s.writeUpdate(w, r, http.StatusCreated, u, agents)
		return nil
	}
}

// settingsView renders a pool's update settings. latestVersion is the
// pinned one, or the newest release of the pool's type on its channel.
func (s *Server) settingsView(r *http.Request, p *store.Pool) okta.AgentPoolUpdateSetting {
	cat, _ := s.catalog(r.Context())
	return okta.AgentPoolUpdateSetting{
		AgentType:               p.Type,
		ContinueOnError:         p.Settings.ContinueOnError,
		LatestVersion:           effectiveLatest(p, cat),
		MinimalSupportedVersion: p.Settings.MinimalSupportedVersion,
		PoolID:                  p.ID,
		PoolName:                p.Name,
		ReleaseChannel:          p.Settings.ReleaseChannel,
		MaxUnavailable:          max(p.Settings.MaxUnavailable, 1),
		MinOperational:          p.Settings.MinOperational,
		RequireAllConnected:     p.Settings.RequireAllConnected,
	}
}

// handleGetSettings serves GET /api/v1/agentPools/{poolId}/updates/settings.
func (s *Server) handleGetSettings(w http.ResponseWriter, r *http.Request, _ *store.Token) error {
	p, err := s.getPool(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.settingsView(r, p))
	return nil
}

// settingsBody is a settings POST; absent fields keep their values.
type settingsBody struct {
	AgentType               *okta.AgentType      `json:"agentType"`
	ContinueOnError         *bool                `json:"continueOnError"`
	LatestVersion           *string              `json:"latestVersion"`
	MinimalSupportedVersion *string              `json:"minimalSupportedVersion"`
	PoolName                *string              `json:"poolName"`
	ReleaseChannel          *okta.ReleaseChannel `json:"releaseChannel"`
	MaxUnavailable          *int                 `json:"maxUnavailable"` // extension
	MinOperational          *int                 `json:"minOperational"` // extension
	RequireAllConnected     *bool                `json:"requireAllConnected"`
}

// handleSetSettings serves POST /api/v1/agentPools/{poolId}/updates/settings.
func (s *Server) handleSetSettings(w http.ResponseWriter, r *http.Request, tok *store.Token) error {
	p, err := s.getPool(r)
	if err != nil {
		return err
	}
	raw, oerr := readBody(r)
	if oerr != nil {
		return oerr
	}
	var b settingsBody
	if oerr := decodeJSON(raw, &b); oerr != nil {
		return oerr
	}
	var causes []string
	if b.AgentType != nil && *b.AgentType != "" && *b.AgentType != p.Type {
		if !b.AgentType.Valid() {
			causes = append(causes, fmt.Sprintf("agentType: unknown agent type %q; want one of %s", *b.AgentType, joinTypes()))
		} else {
			causes = append(causes, fmt.Sprintf("agentType: the pool holds %s agents, not %s", p.Type, *b.AgentType))
		}
	}
	if b.ReleaseChannel != nil && !b.ReleaseChannel.Valid() {
		causes = append(causes, fmt.Sprintf("releaseChannel: unknown channel %q; want one of BETA, EA, GA, TEST", *b.ReleaseChannel))
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"latestVersion", b.LatestVersion}, {"minimalSupportedVersion", b.MinimalSupportedVersion}} {
		if f.v != nil && *f.v != "" {
			if msg := checkVersion(*f.v); msg != "" {
				causes = append(causes, f.name+": "+msg)
			}
		}
	}
	if b.MinOperational != nil && (*b.MinOperational < 0 || *b.MinOperational > 1000000) {
		causes = append(causes, fmt.Sprintf("minOperational: must be from 0 to 1000000, got %d", *b.MinOperational))
	}
	if b.MaxUnavailable != nil && (*b.MaxUnavailable < 1 || *b.MaxUnavailable > 1000000) {
		causes = append(causes, fmt.Sprintf("maxUnavailable: must be from 1 to 1000000, got %d", *b.MaxUnavailable))
	}
	if b.PoolName != nil && (strings.TrimSpace(*b.PoolName) == "" || len(*b.PoolName) > 255) {
		causes = append(causes, "poolName: must be 1 to 255 characters")
	}
	if len(causes) > 0 {
		return newOktaError(http.StatusBadRequest, okta.CodeValidation, "Api validation failed: agentPoolUpdateSetting", causes...)
	}
	p, err = s.store.ModifyPool(r.Context(), p.ID, func(p *store.Pool) error {
		if b.ContinueOnError != nil {
			p.Settings.ContinueOnError = *b.ContinueOnError
		}
		if b.LatestVersion != nil {
			p.Settings.LatestVersion = *b.LatestVersion
		}
		if b.MinimalSupportedVersion != nil {
			p.Settings.MinimalSupportedVersion = *b.MinimalSupportedVersion
		}
		if b.PoolName != nil {
			p.Name = *b.PoolName
		}
		if b.ReleaseChannel != nil {
			p.Settings.ReleaseChannel = *b.ReleaseChannel
		}
		if b.MaxUnavailable != nil {
			p.Settings.MaxUnavailable = *b.MaxUnavailable
		}
		if b.MinOperational != nil {
			p.Settings.MinOperational = *b.MinOperational
		}
		if b.RequireAllConnected != nil {
			p.Settings.RequireAllConnected = *b.RequireAllConnected
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.log.Info("pool settings changed", zap.String("pool", p.ID))
	s.audit(r.Context(), tok, store.AuditEntry{Action: AuditSettingsChange, PoolID: p.ID, Detail: settingsDetail(p)})
	s.notify(p.ID)
	writeJSON(w, http.StatusCreated, s.settingsView(r, p))
	return nil
}

// settingsDetail is a pool's settings after a change, for the audit log.
func settingsDetail(p *store.Pool) string {
	st := p.Settings
	return fmt.Sprintf("poolName=%q releaseChannel=%s continueOnError=%t latestVersion=%q minimalSupportedVersion=%q maxUnavailable=%d minOperational=%d requireAllConnected=%t",
		p.Name, st.ReleaseChannel, st.ContinueOnError, st.LatestVersion, st.MinimalSupportedVersion, st.MaxUnavailable, st.MinOperational, st.RequireAllConnected)
}
