package controlplane

import (
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/controlplane/rollout"
	"github.com/poolagent/poolagent/controlplane/schedule"
	"github.com/poolagent/poolagent/controlplane/store"
	"go.uber.org/zap"
)

// authError is a failed client authentication (a 401), as opposed to a
// store failure (a 500).
type authError string

func (e authError) Error() string { return string(e) }

// authedClient is what the client cache keeps of an authenticated client,
// and what authClient returns: the identity that never changes once the
// client is enrolled, with its secret hash inline. Kept by value in the
// cache, it costs about 70 bytes a host, where a whole store.Client with
// its hash slice cost about 320 on top of the cache's own entry.
type authedClient struct {
	ID, PoolID string
	secretHash [32]byte // a SHA-256 (HashSecret)
}

// authClient authenticates a managed client by its Bearer secret.
func (s *Server) authClient(r *http.Request) (authedClient, error) {
	cred, ok := bearer(r)
	if !ok {
		return authedClient{}, authError("no Authorization: Bearer <client secret> header")
	}
	hash := HashSecret(cred)
	key := [32]byte(hash)
	cc, hit := s.clients.get(key)
	if !hit {
		c, err := s.store.ClientBySecret(r.Context(), hash)
		if errors.Is(err, store.ErrNotFound) {
			return authedClient{}, authError("the client secret is not valid")
		}
		if err != nil {
			return authedClient{}, fmt.Errorf("look up client: %w", err)
		}
		if len(c.SecretHash) != len(cc.secretHash) {
			return authedClient{}, authError("the client secret is not valid")
		}
		// Only the identity: the rest changes with every report.
		cc = authedClient{ID: c.ID, PoolID: c.PoolID, secretHash: [32]byte(c.SecretHash)}
		s.clients.put(key, cc)
	}
	if subtle.ConstantTimeCompare(cc.secretHash[:], hash) != 1 {
		return authedClient{}, authError("the client secret is not valid")
	}
	return cc, nil
}

// clientStatusToOperational maps a client's reported status to the
// operationalStatus of its agents (when heard from recently).
func clientStatusToOperational(s sailpoint.ClientStatus) okta.OperationalStatus {
	switch s {
	case sailpoint.StatusNormal:
		return okta.OperationalStatusOperational
	case sailpoint.StatusError, sailpoint.StatusFailed:
		return okta.OperationalStatusDisrupted
	}
	return okta.OperationalStatusDegraded
}

// agentOperational is one agent's operationalStatus and the reason for it
// (operationalMessage): the host's status, op, unless the host watches the
// agent's health (health, extension): then, on a host that reports NORMAL
// or WARNING (a WARNING may be another agent's failing watch), the agent's
// own health decides: OPERATIONAL, or DEGRADED with the watch's reason.
func agentOperational(host sailpoint.ClientStatus, op okta.OperationalStatus, health *sailpoint.AgentHealth) (okta.OperationalStatus, string) {
	if health == nil {
		return op, ""
	}
	msg := ""
	if !health.OK {
		msg = truncate(cmp.Or(health.Reason, "the host's health check of the agent failed"), 1024)
	}
	if host != sailpoint.StatusNormal && host != sailpoint.StatusWarning {
		return op, msg
	}
	if health.OK {
		return okta.OperationalStatusOperational, ""
	}
	return okta.OperationalStatusDegraded, msg
}

// jobStateToInstance maps a host's job report to the agent's updateStatus.
// A RUNNING job past the swap reports updateStatus PendingCompletion.
func jobStateToInstance(j sailpoint.JobReport) okta.AgentUpdateInstanceStatus {
	switch j.State {
	case sailpoint.JobRunning:
		if okta.AgentUpdateInstanceStatus(j.UpdateStatus) == okta.InstancePendingCompletion {
			return okta.InstancePendingCompletion
		}
		return okta.InstanceInProgress
	case sailpoint.JobFinished:
		return okta.InstanceSuccess
	case sailpoint.JobFailed:
		return okta.InstanceFailed
	case sailpoint.JobCancelled:
		return okta.InstanceCancelled
	}
	return "" // PENDING: nothing to record but progress
}

// finishedJob reports whether a heartbeat ends a job.
func finishedJob(jobs []store.JobReport) bool {
	for _, j := range jobs {
		switch j.Status {
		case okta.InstanceSuccess, okta.InstanceFailed, okta.InstanceCancelled:
			return true
		}
	}
	return false
}

