package schedule

import (
	"errors"
	"fmt"
	"time"

	// Embedded zone data is the fallback when the host has none (minimal
	// containers), so a valid IANA zone never becomes "unknown" in production.
	_ "time/tzdata"
)

// Bounds on the schedule's numbers.
const (
	// MinDurationMinutes and MaxDurationMinutes bound a window's length. A
	// week is the longest that still reads as a maintenance window; longer
	// would mean "always open" for the weekly-ish nth-weekday schedules.
	MinDurationMinutes = 1
	MaxDurationMinutes = 7 * 24 * 60

	// MaxDelayDays bounds the delay between a release and its eligibility.
	// A year is far beyond any real soak period; larger values are typos.
	MaxDelayDays = 365
)

// maxSearchMonths bounds the month scan in Next. Consecutive months with a
// start are at most 4 apart (a fifth weekday; TestMonthGapBound checks the
// whole 400-year Gregorian cycle) and the scan begins a month early, so 6
// would do; the margin costs nothing.
const maxSearchMonths = 12

// Window is a recurring maintenance window: it opens at each start of its
// Cron, read on the wall clock of its time zone, and stays open for a fixed
// elapsed duration. Windows are half-open intervals [start, end).
//
// Wall-clock rules:
//   - A start that does not exist because the clocks spring forward (02:30 in
//     America/New_York on the March change day) moves forward to the first
//     instant after the gap (03:00 EDT).
//   - A start that occurs twice because the clocks fall back takes the first
//     occurrence (01:30 EDT, not 01:30 EST, in November in New York).
//   - The duration is elapsed time: a 120-minute window is 120 minutes long
//     even when a change happens inside it, so its end may read 1 hour
//     more or less on the wall clock.
//   - Days a month lacks are skipped, see Parse.
//
// When the duration exceeds the time between two starts, windows overlap;
// Next reports the earlier one and Open is true inside either.
//
// A Window is an immutable value, safe for concurrent use. The zero Window
// has no windows: Next returns zero times and Open false.
type Window struct {
	cron     Cron
	loc      *time.Location
	duration time.Duration
}

// NewWindow validates an Okta schedule's cron, timezone and duration (in
// minutes) and returns its Window. The timezone must be an IANA zone name
// such as "America/New_York" or "UTC"; an empty name and "Local" are
// rejected because the server's own zone means nothing to an operator, and
// so is HostTimezone: resolve it to a host's zone first (ScheduleZone).
// The duration must be MinDurationMinutes to MaxDurationMinutes.
// A cron error is a *ParseError.
func NewWindow(cron, timezone string, durationMinutes int) (Window, error) {
	c, err := Parse(cron)
	if err != nil {
		return Window{}, err
	}
	loc, err := loadZone(timezone)
	if err != nil {
		return Window{}, err
	}
	if durationMinutes < MinDurationMinutes || durationMinutes > MaxDurationMinutes {
		return Window{}, fmt.Errorf("invalid duration %d minutes: must be %d to %d (7 days)",
			durationMinutes, MinDurationMinutes, MaxDurationMinutes)
	}
	return Window{cron: c, loc: loc, duration: time.Duration(durationMinutes) * time.Minute}, nil
}

func loadZone(name string) (*time.Location, error) {
	const hint = `use an IANA time zone name such as "America/New_York" or "UTC"`
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("invalid timezone %q: %s", name, hint)
	}
	loc, err := cachedZone(name)
	if err != nil {
		return nil, fmt.Errorf("unknown timezone %q: %s", name, hint)
	}
	return loc, nil
}

// ValidateDelay reports whether delayDays is an acceptable schedule delay:
// 0 to MaxDelayDays.
func ValidateDelay(delayDays int) error {
	if delayDays < 0 || delayDays > MaxDelayDays {
		return fmt.Errorf("invalid delay %d days: must be 0 to %d", delayDays, MaxDelayDays)
	}
	return nil
}

// Cron returns the window's start schedule.
func (w Window) Cron() Cron { return w.cron }

// Location returns the window's time zone; nil for the zero Window.
func (w Window) Location() *time.Location { return w.loc }

// Duration returns the window's length.
func (w Window) Duration() time.Duration { return w.duration }

// String describes the window for logs, e.g. "0 2 15 * * America/New_York 120m".
func (w Window) String() string {
	if w.loc == nil {
		return "no window"
	}
	return fmt.Sprintf("%s %s %dm", w.cron, w.loc, int(w.duration/time.Minute))
}

// Next returns the first window whose end is after after: the window
// containing after if there is one, else the next to open. The times are in
// the window's time zone. It returns zero times only for the zero Window.
func (w Window) Next(after time.Time) (start, end time.Time) {
	if w.loc == nil {
		return time.Time{}, time.Time{}
	}
	// All windows have the same length, so the first to end after `after`
	// is the first to start after after-duration.
	start, ok := w.firstStartAfter(after.Add(-w.duration))
	if !ok {
		return time.Time{}, time.Time{}
	}
	return start, start.Add(w.duration)
}

