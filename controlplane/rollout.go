package controlplane

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/controlplane/rollout"
	"github.com/poolagent/poolagent/controlplane/store"
)

// RolloutPolicy is an update's rollout extension (the update body's
// `rollout` object); the rollout package owns its rules.
type RolloutPolicy = rollout.Policy

// ErrorBudget is how many failures an update tolerates.
type ErrorBudget = rollout.ErrorBudget

// parseRolloutPolicy decodes the update body's rollout object and lists
// what is wrong with it, for the API's errorCauses.
func parseRolloutPolicy(raw json.RawMessage) (*RolloutPolicy, []string) {
	p, causes := rollout.ParsePolicy(raw)
	if p != nil && p.MinPoolagentVersion != "" {
		if msg := checkVersion(p.MinPoolagentVersion); msg != "" {
			causes = append(causes, "rollout.minPoolagentVersion: "+msg)
		}
	}
	return p, causes
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
func rolloutView(u *store.Update) json.RawMessage { return rolloutViewN(u, len(u.Agents)) }

// rolloutViewN is rolloutView of an update of n agents.
func rolloutViewN(u *store.Update, n int) json.RawMessage {
	doc := rollout.ReadDoc(u)
	if doc.Policy == nil && doc.State == (rollout.State{}) {
		return nil
	}
	type view struct {
		*RolloutPolicy
		Wave              int    `json:"wave"`
		WaveCount         int    `json:"waveCount"`
		AwaitingPromotion bool   `json:"awaitingPromotion,omitempty"`
		Halted            string `json:"halted,omitempty"`
		// CurrentPerMinute is the start rate in force (maxPerMinute,
		// ramp): the engine's, or the ramp's first before it planned.
		CurrentPerMinute int `json:"currentPerMinute,omitempty"`
		// Rollback is the fleet rollback's progress (rollback.go).
		Rollback *rollout.Rollback `json:"rollback,omitempty"`
	}
	// An operator's change of the policy shows before the engine's next
	// tick: no rate without one, never above the new cap.
	rate := doc.State.CurrentPerMinute
	switch p := doc.Policy; {
	case !p.LimitsRate():
		rate = 0
	case rate == 0:
		rate = p.RateAt(0)
	case p.MaxPerMinute > 0:
		rate = min(rate, p.MaxPerMinute)
	}
	b, _ := json.Marshal(view{RolloutPolicy: doc.Policy, Wave: doc.State.Wave + 1, WaveCount: rollout.WaveCount(n, doc.Policy),
		AwaitingPromotion: doc.State.AwaitingPromotion, Halted: doc.State.Halted, CurrentPerMinute: rate, Rollback: doc.State.Rollback})
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
	_, u, err := s.getPoolUpdate(r)
	if err != nil {
		return err
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