// hostFacts is what poolserver keeps of a host's report (clients.facts).
type hostFacts struct {
	Hostname        string                  `json:"hostname,omitempty"`
	InternalIP      string                  `json:"internal_ip,omitempty"`
	OSType          string                  `json:"os_type,omitempty"`
	OSVersion       string                  `json:"os_version,omitempty"`
	Hypervisor      string                  `json:"hypervisor,omitempty"`
	PlatformVersion string                  `json:"platform_version,omitempty"`
	VAVersion       string                  `json:"va_version,omitempty"`
	Product         string                  `json:"product,omitempty"`
	Uptime          string                  `json:"uptime,omitempty"`
	Agents          []sailpoint.AgentReport `json:"agents,omitempty"`
}

// handleHeartbeat serves POST /beta/managed-clients/{clientId}/status.
func (s *Server) handleHeartbeat(w http.ResponseWriter, r *http.Request) {
	if s.cfg.ClientCA != "" && (r.TLS == nil || len(r.TLS.VerifiedChains) == 0) {
		// client_ca: a certificate signed by it, besides the secret.
		spUnauthorized(w, "a client certificate signed by the server's client_ca is required")
		return
	}
	c, err := s.authClient(r)
	if err != nil {
		var ae authError
		if !errors.As(err, &ae) {
			s.log.Error("authenticate client", zap.Error(err))
			spInternal(w)
			return
		}
		q := s.ipLimiter.take(clientAddr(r))
		if !q.Allowed {
			s.rateLimited(w, q)
			return
		}
		spUnauthorized(w, err.Error())
		return
	}
	q := s.hbLimiter.take(c.ID)
	if !q.Allowed {
		s.rateLimited(w, q)
		return
	}
	if id := r.PathValue("clientId"); id != c.ID {
		if _, err := s.store.GetClient(r.Context(), id); errors.Is(err, store.ErrNotFound) {
			spNotFound(w, "no managed client "+id)
			return
		}
		spForbidden(w, "a client may post only its own status (authenticated as "+c.ID+")")
		return
	}
	var req sailpoint.StatusRequest
	if oerr := s.readHeartbeat(r, &req); oerr != nil {
		spBadRequest(w, oerr.causes...)
		return
	}
	now := s.clock.Now().UTC()
	if causes := validateHeartbeat(&req); len(causes) > 0 {
		spBadRequest(w, causes...)
		return
	}
	hb, fingerprint, facts := s.heartbeatWrite(r.Context(), c, &req, now)
	if changed := s.hbState.changed(c.ID, fingerprint); changed != 0 {
		if changed&changedFacts != 0 {
			hb.Facts = facts()
		}
		if changed&changedAgents == 0 {
			hb.Agents = nil
		}
		if changed&changedJobs == 0 {
			hb.Jobs = nil
		}
		if err := s.writer.write(r.Context(), hb); err != nil {
			s.hbState.forget(c.ID)
			s.log.Error("write heartbeat", zap.String("client", c.ID), zap.Error(err))
			spInternal(w)
			return
		}
		s.seen.wrote(c.ID, now)
		if finishedJob(hb.Jobs) {
			s.engine.Kick() // a finished job may free a slot or end the update
		}
	} else {
		s.seen.mark(c.ID, now)
	}
	s.engine.Heard(c.ID, now)
	warnings := s.noteHeartbeat(c.ID, c.PoolID, hostName(&req.Body, c.ID), &req, now)
	reply := s.heartbeatReply(r, c, &req, now, warnings)
	writeStatusReply(w, &reply)
}

// bodyBufs recycles the buffers heartbeat bodies are read into (the
// decoded request shares no memory with its body).
var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// readHeartbeat reads and decodes a heartbeat's body.
func (s *Server) readHeartbeat(r *http.Request, req *sailpoint.StatusRequest) *oktaError {
	bp := bodyBufs.Get().(*[]byte)
	raw, oerr := readBodyInto(r, *bp)
	if oerr == nil {
		oerr = decodeStatusRequest(raw, req)
	}
	if cap(raw) <= 64<<10 {
		*bp = raw[:0]
	}
	bodyBufs.Put(bp)
	return oerr
}

func (s *Server) rateLimited(w http.ResponseWriter, q quota) {
	s.metrics.rateLimited.WithLabelValues("heartbeat").Inc()
	w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(q, s.clock.Now())))
	writeJSON(w, http.StatusTooManyRequests, sailpoint.RateLimitError{Message: "Rate Limit Exceeded"})
}

