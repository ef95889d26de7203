package controlplane

import (
	"context"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/rollout"
	"github.com/poolagent/poolagent/controlplane/schedule"
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
	if w := s.hostZoneWindows(u); w != nil {
		return w
	}
	_, start, end, err := rollout.Window(u, target, c, s.clock.Now())
	if err != nil || start.IsZero() || end.IsZero() {
		return nil
	}
	return &okta.UpdateWindow{Start: start.UTC(), Finish: end.UTC()}
}

// hostZoneWindows is nextWindow for a schedule in each host's zone: the
// windows of the zones the engine last saw the update's hosts in (a
// follower replica keeps them too), the earliest first. It is nil for
// another schedule, or when the engine has not seen the update yet (just
// created): nextWindow then shows the window of the default zone.
func (s *Server) hostZoneWindows(u *store.Update) *okta.UpdateWindow {
	if u.Schedule.Timezone != schedule.HostTimezone || s.engine == nil {
		return nil
	}
	zs, ok := s.engine.HostZones(u.ID)
	if !ok || len(zs) == 0 {
		return nil
	}
	w := &okta.UpdateWindow{Zones: make([]okta.ZoneWindow, 0, len(zs))}
	for _, z := range zs {
		if z.Start.IsZero() || z.Finish.IsZero() {
			continue
		}
		w.Zones = append(w.Zones, okta.ZoneWindow{Timezone: z.Zone, Start: z.Start.UTC(), Finish: z.Finish.UTC(), Open: z.Open, Hosts: z.Hosts})
	}
	if len(w.Zones) == 0 {
		return nil
	}
	w.Start, w.Finish = w.Zones[0].Start, w.Zones[0].Finish
	return w
}
