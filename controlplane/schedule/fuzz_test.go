package schedule

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzParse feeds arbitrary expressions, instants, zones and durations.
// Rejected input must yield a *ParseError listing the allowed forms; accepted
// input must round-trip through String and produce windows that end after
// the instant asked about, each starting strictly after the previous one, at
// the cron's wall time on a matching day unless moved past a DST gap.
// The seed corpus is in testdata/fuzz/FuzzParse and runs with go test.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, expr string, unix int64, zone uint8, minutes uint16) {
		c, err := Parse(expr)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) error %v is not a *ParseError", expr, err)
			}
			if !strings.Contains(err.Error(), allowedForms) {
				t.Fatalf("Parse(%q) error %q omits the allowed forms", expr, err)
			}
			return
		}
		if back, err := Parse(c.String()); err != nil || back != c {
			t.Fatalf("Parse(%q) = %+v; Parse(String() %q) = %+v, %v", expr, c, c.String(), back, err)
		}

		name := testZones[int(zone)%len(testZones)]
		dur := int(minutes)%MaxDurationMinutes + 1
		w, err := NewWindow(expr, name, dur)
		if err != nil {
			t.Fatalf("NewWindow(%q, %q, %d): %v", expr, name, dur, err)
		}
		// Keep instants within 1900-2300: outside, tz data is guesswork and
		// year arithmetic nears time.Time's limits.
		lo := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
		hi := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
		span := hi - lo
		at := time.Unix(lo+((unix%span)+span)%span, 0)

		var prev time.Time
		var days []int
		for i := range 6 {
			start, end := w.Next(at)
			if start.IsZero() {
				t.Fatalf("%s: Next(%s) found no window", w, at)
			}
			if !end.After(at) {
				t.Fatalf("%s: Next(%s) = [%s, %s) does not end after it", w, at, start, end)
			}
			if end.Sub(start) != w.duration {
				t.Fatalf("%s: Next(%s) lasts %v", w, at, end.Sub(start))
			}
			if i > 0 && !start.After(prev) {
				t.Fatalf("%s: window %s does not start after the previous %s", w, start, prev)
			}
			local := start.In(w.loc)
			if local.Hour() == c.hour && local.Minute() == c.minute && local.Second() == 0 {
				days = c.daysIn(days[:0], local.Year(), local.Month())
				if !slices.Contains(days, local.Day()) {
					t.Fatalf("%s: window starts on %s, not a scheduled day", w, local)
				}
			} else if zs, _ := start.ZoneBounds(); !zs.Equal(start) {
				t.Fatalf("%s: window starts at %s, neither the scheduled time nor a DST change", w, local)
			}
			prev, at = start, end
		}
	})
}