// validateHeartbeat lists what is wrong with a heartbeat.
// Any well-formed timestamp is taken, however far from the server's clock
// (SailPoint's API takes its own example, dated 2020): the skew is
// recorded, not judged.
func validateHeartbeat(req *sailpoint.StatusRequest) []string {
	var causes []string
	if req.Status == "" {
		causes = append(causes, "status: is required, one of NORMAL, UNDEFINED, NOT_CONFIGURED, CONFIGURING, WARNING, ERROR, FAILED")
	} else if !req.Status.Valid() {
		causes = append(causes, fmt.Sprintf("status: unknown value %q; want one of NORMAL, UNDEFINED, NOT_CONFIGURED, CONFIGURING, WARNING, ERROR, FAILED", req.Status))
	}
	if req.Type != nil && *req.Type != "" && !req.Type.Valid() {
		causes = append(causes, fmt.Sprintf("type: unknown value %q; want CCG, VA, INTERNAL, IIQ_HARVESTER or null", *req.Type))
	}
	if req.Timestamp != "" {
		if _, err := time.Parse(time.RFC3339Nano, req.Timestamp); err != nil {
			causes = append(causes, fmt.Sprintf("timestamp: %q is not an RFC 3339 date-time", req.Timestamp))
		}
	}
	if tz := req.Body.Timezone; len(tz) > schedule.MaxZoneNameLen || strings.ContainsFunc(string(tz), func(r rune) bool { return r <= ' ' || r > '~' }) {
		causes = append(causes, fmt.Sprintf("body.timezone: must be an IANA time zone name such as \"Europe/Paris\" (printable ASCII, at most %d bytes)", schedule.MaxZoneNameLen))
	}
	if len(req.Body.Agents) > 256 || len(req.Body.Jobs) > 256 {
		causes = append(causes, "body: at most 256 agents and 256 jobs per heartbeat")
	}
	for i, a := range req.Body.Agents {
		if a.Name == "" || len(a.Name) > 128 {
			causes = append(causes, fmt.Sprintf("body.agents[%d].name: is required (at most 128 bytes)", i))
		}
		if msg := checkVersion(a.Version); a.Version != "" && msg != "" {
			causes = append(causes, fmt.Sprintf("body.agents[%d].version: %s", i, msg))
		}
	}
	for i, j := range req.Body.Jobs {
		if j.UUID == "" {
			causes = append(causes, fmt.Sprintf("body.jobs[%d].uuid: is required", i))
		}
		if !j.State.Valid() {
			causes = append(causes, fmt.Sprintf("body.jobs[%d].state: unknown value %q; want PENDING, RUNNING, FINISHED, FAILED or CANCELLED", i, j.State))
		}
		if j.Progress < 0 || j.Progress > 100 {
			causes = append(causes, fmt.Sprintf("body.jobs[%d].progress: must be 0-100, got %d", i, j.Progress))
		}
		if s := okta.AgentUpdateInstanceStatus(j.UpdateStatus); s != "" && !s.Valid() {
			causes = append(causes, fmt.Sprintf("body.jobs[%d].updateStatus: unknown value %q", i, j.UpdateStatus))
		}
	}
	return causes
}

