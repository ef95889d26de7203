package controlplane

// The read path of updates: GET of one update and of a pool's updates.
// An update may name hundreds of thousands of agents, so these replies are
// written as they are rendered, one agent at a time into a small buffer,
// never as one value marshalled at once; query parameters (extensions)
// let a reader ask for counts only, a status, or one page of the agents.
// docs/api.md, "Big updates", describes the parameters and the ETags.

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
	"go.uber.org/zap"
)

const (
	// maxAgentsLimit bounds the limit query parameter of GET of an update.
	maxAgentsLimit = 10000
	// bufferedAgents is the most agents a GET reply may carry and still be
	// buffered whole by withETag (strong ETag over the body). Above it the
	// reply is streamed under a weak ETag (see writeTagged).
	bufferedAgents = 2000
	// flushBytes is how much rendered JSON is held before it is written on.
	flushBytes = 32 << 10
)

// instanceStatuses are the per-agent statuses of the seed, in the order
// docs and errors list them.
var instanceStatuses = []okta.AgentUpdateInstanceStatus{okta.InstanceScheduled, okta.InstanceInProgress,
	okta.InstancePendingCompletion, okta.InstanceSuccess, okta.InstanceFailed, okta.InstanceCancelled}

// agentsQuery is what a GET asks of an update's agents array.
type agentsQuery struct {
	none     bool                                    // agents=none: counts only, no array
	statuses map[okta.AgentUpdateInstanceStatus]bool // agentStatus; nil: every status
	limit    int                                     // 0: no limit
	after    string                                  // agent id; "" from the first agent
}

// paged reports whether the reply is one page (Link rel="next" possible).
func (q agentsQuery) paged() bool { return q.limit > 0 }

// parseAgentsQuery reads the agents, agentStatus, limit and after query
// parameters; one lists only agents (GET of a pool's updates).
func parseAgentsQuery(v url.Values, one bool) (agentsQuery, error) {
	var q agentsQuery
	var causes []string
	switch a := v.Get("agents"); a {
	case "", "all":
	case "none":
		q.none = true
	default:
		causes = append(causes, fmt.Sprintf(`agents: must be "all" or "none", got %q`, a))
	}
	for _, name := range []string{"agentStatus", "limit", "after"} {
		if !one && v.Has(name) {
			causes = append(causes, name+": only on GET of one update (/api/v1/agentPools/{poolId}/updates/{updateId})")
		}
	}
	for _, list := range v["agentStatus"] {
		for _, st := range strings.Split(list, ",") {
			s := okta.AgentUpdateInstanceStatus(strings.TrimSpace(st))
			if !s.Valid() {
				causes = append(causes, fmt.Sprintf("agentStatus: unknown per-agent status %q; want one or more of %s, comma-separated",
					st, joinStatuses()))
				continue
			}
			if q.statuses == nil {
				q.statuses = map[okta.AgentUpdateInstanceStatus]bool{}
			}
			q.statuses[s] = true
		}
	}
	if v.Has("limit") {
		n, err := strconv.Atoi(v.Get("limit"))
		if err != nil || n < 1 || n > maxAgentsLimit {
			causes = append(causes, fmt.Sprintf("limit: must be an integer from 1 to %d, got %q", maxAgentsLimit, v.Get("limit")))
		}
		q.limit = n
	}
	if v.Has("after") {
		q.after = v.Get("after")
		if q.after == "" {
			causes = append(causes, "after: empty; take it from the Link header's rel=\"next\"")
		}
	}
	if q.none && (q.statuses != nil || v.Has("limit") || v.Has("after")) {
		causes = append(causes, "agents: none lists no agents, so agentStatus, limit and after do not apply; drop them or agents=none")
	}
	if len(causes) > 0 {
		return q, newOktaError(http.StatusBadRequest, okta.CodeValidation, "Api validation failed: query parameters", causes...)
	}
	return q, nil
}

