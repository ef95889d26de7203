package rollout

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/store"
)

// Ramp is an exponential start-rate ramp (the update body's
// rollout.ramp), as AWS IoT Jobs' exponentialRate: the update starts at
// StartPerMinute hosts a minute, and each time SuccessesToRaise more of
// its hosts have succeeded the rate is multiplied by Factor, never above
// the policy's MaxPerMinute when that is set.
type Ramp struct {
	// StartPerMinute is the rate before any host has succeeded.
	StartPerMinute int `json:"startPerMinute"`
	// Factor multiplies the rate at each step (more than 1).
	Factor float64 `json:"factor"`
	// SuccessesToRaise is how many more hosts must succeed for each step.
	SuccessesToRaise int `json:"successesToRaise"`
}

// Limits of the rate fields (hosts per minute, ramp factor).
const (
	maxRate   = 1_000_000
	maxFactor = 10
)

// rateWindow and burstWindow are the sliding windows the start rate is
// enforced over: at most the rate within any minute, and at most
// Burst(rate) within any 10 seconds.
const (
	rateWindow  = time.Minute
	burstWindow = 10 * time.Second
)

// LimitsRate reports whether p bounds how many hosts start per minute.
func (p *Policy) LimitsRate() bool {
	return p != nil && (p.MaxPerMinute > 0 || p.Ramp != nil)
}

// RateAt is the start rate (hosts per minute) in force once succeeded
// hosts of the update have succeeded; 0 means unlimited.
func (p *Policy) RateAt(succeeded int) int {
	if !p.LimitsRate() {
		return 0
	}
	r := p.Ramp
	if r == nil || r.StartPerMinute <= 0 {
		return p.MaxPerMinute
	}
	rate := float64(r.StartPerMinute)
	if r.SuccessesToRaise > 0 && r.Factor > 1 {
		steps := succeeded / r.SuccessesToRaise
		rate *= math.Pow(r.Factor, float64(steps)) // +Inf past float range: capped below
	}
	if p.MaxPerMinute > 0 && rate > float64(p.MaxPerMinute) {
		return p.MaxPerMinute
	}
	return int(min(rate, maxRate))
}

// RampWaiting is what an agent held back by a ramp below its cap says. It
// names no rate: a message that changed at each step of the ramp would
// rewrite every waiting agent's row each time (300,000 rows in a big pool);
// the rate in force is the update's rollout.currentPerMinute.
const RampWaiting = "waiting: the ramp's start rate is used up (see rollout.currentPerMinute)"

// rateMessage is what an agent held back by the start rate says.
func (p *Policy) rateMessage(rate int) string {
	if p.Ramp != nil && (p.MaxPerMinute == 0 || rate < p.MaxPerMinute) {
		return RampWaiting
	}
	return fmt.Sprintf("waiting: rollout.maxPerMinute %d reached", rate)
}

// Burst is the most hosts started within any 10 seconds at rate hosts a
// minute: a sixth of the rate rounded up, at least 1, so a rate of 60
// starts about one host a second rather than 60 at the top of each minute.
func Burst(rate int) int {
	return max((rate+5)/6, 1)
}

// validateRate lists what is wrong with the rate fields.
func (p *Policy) validateRate() []string {
	var causes []string
	if p.MaxPerMinute < 0 || p.MaxPerMinute > maxRate {
		causes = append(causes, fmt.Sprintf("rollout.maxPerMinute: must be from 0 (unlimited) to %d hosts a minute, got %d", maxRate, p.MaxPerMinute))
	}
	r := p.Ramp
	if r == nil {
		return causes
	}
	if r.StartPerMinute < 1 || r.StartPerMinute > maxRate {
		causes = append(causes, fmt.Sprintf("rollout.ramp.startPerMinute: must be from 1 to %d hosts a minute, got %d", maxRate, r.StartPerMinute))
	} else if p.MaxPerMinute > 0 && r.StartPerMinute > p.MaxPerMinute {
		causes = append(causes, fmt.Sprintf("rollout.ramp.startPerMinute: %d is above rollout.maxPerMinute %d; the ramp starts at or below the cap",
			r.StartPerMinute, p.MaxPerMinute))
	}
	if !(r.Factor > 1 && r.Factor <= maxFactor) {
		causes = append(causes, fmt.Sprintf("rollout.ramp.factor: must be above 1 and at most %d (e.g. 2 doubles the rate at each step), got %g", maxFactor, r.Factor))
	}
	if r.SuccessesToRaise < 1 {
		causes = append(causes, fmt.Sprintf("rollout.ramp.successesToRaise: must be at least 1 (hosts that must succeed before each raise), got %d", r.SuccessesToRaise))
	}
	return causes
}