// heartbeatWrite turns a heartbeat into the store write and a fingerprint
// of everything in it but the time, to tell a change from a keep-alive.
// The facts' JSON comes from the returned function, called only for a
// heartbeat that changed something.
func (s *Server) heartbeatWrite(ctx context.Context, c authedClient, req *sailpoint.StatusRequest, now time.Time) (store.Heartbeat, hbPrint, func() string) {
	b := &req.Body
	facts := hostFacts{
		Hostname: string(b.Hostname), InternalIP: string(b.InternalIP), OSType: string(b.OSType), OSVersion: string(b.OSVersion),
		Hypervisor: string(b.Hypervisor), PlatformVersion: string(b.PlatformVersion), VAVersion: string(b.VAVersion),
		Product: string(b.Product), Agents: b.Agents,
	}
	typ := ""
	if req.Type != nil {
		typ = string(*req.Type)
	}
	hb := store.Heartbeat{
		ClientID: c.ID, PoolID: c.PoolID, Seen: now,
		Type: typ, Hostname: string(b.Hostname), Status: string(req.Status), OS: string(b.OS), Arch: string(b.Arch),
		AgentVersion: string(b.AgentVersion), Timezone: string(b.Timezone),
	}
	poolType := s.poolType(c.PoolID)
	var ofType int
	for _, a := range b.Agents {
		if okta.AgentType(a.Type) == poolType {
			ofType++
		}
	}
	host := hostName(b, c.ID)
	op := clientStatusToOperational(req.Status)
	for _, a := range b.Agents {
		if okta.AgentType(a.Type) != poolType {
			continue // another program on the host: kept in facts only
		}
		name := host
		if ofType > 1 {
			name = host + "/" + a.Name
		}
		st, msg := agentOperational(req.Status, op, a.Health)
		hb.Agents = append(hb.Agents, store.AgentSeen{AgentName: a.Name, Name: name, Type: poolType, Version: a.Version, Status: st, Message: msg})
	}
	for _, j := range b.Jobs {
		if strings.HasPrefix(j.UUID, rollout.SelfJobPrefix) {
			s.metrics.jobReported(j)
			s.engine.SelfReport(c.ID, j) // self-updates are not update_agents rows
			continue
		}
		if !s.engine.Owns(ctx, c.ID, j.UUID) {
			continue // not this client's job, or no longer current
		}
		s.metrics.jobReported(j)
		jr := store.JobReport{JobID: j.UUID, Status: jobStateToInstance(j), Message: truncate(j.UpdateMessage, 1024),
			Progress: j.Progress, Phase: truncate(j.Phase, 64)}
		if d := j.Diagnostics; d != nil && jr.Status != "" {
			b, _ := json.Marshal(sailpoint.Diagnostics{Output: tail(d.Output, sailpoint.MaxDiagnosticsOutput), Health: truncate(d.Health, 4096)})
			jr.Diagnostics = string(b)
		}
		hb.Jobs = append(hb.Jobs, jr)
	}
	// The fingerprints hash the fields themselves: an unchanged
	// heartbeat (the steady state) marshals nothing. Facts, agents and
	// jobs are told apart, so a job report does not rewrite the host's
	// facts (a few KiB) nor its agents.
	var fp hbPrint
	h := fnv.New64a()
	field := func(v string) { h.Write([]byte(v)); h.Write([]byte{0}) }
	for _, v := range []string{facts.Hostname, facts.InternalIP, facts.OSType, facts.OSVersion, facts.Hypervisor, facts.PlatformVersion,
		facts.VAVersion, facts.Product, typ, string(req.Status), string(b.OS), string(b.Arch), string(b.AgentVersion), string(b.Timezone)} {
		field(v)
	}
	for _, a := range b.Agents { // the facts keep every agent's report
		field(a.Name)
		field(a.Type)
		field(a.Version)
		field(a.UpdateStatus)
		field(a.UpdateMessage)
		if h := a.Health; h != nil {
			// Not checkedAt: a watch that finds nothing new writes
			// nothing.
			field(strconv.FormatBool(h.OK))
			field(h.Reason)
			if h.Restarts != nil {
				field(strconv.Itoa(*h.Restarts))
			}
		}
	}
	fp[0] = h.Sum64()
	h.Reset()
	field(string(req.Status)) // the agents' operationalStatus
	for _, a := range hb.Agents {
		field(a.AgentName)
		field(a.Name)
		field(a.Version)
		field(string(a.Status))
		field(a.Message)
	}
	fp[1] = h.Sum64()
	h.Reset()
	for _, j := range hb.Jobs {
		field(j.JobID)
		field(string(j.Status))
		field(strconv.Itoa(j.Progress))
		field(j.Phase)
		field(j.Message)
	}
	fp[2] = h.Sum64()
	return hb, fp, func() string { fj, _ := json.Marshal(facts); return string(fj) }
}

// tail keeps the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// poolType returns the agent type of a pool (cached: pools never change type).
func (s *Server) poolType(poolID string) okta.AgentType {
	s.poolTypesMu.Lock()
	t, ok := s.poolTypes[poolID]
	s.poolTypesMu.Unlock()
	if ok {
		return t
	}
	p, err := s.store.GetPool(context.Background(), poolID)
	if err != nil {
		return ""
	}
	s.poolTypesMu.Lock()
	s.poolTypes[poolID] = p.Type
	s.poolTypesMu.Unlock()
	return p.Type
}

