package controlplane

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"sort"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/controlplane/store"
)

// RolloutPolicy is an update's rollout extension (the update body's
// `rollout` object): a canary, waves, an error budget, splay and host-side
// limits. docs/rollout.md describes every rule.
type RolloutPolicy struct {
	// Canary is how many hosts go first, alone.
	Canary int `json:"canary,omitempty"`
	// Waves are cumulative percentages of the update's hosts after the
	// canary, e.g. [10, 50, 100]; the last is 100.
	Waves []int `json:"waves,omitempty"`
	// SoakMinutes is how long a finished wave must stay without failures
	// before the next one starts.
	SoakMinutes int `json:"soakMinutes,omitempty"`
	// ManualPromotion holds each finished wave (the update is Paused)
	// until an operator resumes it.
	ManualPromotion bool `json:"manualPromotion,omitempty"`
	// ErrorBudget: failures beyond it halt the update (Failed, nothing new
	// handed out), whatever continueOnError says; within it the update
	// goes on.
	ErrorBudget *ErrorBudget `json:"errorBudget,omitempty"`
	// SplayMinutes spreads the hosts' download starts over this long from
	// the window's start, deterministically per host.
	SplayMinutes int `json:"splayMinutes,omitempty"`
	// DownloadRateLimit bounds each host's download, in bytes per second.
	DownloadRateLimit int64 `json:"downloadRateLimit,omitempty"`
	// MinPoolagentVersion is the oldest poolagent that may run the job.
	MinPoolagentVersion string `json:"minPoolagentVersion,omitempty"`
}

// ErrorBudget is how many failures an update tolerates.
type ErrorBudget struct {
	// Count tolerates this many failed hosts.
	Count int `json:"count,omitempty"`
	// Percent tolerates failures up to this share of the update's hosts.
	Percent float64 `json:"percent,omitempty"`
}

// rolloutState is the engine's progress through the waves.
type rolloutState struct {
	Wave              int        `json:"wave"`
	WaveDoneAt        *time.Time `json:"waveDoneAt,omitempty"`
	AwaitingPromotion bool       `json:"awaitingPromotion,omitempty"`
	Halted            string     `json:"halted,omitempty"`
}

// rolloutDoc is what store.Update.Rollout holds.
type rolloutDoc struct {
	Policy *RolloutPolicy `json:"policy,omitempty"`
	State  rolloutState   `json:"state"`
}

func readRollout(u *store.Update) rolloutDoc {
	var d rolloutDoc
	if u.Rollout != "" {
		_ = json.Unmarshal([]byte(u.Rollout), &d) // written only by writeRollout
	}
	return d
}

func writeRollout(u *store.Update, d rolloutDoc) {
	if d.Policy == nil && d.State == (rolloutState{}) {
		u.Rollout = ""
		return
	}
	b, _ := json.Marshal(d)
	u.Rollout = string(b)
}

// validate lists what is wrong with a policy, for the API's errorCauses.
func (p *RolloutPolicy) validate() []string {
	var causes []string
	if p.Canary < 0 {
		causes = append(causes, "rollout.canary: must not be negative")
	}
	last := 0
	for i, w := range p.Waves {
		if w <= last || w > 100 {
			causes = append(causes, fmt.Sprintf("rollout.waves[%d]: percentages must rise from 1 to 100, got %d after %d", i, w, last))
			break
		}
		last = w
	}
	if len(p.Waves) > 0 && last != 100 {
		causes = append(causes, "rollout.waves: the last wave must be 100 (every host)")
	}
	if p.SoakMinutes < 0 || p.SoakMinutes > 7*24*60 {
		causes = append(causes, "rollout.soakMinutes: must be from 0 to 10080")
	}
	if p.SplayMinutes < 0 || p.SplayMinutes > 7*24*60 {
		causes = append(causes, "rollout.splayMinutes: must be from 0 to 10080")
	}
	if p.DownloadRateLimit < 0 {
		causes = append(causes, "rollout.downloadRateLimit: must not be negative")
	}
	if b := p.ErrorBudget; b != nil && (b.Count < 0 || b.Percent < 0 || b.Percent > 100) {
		causes = append(causes, "rollout.errorBudget: count must not be negative and percent must be from 0 to 100")
	}
	if p.MinPoolagentVersion != "" {
		if msg := checkVersion(p.MinPoolagentVersion); msg != "" {
			causes = append(causes, "rollout.minPoolagentVersion: "+msg)
		}
	}
	return causes
}

// parseRolloutPolicy decodes the update body's rollout object.
func parseRolloutPolicy(raw json.RawMessage) (*RolloutPolicy, []string, error) {
	if string(raw) == "null" {
		return nil, nil, nil
	}
	var p RolloutPolicy
	if err := json.Unmarshal(raw, &p); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			return nil, []string{fmt.Sprintf("rollout.%s: expected %s, got JSON %s", typ.Field, typ.Type, typ.Value)}, nil
		}
		return nil, []string{"rollout: must be a JSON object"}, nil
	}
	return &p, p.validate(), nil
}

// stableRank orders an update's agents for wave assignment: a hash of the
// update and agent ids, so the order survives restarts and is the same on
// every replica.
func stableRank(updateID, agentID string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(updateID))
	h.Write([]byte{0})
	h.Write([]byte(agentID))
	return h.Sum64()
}