// startLog is when an update's jobs were handed out (a host counts as
// started when it is handed its job), oldest first, kept for the last
// rateWindow only: its size is bounded by the rate, not the fleet.
type startLog struct {
	at []time.Time
}

// add records a start at t (in order, or nearly: a restart loads rows in
// the pool's order).
func (l *startLog) add(t, now time.Time) {
	if now.Sub(t) >= rateWindow {
		return
	}
	i, _ := slices.BinarySearchFunc(l.at, t, func(a, b time.Time) int { return a.Compare(b) })
	l.at = slices.Insert(l.at, i, t)
}

// remove forgets one start at t (a job taken back before its host ran it).
func (l *startLog) remove(t time.Time) {
	i, ok := slices.BinarySearchFunc(l.at, t, func(a, b time.Time) int { return a.Compare(b) })
	if ok {
		l.at = slices.Delete(l.at, i, i+1)
	}
}

// prune drops starts older than the rate window.
func (l *startLog) prune(now time.Time) {
	n := 0
	for n < len(l.at) && now.Sub(l.at[n]) >= rateWindow {
		n++
	}
	if n > 0 {
		l.at = slices.Delete(l.at, 0, n)
	}
}

// since counts the starts in the last d.
func (l *startLog) since(now time.Time, d time.Duration) int {
	i, _ := slices.BinarySearchFunc(l.at, now.Add(-d), func(a, b time.Time) int {
		if a.After(b) {
			return 1
		}
		return -1
	})
	return len(l.at) - i
}

// room is how many more hosts may start now at rate hosts a minute (0:
// unlimited rate, any number).
func (l *startLog) room(now time.Time, rate int) int {
	if rate <= 0 {
		return math.MaxInt
	}
	l.prune(now)
	return max(min(rate-l.since(now, rateWindow), Burst(rate)-l.since(now, burstWindow)), 0)
}

// rateState is an update's start-rate bookkeeping: its starts within the
// last minute and how many of its hosts succeeded after a job (the ramp
// counts those, not hosts that were already at the target).
type rateState struct {
	starts    startLog
	succeeded int
}

// rateRow keeps us.rate in step with a row that changed from old: a new
// job handed out is a start, a job taken back is not, a job that succeeded
// counts for the ramp. Rows loaded at startup pass through here too, which
// rebuilds the window from the stored dispatchedAt times after a restart.
func (e *Engine) rateRow(us *updState, old store.UpdateAgent, cur *store.UpdateAgent) {
	if !us.doc.Policy.LimitsRate() {
		return
	}
	if !old.DispatchedAt.Equal(cur.DispatchedAt) {
		if !old.DispatchedAt.IsZero() {
			us.rate.starts.remove(old.DispatchedAt)
		}
		if !cur.DispatchedAt.IsZero() {
			us.rate.starts.add(cur.DispatchedAt, e.d.Now())
		}
	}
	wasOK := old.Status == okta.InstanceSuccess && !old.DispatchedAt.IsZero()
	isOK := cur.Status == okta.InstanceSuccess && !cur.DispatchedAt.IsZero()
	switch {
	case isOK && !wasOK:
		us.rate.succeeded++
	case wasOK && !isOK:
		us.rate.succeeded--
	}
}

// rateNow is the update's start rate in force (0: unlimited).
func (us *updState) rateNow() int {
	return us.doc.Policy.RateAt(us.rate.succeeded)
}

// rateOpen reports whether the update's start rate lets a host start now.
func (us *updState) rateOpen(now time.Time) bool {
	return us.rate.starts.room(now, us.rateNow()) > 0
}

// rateWait is why an agent may not start now because of the start rate,
// or "".
func (us *updState) rateWait(now time.Time) string {
	rate := us.rateNow()
	if us.rate.starts.room(now, rate) > 0 {
		return ""
	}
	return us.doc.Policy.rateMessage(rate)
}