// heartbeatReply builds the ManagedClientStatus answer: this client's jobs,
// CANCELLED for jobs the host still runs that are no longer wanted, the
// maintenance window of the first job, every other field of the seed's
// response (empty where poolserver has nothing to say) and the warnings.
func (s *Server) heartbeatReply(r *http.Request, c authedClient, req *sailpoint.StatusRequest, now time.Time, warnings []string) sailpoint.StatusReply {
	// reported and current stay nil (no allocation) for the heartbeats
	// that report no job: nearly all of them.
	var reported map[string]sailpoint.JobState
	var current map[string]bool
	if len(req.Body.Jobs) > 0 {
		reported, current = make(map[string]sailpoint.JobState, len(req.Body.Jobs)), map[string]bool{}
		for _, j := range req.Body.Jobs {
			reported[j.UUID] = j.State
		}
	}
	base := s.baseURL(r)
	var mirrors []string
	mirrorsRead := false
	jobs := []sailpoint.Job{}
	for _, j := range s.engine.JobsFor(c.ID, now, req.Body.Agents...) {
		if current != nil {
			current[j.UUID] = true
		}
		if st, ok := reported[j.UUID]; ok && st.Terminal() {
			continue
		}
		j.ExpiresAt = now.Add(s.cfg.Rollout.JobTTL.Duration)
		// JobsFor's maps are this call's own: the URLs are completed in
		// place.
		mpc := j.ManagedProcessConfiguration
		for name, mp := range mpc {
			if mp.Artifact != nil {
				a := *mp.Artifact
				a.URL = base + a.URL
				if a.Patch != nil {
					p := *a.Patch
					p.URL = base + p.URL
					a.Patch = &p
				}
				if !mirrorsRead {
					mirrors, mirrorsRead = s.poolMirrors(r.Context(), c.PoolID), true
				}
				a.Mirrors = s.artifactSources(r.Context(), mirrors, a.SHA256, now)
				mp.Artifact = &a
			}
			mpc[name] = mp
		}
		if j.Maintenance != nil {
			m := *j.Maintenance
			m.WindowClusterTime = now.Format(time.RFC3339)
			if m.WindowFinishTime == "" { // flow 2: open until the job is done
				m.WindowFinishTime = now.Add(24 * time.Hour).Format(time.RFC3339)
			}
			j.Maintenance = &m
		}
		jobs = append(jobs, j)
	}
	for _, rj := range req.Body.Jobs {
		if !rj.State.Terminal() && !current[rj.UUID] {
			jobs = append(jobs, sailpoint.Job{UUID: rj.UUID, Cookbook: rj.UUID, State: sailpoint.JobCancelled, Type: sailpoint.JobTypeUpgrade,
				TargetID: c.ID, ManagedProcessConfiguration: map[string]sailpoint.ManagedProcess{}, ExpiresAt: now.Add(s.cfg.Rollout.JobTTL.Duration)})
		}
	}
	scheduled, cookbook := "false", ""
	for _, j := range jobs {
		if j.State != sailpoint.JobCancelled {
			scheduled, cookbook = "true", j.Cookbook
			break
		}
	}
	if warnings == nil {
		warnings = []string{}
	}
	hint := ""
	if len(jobs) == 0 && s.engine.Soon(c.PoolID) {
		// A job for this host may be seconds away: come back then, not
		// an interval later.
		if d := rollout.NextHeartbeat(s.cfg.Heartbeat.Interval.Duration); d > 0 {
			hint = strconv.Itoa(int(d / time.Second))
		}
	}
	body := sailpoint.ReplyBody{
		ID: c.ID, ClientID: c.ID, ClusterID: c.PoolID, ClusterJobCount: len(jobs), Jobs: jobs,
		Configuration:     s.replyConfiguration(c.PoolID, scheduled, cookbook, hint),
		ConnectorServices: []sailpoint.ConnectorService{},
		Queue:             &sailpoint.Queue{},
		Warnings:          warnings,
	}
	for _, j := range jobs {
		if j.Maintenance != nil {
			body.Maintenance = j.Maintenance
			break
		}
	}
	if body.Maintenance == nil {
		// No job, no window: closed, with the server's clock.
		body.Maintenance = &sailpoint.Maintenance{Window: "false", WindowClusterTime: now.Format(time.RFC3339)}
	}
	return sailpoint.StatusReply{Body: body, Status: req.Status, Type: req.Type, Timestamp: now}
}

