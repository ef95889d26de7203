package rollout

import (
	"cmp"
	"container/heap"
	"fmt"
	"slices"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane/schedule"
	"github.com/poolagent/poolagent/controlplane/store"
)

// Maintenance windows in each host's local time (schedule.timezone
// "host"): the cron is read on the wall clock of each host's reported
// zone. The engine groups an update's hosts by zone, a handful of groups
// however many hosts:
//
//   - each zone has its window state and one entry in the engine's zone
//     timer heap, at its next opening or closing; a tick pops the entries
//     that are due and re-plans only their updates, so no tick scans the
//     fleet for windows;
//   - the update is InProgress while the window of any zone holding a host
//     still to update is open, Scheduled otherwise;
//   - while it runs, a host whose own window is closed waits with
//     updateMessage "waiting: the host's window opens at <local time>
//     (<zone>)", and a job handed out but not started when its zone's
//     window closes is taken back;
//   - each host's job carries its own zone's window (maintenance,
//     startAfter), so the host enforces it as well.

// hostZoned reports whether u's schedule is read in each host's zone.
func hostZoned(u *store.Update) bool {
	return u.Schedule != nil && u.Schedule.Timezone == schedule.HostTimezone
}

// zoneWin is one zone's window for a host-zoned update.
type zoneWin struct {
	open       bool
	start, end time.Time
	hosts      int       // rows still to update whose host is in the zone
	timer      time.Time // when its timer heap entry fires; zero: none
	// wait is the updateMessage of its hosts while it is closed;
	// waitDefault that of hosts read in it for want of a known zone.
	wait, waitDefault string
}

// zoneSet is a host-zoned update's windows by zone, as last planned.
type zoneSet struct {
	m       map[string]*zoneWin
	target  string
	anyOpen bool
	// openWaiting counts rows left without a job in a zone whose window
	// is open (an upper bound): while it is zero, free slots give no
	// reason for a pass over the rows.
	openWaiting int
}

// zoneTimer is an entry of the zone timer heap: when a zone's window of
// an update opens or closes.
type zoneTimer struct {
	at   time.Time
	us   *updState
	zone string
}

// zoneHeap orders zone timers by time.
type zoneHeap []zoneTimer

func (h zoneHeap) Len() int           { return len(h) }
func (h zoneHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h zoneHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }

// Push implements heap.Interface; use heap.Push.
func (h *zoneHeap) Push(x any) { *h = append(*h, x.(zoneTimer)) }