func joinStatuses() string {
	names := make([]string, len(instanceStatuses))
	for i, s := range instanceStatuses {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// agentSelection is the part of u.Agents a reply carries: the agents of
// u.Agents[from:to] whose status q selects, n of them. more is set when a
// page stopped before the last matching agent.
type agentSelection struct {
	q        agentsQuery
	from, to int
	n        int
	more     bool
}

func (sel *agentSelection) includes(ua *store.UpdateAgent) bool {
	return sel.q.statuses == nil || sel.q.statuses[ua.Status]
}

// selectAgents finds the agents of u that q asks for.
func selectAgents(u *store.Update, q agentsQuery) (agentSelection, error) {
	sel := agentSelection{q: q, to: len(u.Agents)}
	if q.none {
		sel.to = 0
		return sel, nil
	}
	if q.after != "" {
		i := slices.IndexFunc(u.Agents, func(ua store.UpdateAgent) bool { return ua.AgentID == q.after })
		if i < 0 {
			return sel, newOktaError(http.StatusBadRequest, okta.CodeValidation, "Api validation failed: query parameters",
				fmt.Sprintf("after: agent %q is not in update %s; take the cursor from the Link header's rel=\"next\" "+
					"(an agent removed from the update ends its cursor)", q.after, u.ID))
		}
		sel.from = i + 1
	}
	for i := sel.from; i < len(u.Agents); i++ {
		if !sel.includes(&u.Agents[i]) {
			continue
		}
		if q.limit > 0 && sel.n == q.limit {
			sel.to, sel.more = i, true
			break
		}
		sel.n++
	}
	return sel, nil
}

// lastID is the id of the last agent the selection carries ("" if none).
func (sel *agentSelection) lastID(u *store.Update) string {
	for i := sel.to - 1; i >= sel.from; i-- {
		if sel.includes(&u.Agents[i]) {
			return u.Agents[i].AgentID
		}
	}
	return ""
}

// agentCounts counts u's agents by status, every status of the seed
// present.
func agentCounts(u *store.Update) map[okta.AgentUpdateInstanceStatus]int {
	c := make(map[okta.AgentUpdateInstanceStatus]int, len(instanceStatuses))
	for _, s := range instanceStatuses {
		c[s] = 0
	}
	for i := range u.Agents {
		c[u.Agents[i].Status]++
	}
	return c
}

// updateHead renders an update without its agents array.
func (s *Server) updateHead(r *http.Request, u *store.Update, cat *catalog) okta.AgentPoolUpdate {
	v := okta.AgentPoolUpdate{
		ID:             u.ID,
		Name:           u.Name,
		AgentType:      u.AgentType,
		Enabled:        u.Enabled,
		NotifyAdmin:    u.NotifyAdmin,
		Reason:         u.Reason,
		SortOrder:      u.SortOrder,
		Status:         u.Status,
		TargetVersion:  u.TargetVersion,
		AllowDowngrade: u.AllowDowngrade,
		Rollout:        rolloutView(u),
		AgentCounts:    agentCounts(u),
		Links:          &okta.LinksSelf{Self: &okta.Href{Href: fmt.Sprintf("%s/api/v1/agentPools/%s/updates/%s", s.baseURL(r), u.PoolID, u.ID)}},
	}
	if sc := u.Schedule; sc != nil {
		v.Schedule = &okta.AutoUpdateSchedule{Cron: sc.Cron, Timezone: sc.Timezone, Delay: sc.Delay, Duration: sc.Duration}
		if !sc.LastUpdated.IsZero() {
			t := sc.LastUpdated.UTC()
			v.Schedule.LastUpdated = &t
		}
		v.NextWindow = s.nextWindow(r.Context(), u, cat)
	}
	return v
}

// updateAgent renders one agent of an update; a is the pool's agent of
// that id, nil if the pool no longer has it.
func (s *Server) updateAgent(u *store.Update, ua *store.UpdateAgent, a *store.Agent, cat *catalog) okta.Agent {
	av := okta.Agent{ID: ua.AgentID, PoolID: u.PoolID, Type: u.AgentType}
	if a != nil {
		av = s.agentView(a, cat)
	}
	av.UpdateStatus = ua.Status
	av.UpdateMessage = ua.Message
	if ua.JobID != "" { // the host holds (or held) a job of this update
		progress := ua.Progress
		av.Progress, av.Phase = &progress, ua.Phase
		if !ua.DispatchedAt.IsZero() {
			at := ua.DispatchedAt.UTC()
			av.DispatchedAt = &at
		}
	}
	return av
}

// updateRender writes updates as JSON, byte for byte what encoding/json
// makes of the okta.AgentPoolUpdate updateView returns (Unix milliseconds
// for lastConnection when millis is set), without ever holding more than
// one agent's view and flushBytes of output.
type updateRender struct {
	s      *Server
	r      *http.Request
	cat    *catalog
	agents map[string]*store.Agent
	millis bool // lastConnection as Unix milliseconds (wantsEpochMillis)

	w   io.Writer
	buf []byte
	err error
}

func (s *Server) newUpdateRender(r *http.Request, agents map[string]*store.Agent) *updateRender {
	cat, _ := s.catalog(r.Context()) // nil on a store error: isLatestGAedVersion is left out
	return &updateRender{s: s, r: r, cat: cat, agents: agents, millis: wantsEpochMillis(r)}
}

// start directs the output to w.
func (ur *updateRender) start(w io.Writer) {
	ur.w, ur.err = w, nil
	if ur.buf == nil {
		ur.buf = make([]byte, 0, flushBytes+4096)
	}
	ur.buf = ur.buf[:0]
}

// flush writes what is buffered when it is over flushBytes, or all of it
// when force is set. After a write error (the client went away) nothing
// more is written.
func (ur *updateRender) flush(force bool) {
	if ur.err != nil {
		ur.buf = ur.buf[:0]
		return
	}
	if len(ur.buf) == 0 || (!force && len(ur.buf) < flushBytes) {
		return
	}
	_, ur.err = ur.w.Write(ur.buf)
	ur.buf = ur.buf[:0]
	if ur.err == nil && ur.r.Context().Err() != nil {
		ur.err = ur.r.Context().Err()
	}
}

// headJSON is an update without its agents array: the shallower Agents
// hides the embedded one, and omitempty leaves it out.
type headJSON struct {
	okta.AgentPoolUpdate
	Agents *struct{} `json:"agents,omitempty"`
}

// update writes one update with the agents sel selects.
func (ur *updateRender) update(u *store.Update, sel *agentSelection) {
	head, err := json.Marshal(headJSON{AgentPoolUpdate: ur.s.updateHead(ur.r, u, ur.cat)})
	if err != nil || len(head) < 2 || head[0] != '{' {
		// Cannot happen: every field of the head marshals.
		ur.err = fmt.Errorf("render update %s: %w", u.ID, err)
		return
	}
	if sel.q.none {
		ur.buf = append(ur.buf, head...)
		return
	}
	ur.buf = append(ur.buf, `{"agents":[`...)
	first := true
	for i := sel.from; i < sel.to && ur.err == nil; i++ {
		ua := &u.Agents[i]
		if !sel.includes(ua) {
			continue
		}
		if !first {
			ur.buf = append(ur.buf, ',')
		}
		first = false
		av := ur.s.updateAgent(u, ua, ur.agents[ua.AgentID], ur.cat)
		ur.buf = appendAgent(ur.buf, &av, ur.millis)
		ur.flush(false)
	}
	ur.buf = append(ur.buf, "],"...)
	if len(head) == 2 { // "{}": cannot happen (enabled, id, ... are always there)
		ur.buf = ur.buf[:len(ur.buf)-1]
	}
	ur.buf = append(ur.buf, head[1:]...)
}

// writeTagged sends a 200 reply that render writes, with its ETag. A reply
// of at most bufferedAgents agents goes through withETag, which buffers it
// and tags it with a hash of the body, as every GET. A bigger one is
// rendered twice, both times straight from the same loaded update and
// agents: first into a hash, for a weak ETag set before the body (or a
// 304), then to the client. Between the two renderings only the clock and
// last-seen times move, which can make the tag describe an older body:
// that costs a poller at most one extra 200, never a stale 304.
//
// An error is returned only when nothing was written yet.
func (s *Server) writeTagged(w http.ResponseWriter, r *http.Request, agents int, render func(*updateRender), ur *updateRender) error {
	h := w.Header()
	h.Add("Vary", "User-Agent")
	h.Set("Content-Type", "application/json")
	if agents > bufferedAgents {
		sum := sha256.New()
		ur.start(sum)
		render(ur)
		ur.flush(true)
		if ur.err != nil {
			return ur.err
		}
		tag := weakTag(sum)
		h.Set("ETag", "W/"+tag)
		h.Set("Cache-Control", "no-cache")
		if etagMatches(r.Header.Get("If-None-Match"), tag) {
			h.Del("Content-Type")
			w.WriteHeader(http.StatusNotModified)
			return nil
		}
	}
	w.WriteHeader(http.StatusOK)
	ur.start(w)
	render(ur)
	ur.buf = append(ur.buf, '\n')
	ur.flush(true)
	if ur.err != nil {
		// The status is sent: all that is left is to stop (the client
		// went away, or the request was cancelled).
		s.log.Debug("write update reply", zap.String("path", r.URL.Path), zap.Error(ur.err))
	}
	return nil
}

func weakTag(sum hash.Hash) string {
	return `"` + base64.RawURLEncoding.EncodeToString(sum.Sum(nil)[:18]) + `"`
}

// getUpdate serves GET /api/v1/agentPools/{poolId}/updates/{updateId}.
func (s *Server) getUpdate(w http.ResponseWriter, r *http.Request) error {
	p, err := s.getPool(r)
	if err != nil {
		return err
	}
	q, err := parseAgentsQuery(r.URL.Query(), true)
	if err != nil {
		return err
	}
	if q.none {
		if done, err := s.getUpdateSummary(w, r, p); done || err != nil {
			return err
		}
	}
	u, err := s.getPathUpdate(r, p)
	if err != nil {
		return err
	}
	var agents map[string]*store.Agent
	if needsAgents(u) {
		var list []*store.Agent
		if agents, list, err = s.poolAgents(r, p.ID); err != nil {
			return err
		}
		completeAgents(u, list)
	}
	sel, err := selectAgents(u, q)
	if err != nil {
		return err
	}
	if sel.n > 0 && agents == nil {
		if agents, _, err = s.poolAgents(r, p.ID); err != nil {
			return err
		}
	}
	if q.paged() {
		s.pageLinks(w, r, u, &sel)
	}
	return s.writeTagged(w, r, sel.n, func(ur *updateRender) { ur.update(u, &sel) }, s.newUpdateRender(r, agents))
}

// pageLinks sets the Link headers of a page of an update's agents: self,
// and next while more agents match, in the style of the pools list.
func (s *Server) pageLinks(w http.ResponseWriter, r *http.Request, u *store.Update, sel *agentSelection) {
	path := fmt.Sprintf("%s/api/v1/agentPools/%s/updates/%s", s.baseURL(r), u.PoolID, u.ID)
	self := path
	if r.URL.RawQuery != "" {
		self += "?" + r.URL.RawQuery
	}
	w.Header().Add("Link", fmt.Sprintf(`<%s>; rel="self"`, self))
	if !sel.more {
		return
	}
	nq := url.Values{}
	if v := r.URL.Query()["agentStatus"]; len(v) > 0 {
		nq.Set("agentStatus", strings.Join(v, ","))
	}
	nq.Set("limit", strconv.Itoa(sel.q.limit))
	nq.Set("after", sel.lastID(u))
	w.Header().Add("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, path, nq.Encode()))
}

// listUpdates writes the updates of pool p (GET /api/v1/agentPools/{poolId}/updates).
func (s *Server) listUpdates(w http.ResponseWriter, r *http.Request, p *store.Pool, scheduled *bool) error {
	q, err := parseAgentsQuery(r.URL.Query(), false)
	if err != nil {
		return err
	}
	updates, err := s.store.ListUpdates(r.Context(), p.ID, scheduled)
	if err != nil {
		return err
	}
	var agents map[string]*store.Agent
	if slices.ContainsFunc(updates, needsAgents) {
		var list []*store.Agent
		if agents, list, err = s.poolAgents(r, p.ID); err != nil {
			return err
		}
		for _, u := range updates {
			completeAgents(u, list)
		}
	}
	sels := make([]agentSelection, len(updates))
	total := 0
	for i, u := range updates {
		if sels[i], err = selectAgents(u, q); err != nil {
			return err
		}
		total += sels[i].n
	}
	if total > 0 && agents == nil {
		if agents, _, err = s.poolAgents(r, p.ID); err != nil {
			return err
		}
	}
	return s.writeTagged(w, r, total, func(ur *updateRender) {
		ur.buf = append(ur.buf, '[')
		for i, u := range updates {
			if i > 0 {
				ur.buf = append(ur.buf, ',')
			}
			ur.update(u, &sels[i])
			ur.flush(false)
		}
		ur.buf = append(ur.buf, ']')
	}, s.newUpdateRender(r, agents))
}

// appendAgent appends a's JSON, the bytes encoding/json makes of it (with
// lastConnection in Unix milliseconds when millis is set), without
// reflection or allocation in the common case. TestAppendAgentMatchesJSON
// holds it to encoding/json for every field of okta.Agent.
func appendAgent(b []byte, a *okta.Agent, millis bool) []byte {
	b = append(b, '{')
	n := len(b)
	str := func(name, v string) {
		if v != "" {
			b = appendKey(b, n, name)
			b = appendString(b, v)
		}
	}
	boolp := func(name string, v *bool) {
		if v != nil {
			b = appendKey(b, n, name)
			b = strconv.AppendBool(b, *v)
		}
	}
	str("id", a.ID)
	boolp("isHidden", a.IsHidden)
	boolp("isLatestGAedVersion", a.IsLatestGAedVersion)
	if t := a.LastConnection; t != nil {
		b = appendKey(b, n, "lastConnection")
		if millis {
			b = strconv.AppendInt(b, t.UnixMilli(), 10)
		} else {
			b = appendTime(b, *t)
		}
	}
	str("name", a.Name)
	str("operationalStatus", string(a.OperationalStatus))
	str("operationalMessage", a.OperationalMessage)
	str("poolId", a.PoolID)
	str("type", string(a.Type))
	str("updateMessage", a.UpdateMessage)
	str("updateStatus", string(a.UpdateStatus))
	str("version", a.Version)
	if a.Links != nil {
		b = appendKey(b, n, "_links")
		b = appendMarshal(b, a.Links)
	}
	if a.Progress != nil {
		b = appendKey(b, n, "progress")
		b = strconv.AppendInt(b, int64(*a.Progress), 10)
	}
	str("phase", a.Phase)
	if t := a.DispatchedAt; t != nil { // an extension: RFC 3339 in every dialect
		b = appendKey(b, n, "dispatchedAt")
		b = appendTime(b, *t)
	}
	if f := a.ClockSkewSeconds; f != nil && !math.IsNaN(*f) && !math.IsInf(*f, 0) {
		b = appendKey(b, n, "clockSkewSeconds")
		b = appendFloat(b, *f)
	}
	str("reportedType", a.ReportedType)
	return append(b, '}')
}

// appendTime appends t as encoding/json does (RFC 3339 with nanoseconds).
func appendTime(b []byte, t time.Time) []byte {
	if y := t.Year(); y < 0 || y > 9999 {
		return appendMarshal(b, t)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, "2006-01-02T15:04:05.999999999Z07:00")
	return append(b, '"')
}

// appendKey appends `"name":`, after a comma unless it is the object's
// first key (the object's fields start at b[n:]).
func appendKey(b []byte, n int, name string) []byte {
	if len(b) > n {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

// appendString appends s as a JSON string. Plain printable ASCII is
// copied; anything encoding/json escapes (quotes, backslashes, control
// characters, <, >, &, U+2028, U+2029, invalid UTF-8) goes through it.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return appendMarshal(b, s)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendFloat formats f as encoding/json does.
func appendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' { // e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendMarshal appends encoding/json's rendering of v (the rare cases).
func appendMarshal(b []byte, v any) []byte {
	out, err := json.Marshal(v)
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, out...)
}

// replyQuery reads the query of a request that writes an update (create,
// modify, a lifecycle action): only agents=none applies to its reply.
// Read before anything is written, so a bad parameter changes nothing.
func replyQuery(r *http.Request) (agentsQuery, error) {
	return parseAgentsQuery(r.URL.Query(), false)
}

// writeUpdate sends one update, streamed like a GET (the replies of
// create, modify and the lifecycle actions: an update of 300,000 agents is
// never held as one value): every agent, or with agents=none (q) the
// update's fields and agentCounts alone.
func (s *Server) writeUpdate(w http.ResponseWriter, r *http.Request, status int, u *store.Update, agents map[string]*store.Agent, q agentsQuery) {
	sel, err := selectAgents(u, q)
	if err != nil { // cannot happen: neither query selects by cursor
		writeJSON(w, status, forClient(w, r, s.updateView(r, u, agents)))
		return
	}
	h := w.Header()
	h.Add("Vary", "User-Agent")
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	ur := s.newUpdateRender(r, agents)
	ur.start(w)
	ur.update(u, &sel)
	ur.buf = append(ur.buf, '\n')
	ur.flush(true)
	if ur.err != nil {
		s.log.Debug("write update reply", zap.String("path", r.URL.Path), zap.Error(ur.err))
	}
}

// getUpdateSummary answers GET of one big active update with agents=none
// from its header and the rollout engine's counts (as of its last tick),
// without reading the update's rows: a dashboard or script polling a
// 300,000-agent rollout costs one row a poll. It reports false for an
// update the engine does not hold or of at most bufferedAgents agents
// (read whole: counts exact to the last write).
func (s *Server) getUpdateSummary(w http.ResponseWriter, r *http.Request, p *store.Pool) (bool, error) {
	head, err := s.store.GetUpdateHeader(r.Context(), p.ID, r.PathValue("updateId"))
	if err != nil {
		return true, updateErr(r, err)
	}
	sum, ok := s.engine.Summary(head.ID)
	if !ok || sum.Total <= bufferedAgents {
		return false, nil
	}
	s.writeUpdateCounts(w, r, http.StatusOK, head, sum.Counts, sum.Total)
	return true, nil
}

// writeUpdateCounts answers with an update's fields and the given counts
// of its total agents (agents=none), for an update whose rows are not at
// hand.
func (s *Server) writeUpdateCounts(w http.ResponseWriter, r *http.Request, status int, head *store.Update,
	counts map[okta.AgentUpdateInstanceStatus]int, total int) {
	cat, _ := s.catalog(r.Context())
	v := s.updateHead(r, head, cat)
	for st, n := range counts {
		v.AgentCounts[st] = n
	}
	v.Rollout = rolloutViewN(head, total)
	w.Header().Add("Vary", "User-Agent")
	writeJSON(w, status, headJSON{AgentPoolUpdate: v})
}