// replyConfiguration is a heartbeat reply's configuration. The one of a
// reply with no job and no hint (nearly every heartbeat) depends only on
// the pool, so it is built once per pool and shared: replies only read it.
func (s *Server) replyConfiguration(poolID, scheduled, cookbook, hint string) map[string]string {
	idle := scheduled == "false" && cookbook == "" && hint == ""
	if idle {
		if m, ok := s.idleConfig.Load(poolID); ok {
			return m.(map[string]string)
		}
	}
	m := map[string]string{
		sailpoint.ConfigClusterType:       "", // no SailPoint cluster type: the hosts poll
		sailpoint.ConfigClusterExternalID: poolID,
		sailpoint.ConfigDebug:             "false",
		sailpoint.ConfigFailureThreshold:  "",
		sailpoint.ConfigGMTOffset:         "0", // every time in the reply is UTC
		sailpoint.ConfigScheduleUpgrade:   scheduled,
		sailpoint.ConfigVAVersion:         "",
		sailpoint.ConfigJobType:           sailpoint.JobTypeUpgrade,
		sailpoint.ConfigCookbook:          cookbook,
		sailpoint.ConfigHeartbeatInterval: strconv.Itoa(max(int(s.cfg.Heartbeat.Interval.Seconds()), 1)),
		sailpoint.ConfigPoolType:          string(s.poolType(poolID)),
	}
	if hint != "" {
		m[sailpoint.ConfigNextHeartbeat] = hint
	}
	if idle && m[sailpoint.ConfigPoolType] != "" {
		// A pool not yet known (no type) is not cached: it may be a
		// moment from being read.
		s.idleConfig.Store(poolID, m)
	}
	return m
}

// hbWriter group-commits heartbeat writes: requests that arrive while a
// transaction runs are written together in the next one, and each caller
// returns only after its write is durable.
type hbWriter struct {
	st   store.Store
	m    *metrics
	log  *zap.Logger
	reqs chan hbReq
	done chan struct{}
	// When writes arrive together and back to back (the previous batch
	// held several and its commit ended less than linger ago), a batch
	// smaller than lingerBatch waits up to linger for more: a commit's own
	// cost (the revision, the pages every commit rewrites) is then shared
	// by more reports. storetest.BenchReports: 83 µs a report in batches
	// of 4, 51 µs in batches of 32. A write after a quiet spell, or one
	// host's writes one after the other, are never held.
	linger      time.Duration
	lingerBatch int
}

type hbReq struct {
	hb  store.Heartbeat
	err chan error
}

const maxBatch = 512

func newHBWriter(st store.Store, log *zap.Logger, m *metrics) *hbWriter {
	w := &hbWriter{st: st, log: log, m: m, reqs: make(chan hbReq, maxBatch), done: make(chan struct{}),
		linger: 2 * time.Millisecond, lingerBatch: 32}
	go w.loop()
	return w
}

func (w *hbWriter) write(ctx context.Context, hb store.Heartbeat) error {
	req := hbReq{hb: hb, err: make(chan error, 1)}
	select {
	case w.reqs <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.done:
		return errors.New("server is shutting down")
	}
	select {
	case err := <-req.err:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *hbWriter) loop() {
	batch := make([]hbReq, 0, maxBatch)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	var last time.Time // when the previous commit ended
	prev := 0          // and how many writes it held
	for {
		select {
		case req := <-w.reqs:
			batch = append(batch[:0], req)
		case <-w.done:
			return
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case req := <-w.reqs:
				batch = append(batch, req)
			default:
				break drain
			}
		}
		if len(batch) < w.lingerBatch && prev > 1 && time.Since(last) < w.linger {
			linger.Reset(w.linger)
		wait:
			for len(batch) < w.lingerBatch {
				select {
				case req := <-w.reqs:
					batch = append(batch, req)
				case <-linger.C:
					break wait
				case <-w.done:
					break wait
				}
			}
			linger.Stop()
		}
		hbs := make([]store.Heartbeat, len(batch))
		for i, r := range batch {
			hbs[i] = r.hb
		}
		start := time.Now()
		err := w.st.ApplyHeartbeats(context.Background(), hbs)
		w.m.observeStore("ApplyHeartbeats", start)
		if err != nil && len(batch) > 1 {
			// Isolate the bad write so one heartbeat cannot fail the others.
			for _, r := range batch {
				r.err <- w.st.ApplyHeartbeats(context.Background(), []store.Heartbeat{r.hb})
			}
		} else {
			for _, r := range batch {
				r.err <- err
			}
		}
		last, prev = time.Now(), len(batch)
	}
}

func (w *hbWriter) close() { close(w.done) }