// waveOf assigns every agent of u to a wave: 0 is the canary (if any),
// then one wave per percentage. Without waves or a canary, all are wave 0.
func waveOf(u *store.Update, p *RolloutPolicy) (map[string]int, int) {
	waves := make(map[string]int, len(u.Agents))
	if p == nil || (p.Canary == 0 && len(p.Waves) == 0) {
		for _, ua := range u.Agents {
			waves[ua.AgentID] = 0
		}
		return waves, 0
	}
	ids := make([]string, len(u.Agents))
	for i, ua := range u.Agents {
		ids[i] = ua.AgentID
	}
	sort.Slice(ids, func(i, j int) bool { return stableRank(u.ID, ids[i]) < stableRank(u.ID, ids[j]) })
	n := len(ids)
	var bounds []int // exclusive end index of each wave
	canary := min(p.Canary, n)
	if canary > 0 {
		bounds = append(bounds, canary)
	}
	rest := n - canary
	for _, pct := range p.Waves {
		end := canary + (rest*pct+99)/100
		if len(bounds) == 0 || end > bounds[len(bounds)-1] {
			bounds = append(bounds, end)
		}
	}
	if len(bounds) == 0 || bounds[len(bounds)-1] < n {
		bounds = append(bounds, n)
	}
	w := 0
	for i, id := range ids {
		for i >= bounds[w] {
			w++
		}
		waves[id] = w
	}
	return waves, len(bounds) - 1
}

// allowedFailures is how many failed hosts the budget tolerates.
func allowedFailures(b *ErrorBudget, total int) int {
	allowed := b.Count
	if b.Percent > 0 {
		allowed = max(allowed, int(b.Percent*float64(total)/100))
	}
	return allowed
}

// budgetExceeded reports whether failed hosts exceed the error budget.
func budgetExceeded(b *ErrorBudget, failed, total int) (bool, string) {
	if b == nil {
		return false, ""
	}
	allowed := allowedFailures(b, total)
	if failed > allowed {
		return true, fmt.Sprintf("ERROR_BUDGET: %d of %d hosts failed; the budget tolerates %d", failed, total, allowed)
	}
	return false, ""
}

// splayOffset is an agent's deterministic delay within the splay.
func splayOffset(updateID, agentID string, splay time.Duration) time.Duration {
	if splay <= 0 {
		return 0
	}
	return time.Duration(stableRank(updateID, agentID) % uint64(splay))
}

// poolHealth is what the availability guard knows of a pool.
type poolHealth struct {
	size, operational, unhealthy, disconnected int
}

// guard checks the pool's availability rules; it returns why no agent of
// the pool may start now, or "".
func guard(p *store.Pool, h poolHealth) string {
	need := min(p.Settings.MinOperational, h.size)
	if h.operational < need {
		return fmt.Sprintf("waiting: %d of %d agents are OPERATIONAL; the pool needs %d before an update starts", h.operational, h.size, need)
	}
	if p.Settings.RequireAllConnected && h.disconnected > 0 {
		return fmt.Sprintf("waiting: %d agents of the pool are disconnected; the pool requires all connected", h.disconnected)
	}
	return ""
}

// operational is an agent's operationalStatus as the API derives it.
func (s *Server) operational(a *store.Agent, now time.Time) okta.OperationalStatus {
	last := a.LastConnection
	if t, ok := s.seen.get(a.ClientID); ok && t.After(last) {
		last = t
	}
	if last.IsZero() || now.Sub(last) > s.inactiveAfter() {
		return okta.OperationalStatusInactive
	}
	return a.OperationalStatus
}

// rolloutView is the update's `rollout` extension in the API: the policy
// and the engine's progress.
func rolloutView(u *store.Update) json.RawMessage {
	doc := readRollout(u)
	if doc.Policy == nil && doc.State == (rolloutState{}) {
		return nil
	}
	type view struct {
		*RolloutPolicy
		Wave              int    `json:"wave"`
		WaveCount         int    `json:"waveCount"`
		AwaitingPromotion bool   `json:"awaitingPromotion,omitempty"`
		Halted            string `json:"halted,omitempty"`
	}
	_, last := waveOf(u, doc.Policy)
	b, _ := json.Marshal(view{RolloutPolicy: doc.Policy, Wave: doc.State.Wave + 1, WaveCount: last + 1,
		AwaitingPromotion: doc.State.AwaitingPromotion, Halted: doc.State.Halted})
	return b
}

// diagnosticsView is GET .../updates/{updateId}/agents/{agentId}/diagnostics.
type diagnosticsView struct {
	AgentID       string `json:"agentId"`
	UpdateStatus  string `json:"updateStatus"`
	UpdateMessage string `json:"updateMessage"`
	Output        string `json:"output"`
	Health        string `json:"health"`
}

// handleDiagnostics serves what a host attached to an agent's failure
// (extension): the last 64 KiB of the failed version's output and its
// health check's result.
func (s *Server) handleDiagnostics(w http.ResponseWriter, r *http.Request, _ *store.Token) error {
	p, err := s.getPool(r)
	if err != nil {
		return err
	}
	u, err := s.store.GetUpdate(r.Context(), p.ID, r.PathValue("updateId"))
	if err != nil {
		return updateErr(r, err)
	}
	agentID := r.PathValue("agentId")
	var ua *store.UpdateAgent
	for i := range u.Agents {
		if u.Agents[i].AgentID == agentID {
			ua = &u.Agents[i]
		}
	}
	if ua == nil {
		return errNotFound("agent " + agentID + " in update " + u.ID)
	}
	raw, err := s.store.UpdateAgentDiagnostics(r.Context(), u.ID, agentID)
	if err != nil {
		return err
	}
	v := diagnosticsView{AgentID: agentID, UpdateStatus: string(ua.Status), UpdateMessage: ua.Message}
	if raw != "" {
		var d sailpoint.Diagnostics
		if json.Unmarshal([]byte(raw), &d) == nil {
			v.Output, v.Health = d.Output, d.Health
		}
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}
