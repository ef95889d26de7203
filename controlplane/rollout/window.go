package rollout

import (
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/schedule"
	"github.com/poolagent/poolagent/controlplane/store"
)

// DefaultWindowMinutes is the window length of a schedule sent without a
// duration (or with 0, as the seed's request sample does).
const DefaultWindowMinutes = 120

// Catalog is what the engine needs of the release catalog.
type Catalog interface {
	// Get returns the artifact of name and version for a platform, or nil.
	Get(name, version, goos, arch string) *store.Release
	// Latest returns the newest version of name that a pool on channel
	// takes, or "".
	Latest(name string, channel okta.ReleaseChannel) string
	// Published returns when a version of name was first published.
	Published(name, version string) (time.Time, bool)
}

// EffectiveLatest is the pool's latestVersion: the pinned setting, or the
// newest release of its type on its channel.
func EffectiveLatest(p *store.Pool, c Catalog) string {
	if p.Settings.LatestVersion != "" {
		return p.Settings.LatestVersion
	}
	if c == nil {
		return ""
	}
	return c.Latest(string(p.Type), p.Settings.ReleaseChannel)
}

// Target is the version an update installs: its targetVersion, else the
// pool's latest.
func Target(u *store.Update, p *store.Pool, c Catalog) string {
	if u.TargetVersion != "" {
		return u.TargetVersion
	}
	return EffectiveLatest(p, c)
}

// Window returns whether u may hand out jobs at now and its current or
// next window. Flow 2 updates (no schedule) are always open: the window
// starts at creation and has no finish. A scheduled window opens no sooner
// than schedule.delay days after the target's first publication. A
// schedule in the hosts' zones (schedule.HostTimezone) is read here in
// schedule.DefaultHostZone; WindowIn gives a host's.
func Window(u *store.Update, target string, c Catalog, now time.Time) (open bool, start, end time.Time, err error) {
	return WindowIn(u, target, c, now, "")
}

// WindowIn is Window for a host that reported the time zone hostZone: with
// a schedule in the hosts' zones, its cron is read on that zone's wall
// clock (schedule.ScheduleZone); other schedules ignore hostZone.
func WindowIn(u *store.Update, target string, c Catalog, now time.Time, hostZone string) (open bool, start, end time.Time, err error) {
	if u.Schedule == nil {
		return true, u.CreatedAt, time.Time{}, nil
	}
	dur := DefaultWindowMinutes
	if u.Schedule.Duration != nil && *u.Schedule.Duration > 0 {
		dur = *u.Schedule.Duration
	}
	w, err := schedule.NewWindow(u.Schedule.Cron, schedule.ScheduleZone(u.Schedule.Timezone, hostZone), dur)
	if err != nil {
		return false, time.Time{}, time.Time{}, err
	}
	delay := 0
	if u.Schedule.Delay != nil {
		delay = *u.Schedule.Delay
	}
	released := now
	if c != nil {
		if t, ok := c.Published(string(u.AgentType), target); ok {
			released = t
		}
	}
	start, end = w.NextEligible(released, delay, now)
	return !now.Before(start) && now.Before(end), start, end, nil
}
