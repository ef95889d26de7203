package controlplane

import (
	"context"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/rollout"
	"github.com/poolagent/poolagent/controlplane/store"
)

// nextWindow computes the update view's nextWindow extension as the rollout
// engine sees it now: the current window of a scheduled update while it is
// open, else the next one (after the target's release plus schedule.delay).
// It is nil for an update without a schedule, a finished one, or when the
// window cannot be computed.
func (s *Server) nextWindow(ctx context.Context, u *store.Update, cat *catalog) *okta.UpdateWindow {
	if u.Schedule == nil {
		return nil
	}
	switch u.Status {
	case okta.JobScheduled, okta.JobInProgress, okta.JobPaused, okta.JobFailed:
	default:
		return nil
	}
	var c rollout.Catalog
	if cat != nil {
		c = cat
	}
	target := u.TargetVersion
	if target == "" {
		if p, err := s.store.GetPool(ctx, u.PoolID); err == nil {
			target = effectiveLatest(p, cat)
		}
	}
	_, start, end, err := rollout.Window(u, target, c, s.clock.Now())
	if err != nil || start.IsZero() || end.IsZero() {
		return nil
	}
	return &okta.UpdateWindow{Start: start.UTC(), Finish: end.UTC()}
}