// Pop implements heap.Interface; use heap.Pop.
func (h *zoneHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// setClientZone records the zone a host-zoned schedule uses for a host;
// a host that moved zone re-plans its pool's host-zoned updates.
func (e *Engine) setClientZone(cs *clientState) {
	zone, fellBack := schedule.HostZone(cs.c.Timezone)
	if zone == cs.zone && fellBack == cs.zoneDefault {
		return
	}
	moved := cs.zone != ""
	cs.zone, cs.zoneDefault = zone, fellBack
	if !moved {
		return
	}
	if ps := e.pools[cs.c.PoolID]; ps != nil {
		for _, us := range ps.updates {
			if hostZoned(us.u) {
				us.replan = true
				e.markClient(cs) // its jobs carry the new zone's window
			}
		}
	}
}

// rowZone is the zone of the host that runs a row's agent; a row whose
// agent has no host is read in the default zone.
func (e *Engine) rowZone(ua *store.UpdateAgent) (zone string, fellBack bool) {
	if as := e.agents[ua.AgentID]; as != nil && as.client != nil && as.client.zone != "" {
		return as.client.zone, as.client.zoneDefault
	}
	return schedule.DefaultHostZone, true
}

// stillToUpdate reports whether a row's agent may yet get a job.
func stillToUpdate(ua *store.UpdateAgent) bool {
	switch ua.Status {
	case okta.InstanceSuccess, okta.InstanceFailed:
		return false
	}
	return true
}

// zonesDue pops the zone timers that are due and marks their updates for
// a pass: work in proportion to the windows that opened or closed.
func (e *Engine) zonesDue(now time.Time) {
	for len(e.zoneTimers) > 0 && !e.zoneTimers[0].at.After(now) {
		x := heap.Pop(&e.zoneTimers).(zoneTimer)
		us := x.us
		if e.updates[us.u.ID] != us || us.zones == nil {
			continue // finished or read again since
		}
		zw := us.zones.m[x.zone]
		if zw == nil || !zw.timer.Equal(x.at) {
			continue // superseded
		}
		zw.timer = time.Time{}
		us.replan = true
	}
}

// syncZones brings a host-zoned update's zone windows up to now and
// reports whether any zone holding a host still to update is open. The
// zones are gathered again only when the update needs a pass anyway (its
// rows, hosts or target changed, or a zone timer fired); otherwise the
// answer is the one kept.
func (e *Engine) syncZones(us *updState, target string, now time.Time) (bool, error) {
	zs := us.zones
	if zs != nil && !us.replan && zs.target == target {
		return zs.anyOpen, nil
	}
	if zs == nil {
		zs = &zoneSet{m: map[string]*zoneWin{}}
		us.zones = zs
	}
	zs.target = target
	for _, zw := range zs.m {
		zw.hosts = 0
	}
	for i := range us.u.Agents {
		ua := &us.u.Agents[i]
		if !stillToUpdate(ua) {
			continue
		}
		zone, _ := e.rowZone(ua)
		zw := zs.m[zone]
		if zw == nil {
			zw = &zoneWin{}
			zs.m[zone] = zw
		}
		zw.hosts++
	}
	zs.anyOpen = false
	var firstErr error
	for zone, zw := range zs.m {
		if zw.hosts == 0 {
			delete(zs.m, zone) // its timer entry is dropped when it fires
			continue
		}
		open, start, end, err := WindowIn(us.u, target, e.cat, now, zone)
		if err != nil {
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		zw.open, zw.start, zw.end = open, start, end
		zw.wait, zw.waitDefault = waitMessage(zone, start, false), waitMessage(zone, start, true)
		zs.anyOpen = zs.anyOpen || open
		next := start
		if open || !now.Before(start) {
			next = end
		}
		if !next.IsZero() && !next.Equal(zw.timer) {
			zw.timer = next
			heap.Push(&e.zoneTimers, zoneTimer{at: next, us: us, zone: zone})
		}
	}
	return zs.anyOpen, firstErr
}

// zoneWait is why a row of a host-zoned update may not start now: its
// host's window is closed. It is "" when the window is open or the update
// is not host-zoned.
func (e *Engine) zoneWait(us *updState, ua *store.UpdateAgent) string {
	if us.zones == nil || !hostZoned(us.u) {
		return ""
	}
	zone, fellBack := e.rowZone(ua)
	zw := us.zones.m[zone]
	switch {
	case zw == nil || zw.open:
		return ""
	case fellBack:
		return zw.waitDefault
	}
	return zw.wait
}

// waitMessage is the updateMessage of a host waiting for its zone's
// window to open at start (in the zone's time, as WindowIn returns it).
func waitMessage(zone string, start time.Time, fellBack bool) string {
	why := zone
	if fellBack {
		why += ", the default: the host reported no known time zone"
	}
	if start.IsZero() {
		return fmt.Sprintf("waiting: the host's window has no next opening (%s)", why)
	}
	return fmt.Sprintf("waiting: the host's window opens at %s (%s)", start.Format(time.RFC3339), why)
}

// zonesWaiting reports whether free slots could start a row: always for
// an update that is not host-zoned, else only while a row waits in an open
// zone.
func (us *updState) zonesWaiting() bool {
	return us.zones == nil || !hostZoned(us.u) || us.zones.openWaiting > 0
}

// zoneInfo is the job info of a host-zoned update's jobs for hosts in
// zone, at the time of the last info refresh (e.infoNow).
func (e *Engine) zoneInfo(us *updState, zone string) *updInfo {
	if in := us.zinfo[zone]; in != nil {
		return in
	}
	if us.zinfo == nil {
		us.zinfo = map[string]*updInfo{}
	}
	in := e.makeInfo(us, Target(us.u, us.pool.p, e.cat), e.infoNow, zone)
	us.zinfo[zone] = in
	return in
}

// refreshZoneInfos recomputes the per-zone job infos of a host-zoned
// update and reports whether one changed.
func (e *Engine) refreshZoneInfos(us *updState, target string, now time.Time) bool {
	if !hostZoned(us.u) {
		us.zinfo = nil
		return false
	}
	changed := false
	for zone, old := range us.zinfo {
		in := e.makeInfo(us, target, now, zone)
		if !in.same(old) {
			us.zinfo[zone] = in
			changed = true
		}
	}
	return changed
}

// followZones keeps a follower replica's zone windows current, for the
// API's nextWindow: the same census and timers as the leader's plan, no
// decision. A follower does not plan, so it clears the updates' replan
// marks itself (a replica that becomes leader reloads and re-plans all).
func (e *Engine) followZones(now time.Time) {
	for _, us := range e.updates {
		if hostZoned(us.u) {
			_, _ = e.syncZones(us, Target(us.u, us.pool.p, e.cat), now) // a bad schedule is the leader's to log
			us.replan = false
		}
	}
}

// ZoneWindow is the window of one time zone of a host-zoned update.
type ZoneWindow struct {
	Zone          string
	Start, Finish time.Time
	Open          bool
	Hosts         int // hosts still to update in the zone
}

// publishZones publishes the zone windows of the host-zoned updates, for
// the API's nextWindow; it takes no engine lock to read (HostZones).
func (e *Engine) publishZones() {
	m := map[string][]ZoneWindow{}
	for _, us := range e.updates {
		if us.zones == nil || !hostZoned(us.u) {
			continue
		}
		ws := make([]ZoneWindow, 0, len(us.zones.m))
		for zone, zw := range us.zones.m {
			ws = append(ws, ZoneWindow{Zone: zone, Start: zw.start, Finish: zw.end, Open: zw.open, Hosts: zw.hosts})
		}
		slices.SortFunc(ws, func(a, b ZoneWindow) int { return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.Zone, b.Zone)) })
		m[us.u.ID] = ws
	}
	e.zonesPub.Store(&m)
}

// HostZones returns the zones of a host-zoned update's hosts still to
// update with each zone's current or next window, earliest first, as of
// the engine's last tick; ok is false when the engine does not hold the
// update (not seen yet, or finished).
func (e *Engine) HostZones(updateID string) (ws []ZoneWindow, ok bool) {
	m := e.zonesPub.Load()
	if m == nil {
		return nil, false
	}
	ws, ok = (*m)[updateID]
	return ws, ok
}
