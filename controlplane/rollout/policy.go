package rollout

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"time"

	"github.com/poolagent/poolagent/controlplane/store"
)

// Policy is an update's rollout extension (the update body's `rollout`
// object): a canary, waves, an error budget, splay and host-side limits.
// docs/rollout.md describes every rule.
type Policy struct {
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
	// MaxPerMinute bounds how many hosts start per minute (0: unlimited);
	// with a Ramp, the rate the ramp stops at.
	MaxPerMinute int `json:"maxPerMinute,omitempty"`
	// Ramp raises the start rate exponentially as hosts succeed (ramp.go).
	Ramp *Ramp `json:"ramp,omitempty"`
	// WatchMinutes is how long after a host's install its agent is
	// watched: turning unhealthy, crash-looping or going silent within it
	// fails the host (REGRESSION). nil: SoakMinutes; 0: no watch.
	WatchMinutes *int `json:"watchMinutes,omitempty"`
	// RollbackOnHalt: when the update halts (error budget, regression),
	// every host it moved gets a job back to the version it ran before
	// (rollback.go).
	RollbackOnHalt bool `json:"rollbackOnHalt,omitempty"`
}

// Watch is how long after a host's install the update watches it.
func (p *Policy) Watch() time.Duration {
	switch {
	case p == nil:
		return 0
	case p.WatchMinutes != nil:
		return time.Duration(*p.WatchMinutes) * time.Minute
	}
	return time.Duration(p.SoakMinutes) * time.Minute
}

// ErrorBudget is how many failures an update tolerates.
type ErrorBudget struct {
	// Count tolerates this many failed hosts.
	Count int `json:"count,omitempty"`
	// Percent tolerates failures up to this share of the update's hosts.
	Percent float64 `json:"percent,omitempty"`
}

// State is the engine's progress through the waves.
type State struct {
	Wave              int        `json:"wave"`
	WaveDoneAt        *time.Time `json:"waveDoneAt,omitempty"`
	AwaitingPromotion bool       `json:"awaitingPromotion,omitempty"`
	Halted            string     `json:"halted,omitempty"`
	// CurrentPerMinute is the start rate in force (ramp.go), 0 when the
	// policy sets none.
	CurrentPerMinute int `json:"currentPerMinute,omitempty"`
	// Rollback is the fleet rollback after the halt, if any.
	Rollback *Rollback `json:"rollback,omitempty"`
}

// Doc is what store.Update.Rollout holds: the policy and the state.
type Doc struct {
	Policy *Policy `json:"policy,omitempty"`
	State  State   `json:"state"`
}

// ReadDoc decodes an update's rollout document.
func ReadDoc(u *store.Update) Doc {
	var d Doc
	if u.Rollout != "" {
		_ = json.Unmarshal([]byte(u.Rollout), &d) // written only by WriteDoc
	}
	return d
}

// WriteDoc stores d as u's rollout document.
func WriteDoc(u *store.Update, d Doc) {
	if d.Policy == nil && d.State == (State{}) {
		u.Rollout = ""
		return
	}
	b, _ := json.Marshal(d)
	u.Rollout = string(b)
}

// Validate lists what is wrong with a policy, for the API's errorCauses
// (the caller checks MinPoolagentVersion's syntax with the API's other
// versions).
func (p *Policy) Validate() []string {
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
	if p.WatchMinutes != nil && (*p.WatchMinutes < 0 || *p.WatchMinutes > 7*24*60) {
		causes = append(causes, "rollout.watchMinutes: must be from 0 to 10080")
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
	causes = append(causes, p.validateRate()...)
	return causes
}

// ParsePolicy decodes the update body's rollout object: the policy (nil
// for JSON null) and what is wrong with it.
func ParsePolicy(raw json.RawMessage) (*Policy, []string) {
	if string(raw) == "null" {
		return nil, nil
	}
	var p Policy
	if err := json.Unmarshal(raw, &p); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			return nil, []string{fmt.Sprintf("rollout.%s: expected %s, got JSON %s", typ.Field, typ.Type, typ.Value)}
		}
		return nil, []string{"rollout: must be a JSON object"}
	}
	return &p, p.Validate()
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

// waveBounds returns the exclusive end index of each wave of n agents
// ranked by stableRank (nil: one wave).
func waveBounds(n int, p *Policy) []int {
	if p == nil || (p.Canary == 0 && len(p.Waves) == 0) {
		return nil
	}
	var bounds []int
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
	return bounds
}

// WaveCount is how many waves an update of n agents has under p.
func WaveCount(n int, p *Policy) int {
	return max(len(waveBounds(n, p)), 1)
}

// Waves assigns every agent of u to a wave: 0 is the canary (if any), then
// one wave per percentage. Without waves or a canary all are wave 0 and
// the map is nil. It returns the index of the last wave.
func Waves(u *store.Update, p *Policy) (map[string]int, int) {
	bounds := waveBounds(len(u.Agents), p)
	if bounds == nil {
		return nil, 0
	}
	ids := make([]string, len(u.Agents))
	for i, ua := range u.Agents {
		ids[i] = ua.AgentID
	}
	sort.Slice(ids, func(i, j int) bool { return stableRank(u.ID, ids[i]) < stableRank(u.ID, ids[j]) })
	waves := make(map[string]int, len(ids))
	w := 0
	for i, id := range ids {
		for i >= bounds[w] {
			w++
		}
		waves[id] = w
	}
	return waves, len(bounds) - 1
}

// AllowedFailures is how many failed hosts the budget tolerates.
func AllowedFailures(b *ErrorBudget, total int) int {
	allowed := b.Count
	if b.Percent > 0 {
		allowed = max(allowed, int(b.Percent*float64(total)/100))
	}
	return allowed
}

// BudgetExceeded reports whether failed hosts exceed the error budget.
func BudgetExceeded(b *ErrorBudget, failed, total int) (bool, string) {
	if b == nil {
		return false, ""
	}
	allowed := AllowedFailures(b, total)
	if failed > allowed {
		return true, fmt.Sprintf("ERROR_BUDGET: %d of %d hosts failed; the budget tolerates %d", failed, total, allowed)
	}
	return false, ""
}

// SplayOffset is an agent's deterministic delay within the splay.
func SplayOffset(updateID, agentID string, splay time.Duration) time.Duration {
	if splay <= 0 {
		return 0
	}
	return time.Duration(stableRank(updateID, agentID) % uint64(splay))
}

// Health is what the availability guard knows of a pool.
type Health struct {
	// Size counts the pool's agents.
	Size int
	// Operational counts connected agents reporting OPERATIONAL.
	Operational int
	// Disconnected counts agents not heard from within inactiveAfter.
	Disconnected int
	// UnhealthyIdle counts agents that are not OPERATIONAL and hold no
	// job: they use up the pool's maxUnavailable like agents updating.
	UnhealthyIdle int
	// Live counts jobs in flight in the pool's updates.
	Live int
}

// Guard checks the pool's availability rules; it returns why no agent of
// the pool may start now, or "".
func Guard(p *store.Pool, h Health) string {
	need := min(p.Settings.MinOperational, h.Size)
	if h.Operational < need {
		return fmt.Sprintf("waiting: %d of %d agents are OPERATIONAL; the pool needs %d before an update starts", h.Operational, h.Size, need)
	}
	if p.Settings.RequireAllConnected && h.Disconnected > 0 {
		return fmt.Sprintf("waiting: %d agents of the pool are disconnected; the pool requires all connected", h.Disconnected)
	}
	return ""
}
