package agent

import (
	"time"

	"github.com/poolagent/poolagent/api/sailpoint"
)

// window is a job's maintenance window as offsets from the instant its
// reply arrived, so it is judged by the server's clock (windowClusterTime)
// and measured on the agent's monotonic clock: a skewed or jumping wall
// clock on the host changes nothing.
type window struct {
	// recv is when the reply arrived (with a monotonic reading, except
	// for a window restored from disk after a restart).
	recv time.Time
	// none: the job came without a maintenance window (always open).
	none bool
	// flag is the server's "window" value, used when the times are
	// missing or unreadable.
	flag bool
	// start and end are windowStart/FinishTime minus windowClusterTime;
	// hasEnd is false for an open-ended window.
	start, end       time.Duration
	hasTimes, hasEnd bool
}

// parseWindow reads a job's maintenance block received at recv.
func parseWindow(m *sailpoint.Maintenance, recv time.Time) window {
	if m == nil {
		return window{recv: recv, none: true}
	}
	w := window{recv: recv, flag: m.Window == "true"}
	cluster, err1 := time.Parse(time.RFC3339, m.WindowClusterTime)
	start, err2 := time.Parse(time.RFC3339, m.WindowStartTime)
	if err1 != nil || err2 != nil {
		return w
	}
	w.hasTimes, w.start = true, start.Sub(cluster)
	if end, err := time.Parse(time.RFC3339, m.WindowFinishTime); err == nil {
		w.hasEnd, w.end = true, end.Sub(cluster)
	}
	return w
}

// open reports whether the window is open at now with at least margin
// left.
func (w window) open(now time.Time, margin time.Duration) bool {
	switch {
	case w.none:
		return true
	case !w.hasTimes:
		return w.flag
	}
	el := now.Sub(w.recv)
	return el >= w.start && (!w.hasEnd || el+margin < w.end)
}

// next returns how long until the window's state may change (0: unknown).
func (w window) next(now time.Time, margin time.Duration) time.Duration {
	if w.none || !w.hasTimes {
		return 0
	}
	el := now.Sub(w.recv)
	switch {
	case el < w.start:
		return w.start - el
	case w.hasEnd && el+margin < w.end:
		return w.end - margin - el
	}
	return 0
}