// Open reports whether t is inside a window.
func (w Window) Open(t time.Time) bool {
	start, end := w.Next(t)
	return !start.IsZero() && !t.Before(start) && t.Before(end)
}

// EligibleAt returns when a version released at releasedAt becomes eligible
// after delayDays calendar days counted in the window's time zone: the same
// wall-clock time delayDays dates later (so one day across a DST change is
// 23 or 25 hours). A wall time that does not exist on that date moves forward
// past the gap, as window starts do. Negative delays count as 0; reject them
// earlier with ValidateDelay. The zero Window counts in UTC.
func (w Window) EligibleAt(releasedAt time.Time, delayDays int) time.Time {
	delayDays = max(delayDays, 0)
	if delayDays == 0 {
		return releasedAt
	}
	loc := w.loc
	if loc == nil {
		loc = time.UTC
	}
	r := releasedAt.In(loc)
	y, m, d := r.Date()
	hh, mm, ss := r.Clock()
	return resolve(loc, y, m, d+delayDays, hh, mm, ss, r.Nanosecond())
}

// NextEligible returns the window in which a version released at releasedAt
// with a delay of delayDays may be installed, as seen at now: the first window
// that ends after both now and EligibleAt. If eligibility falls inside a
// window, start is moved up to the eligibility instant, rounded up to a whole
// second so that RFC 3339 seconds never show a start before it; the rest of
// that window is used rather than waiting for the next one, which is often a
// month away. start may be before now when the window is already open.
func (w Window) NextEligible(releasedAt time.Time, delayDays int, now time.Time) (start, end time.Time) {
	eligible := w.EligibleAt(releasedAt, delayDays)
	if t := eligible.Truncate(time.Second); !t.Equal(eligible) {
		eligible = t.Add(time.Second)
	}
	from := now
	if eligible.After(from) {
		from = eligible
	}
	start, end = w.Next(from)
	if !start.IsZero() && start.Before(eligible) {
		start = eligible.In(start.Location())
	}
	return start, end
}

// firstStartAfter returns the first window start strictly after t.
func (w Window) firstStartAfter(t time.Time) (time.Time, bool) {
	local := t.In(w.loc)
	// Begin a month early: a start resolved forward past a DST gap can land
	// later than its nominal date suggests, but never by a month.
	year, month := local.Year(), local.Month()-1
	if month < time.January {
		year, month = year-1, time.December
	}
	var days []int
	for range maxSearchMonths {
		days = w.cron.daysIn(days[:0], year, month)
		for _, d := range days {
			s := resolve(w.loc, year, month, d, w.cron.hour, w.cron.minute, 0, 0)
			// Starts are non-decreasing in (date, time), so the first one after
			// t is the earliest.
			if s.After(t) {
				return s, true
			}
		}
		if month++; month > time.December {
			year, month = year+1, time.January
		}
	}
	return time.Time{}, false
}

// errNoZonePeriod is never expected; it guards resolve's loop.
var errNoZonePeriod = errors.New("schedule: no zone period covers the wall time")

// resolve returns the instant at which the wall clock of loc reads the given
// date and time (normalized like time.Date). Unlike time.Date, which leaves
// the choice unspecified, it pins down the DST cases: an ambiguous wall time
// resolves to its first occurrence, and one inside a gap to the first instant
// after the gap (the transition itself).
func resolve(loc *time.Location, year int, month time.Month, day, hour, minute, sec, nsec int) time.Time {
	t, err := resolveZone(loc, time.Date(year, month, day, hour, minute, sec, 0, time.UTC).Unix(), nsec)
	if err != nil {
		// Unreachable with real zone data; time.Date's answer beats a panic.
		return time.Date(year, month, day, hour, minute, sec, nsec, loc)
	}
	return t
}

// resolveZone finds the instant whose wall clock in loc reads wall (seconds
// since the epoch as if loc were UTC) by walking the zone periods around it
// in time order.
func resolveZone(loc *time.Location, wall int64, nsec int) (time.Time, error) {
	// UTC offsets are well within ±1 day, so the instant lies within a day of
	// wall; start scanning a day before that.
	const day = 24 * 60 * 60
	t := time.Unix(wall-2*day, 0).In(loc)
	for t.Unix() <= wall+2*day {
		_, offset := t.Zone()
		start, end := t.ZoneBounds()
		if !end.IsZero() && !end.After(t) {
			// Go reports the end of a zone period served by the zone's TZ
			// rule as 365 days after the year's start, a day early in leap
			// years (golang/go#81583); asked at that end, it returns it
			// again. The period really runs to the year's end, a day later.
			end = end.Add(day * time.Second)
			if !end.After(t) {
				return time.Time{}, errNoZonePeriod
			}
		}
		u := wall - int64(offset)
		if !start.IsZero() && u < start.Unix() {
			// The wall time is past the previous period's last reading and
			// before this period's first: a gap. Its first valid instant is
			// the transition.
			return start, nil
		}
		if end.IsZero() || u < end.Unix() {
			return time.Unix(u, int64(nsec)).In(loc), nil
		}
		t = end
	}
	return time.Time{}, errNoZonePeriod
}
