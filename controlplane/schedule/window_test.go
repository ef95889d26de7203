package schedule

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func mustWindow(t testing.TB, cron, zone string, minutes int) Window {
	t.Helper()
	w, err := NewWindow(cron, zone, minutes)
	if err != nil {
		t.Fatalf("NewWindow(%q, %q, %d): %v", cron, zone, minutes, err)
	}
	return w
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// TestNext pins windows down to the instant and the wall-clock offset; the
// want times are written in the window's zone so the DST side is visible.
func TestNext(t *testing.T) {
	tests := []struct {
		name       string
		zone, cron string
		minutes    int
		after      string
		start, end string
	}{
		// America/New_York 2024: EST->EDT Mar 10 02:00, EDT->EST Nov 3 02:00.
		{"NY spring-forward start in gap moves to 03:00", "America/New_York", "30 2 * * 0#2", 60,
			"2024-03-01T00:00:00-05:00", "2024-03-10T03:00:00-04:00", "2024-03-10T04:00:00-04:00"},
		{"NY start at gap edge", "America/New_York", "0 2 10 * *", 60,
			"2024-03-01T00:00:00-05:00", "2024-03-10T03:00:00-04:00", "2024-03-10T04:00:00-04:00"},
		{"NY window across spring-forward lasts 120 elapsed minutes", "America/New_York", "0 1 10 * *", 120,
			"2024-03-01T00:00:00-05:00", "2024-03-10T01:00:00-05:00", "2024-03-10T04:00:00-04:00"},
		{"NY ambiguous start takes first occurrence", "America/New_York", "30 1 * * 0#1", 120,
			"2024-11-01T00:00:00-04:00", "2024-11-03T01:30:00-04:00", "2024-11-03T02:30:00-05:00"},
		{"NY window across fall-back", "America/New_York", "0 0 3 * *", 180,
			"2024-11-01T00:00:00-04:00", "2024-11-03T00:00:00-04:00", "2024-11-03T02:00:00-05:00"},
		{"NY after expressed in UTC", "America/New_York", "0 2 15 * *", 60,
			"2024-06-15T05:59:59Z", "2024-06-15T02:00:00-04:00", "2024-06-15T03:00:00-04:00"},

		// Europe/London 2024: GMT->BST Mar 31 01:00, BST->GMT Oct 27 02:00.
		{"London last Sunday start in gap", "Europe/London", "30 1 * * 0L", 60,
			"2024-03-15T00:00:00Z", "2024-03-31T02:00:00+01:00", "2024-03-31T03:00:00+01:00"},
		{"London ambiguous last Sunday, same wall time at both ends", "Europe/London", "30 1 * * SUNL", 60,
			"2024-10-15T00:00:00Z", "2024-10-27T01:30:00+01:00", "2024-10-27T01:30:00Z"},

		// Australia/Sydney 2024: AEDT->AEST Apr 7 03:00, AEST->AEDT Oct 6 02:00.
		{"Sydney autumn ambiguous start takes first occurrence", "Australia/Sydney", "30 2 * * 0#1", 60,
			"2024-04-01T00:00:00+11:00", "2024-04-07T02:30:00+11:00", "2024-04-07T02:30:00+10:00"},
		{"Sydney ambiguous start at the hour", "Australia/Sydney", "0 2 7 * *", 120,
			"2024-04-01T00:00:00+11:00", "2024-04-07T02:00:00+11:00", "2024-04-07T03:00:00+10:00"},
		{"Sydney spring start in gap", "Australia/Sydney", "30 2 * * 0#1", 60,
			"2024-09-15T00:00:00+10:00", "2024-10-06T03:00:00+11:00", "2024-10-06T04:00:00+11:00"},

		// Zones with unusual changes.
		{"Lord Howe 30-minute gap", "Australia/Lord_Howe", "15 2 * * 0#1", 60,
			"2024-09-15T00:00:00+10:30", "2024-10-06T02:30:00+11:00", "2024-10-06T03:30:00+11:00"},
		{"Apia skipped 30 December 2011 entirely", "Pacific/Apia", "0 2 30 * *", 60,
			"2011-12-01T00:00:00Z", "2011-12-31T00:00:00+14:00", "2011-12-31T01:00:00+14:00"},
		{"Sao Paulo midnight gap", "America/Sao_Paulo", "30 0 4 * *", 60,
			"2018-11-01T00:00:00-03:00", "2018-11-04T01:00:00-02:00", "2018-11-04T02:00:00-02:00"},

		// Month ends and leap years.
		{"31st skips February", "UTC", "0 2 31 * *", 60,
			"2024-01-31T03:00:00Z", "2024-03-31T02:00:00Z", "2024-03-31T03:00:00Z"},
		{"31st skips April", "UTC", "0 2 31 * *", 60,
			"2024-04-01T00:00:00Z", "2024-05-31T02:00:00Z", "2024-05-31T03:00:00Z"},
		{"31st skips September", "UTC", "0 2 31 * *", 60,
			"2024-08-31T03:00:00Z", "2024-10-31T02:00:00Z", "2024-10-31T03:00:00Z"},
		{"29th skips February of a common year", "UTC", "0 0 29 * *", 60,
			"2023-02-01T00:00:00Z", "2023-03-29T00:00:00Z", "2023-03-29T01:00:00Z"},
		{"29th in February of a leap year", "UTC", "0 0 29 * *", 60,
			"2024-02-01T00:00:00Z", "2024-02-29T00:00:00Z", "2024-02-29T01:00:00Z"},
		{"L in February of a common year", "UTC", "0 0 L * *", 60,
			"2023-02-01T00:00:00Z", "2023-02-28T00:00:00Z", "2023-02-28T01:00:00Z"},
		{"L in February of a leap year", "UTC", "0 0 L * *", 60,
			"2024-02-01T00:00:00Z", "2024-02-29T00:00:00Z", "2024-02-29T01:00:00Z"},
		{"L in February 2100, not a leap year", "UTC", "0 0 L * *", 60,
			"2100-02-01T00:00:00Z", "2100-02-28T00:00:00Z", "2100-02-28T01:00:00Z"},
		{"L in February 2000, a leap year", "UTC", "0 0 L * *", 60,
			"2000-02-01T00:00:00Z", "2000-02-29T00:00:00Z", "2000-02-29T01:00:00Z"},
		{"L in April", "UTC", "0 0 L * *", 60,
			"2024-04-01T00:00:00Z", "2024-04-30T00:00:00Z", "2024-04-30T01:00:00Z"},
		{"30,L: both on the 30th of April collapse to one", "UTC", "0 0 30,L * *", 1,
			"2024-04-30T00:01:00Z", "2024-05-30T00:00:00Z", "2024-05-30T00:01:00Z"},
		{"30,L: then the 31st of May", "UTC", "0 0 30,L * *", 1,
			"2024-05-30T00:01:00Z", "2024-05-31T00:00:00Z", "2024-05-31T00:01:00Z"},
		{"year wrap", "UTC", "0 2 * * 2#1", 60,
			"2024-12-31T00:00:00Z", "2025-01-07T02:00:00Z", "2025-01-07T03:00:00Z"},
		{"L at year end in a zone east of UTC", "Pacific/Auckland", "0 23 L * *", 60,
			"2024-12-31T09:00:00Z", "2024-12-31T23:00:00+13:00", "2025-01-01T00:00:00+13:00"},

		// Past a zone's last explicit transition Go computes periods from
		// its TZ rule and misreports the year end in leap years
		// (golang/go#81583).
		{"leap-year December 31 under the TZ rule", "Europe/London", "0 12 31 * *", 60,
			"2040-12-01T00:00:00Z", "2040-12-31T12:00:00Z", "2040-12-31T13:00:00Z"},
		{"leap-year last day under the TZ rule, west of UTC", "America/New_York", "30 1 L * *", 60,
			"2092-12-30T12:00:00Z", "2092-12-31T01:30:00-05:00", "2092-12-31T02:30:00-05:00"},
		{"leap-year year end under the TZ rule, southern hemisphere", "Australia/Sydney", "0 10 L * *", 60,
			"2092-12-30T12:00:00Z", "2092-12-31T10:00:00+11:00", "2092-12-31T11:00:00+11:00"},

		// Nth weekday.
		{"fifth Friday skips April 2024", "UTC", "0 2 * * 5#5", 60,
			"2024-04-01T00:00:00Z", "2024-05-31T02:00:00Z", "2024-05-31T03:00:00Z"},
		{"first Tuesday", "UTC", "0 2 * * 2#1", 60,
			"2024-06-05T00:00:00Z", "2024-07-02T02:00:00Z", "2024-07-02T03:00:00Z"},
		{"7 is Sunday", "UTC", "0 2 * * 7#1", 60,
			"2024-06-01T00:00:00Z", "2024-06-02T02:00:00Z", "2024-06-02T03:00:00Z"},
		{"last Monday of a leap February", "UTC", "0 2 * * 1L", 60,
			"2024-02-01T00:00:00Z", "2024-02-26T02:00:00Z", "2024-02-26T03:00:00Z"},

		// Which window: half-open [start, end).
		{"after inside the window", "UTC", "0 2 15 * *", 240,
			"2024-06-15T03:00:00Z", "2024-06-15T02:00:00Z", "2024-06-15T06:00:00Z"},
		{"after at the start", "UTC", "0 2 15 * *", 240,
			"2024-06-15T02:00:00Z", "2024-06-15T02:00:00Z", "2024-06-15T06:00:00Z"},
		{"after just before the start", "UTC", "0 2 15 * *", 240,
			"2024-06-15T01:59:59.999999999Z", "2024-06-15T02:00:00Z", "2024-06-15T06:00:00Z"},
		{"after just before the end", "UTC", "0 2 15 * *", 240,
			"2024-06-15T05:59:59.999999999Z", "2024-06-15T02:00:00Z", "2024-06-15T06:00:00Z"},
		{"after at the end", "UTC", "0 2 15 * *", 240,
			"2024-06-15T06:00:00Z", "2024-07-15T02:00:00Z", "2024-07-15T06:00:00Z"},
		{"overlapping windows: the first to end", "UTC", "0 0 1,2 * *", 2 * 1440,
			"2024-01-02T12:00:00Z", "2024-01-01T00:00:00Z", "2024-01-03T00:00:00Z"},
		{"week-long window from the previous month", "UTC", "0 0 L * *", 7 * 1440,
			"2024-02-03T00:00:00Z", "2024-01-31T00:00:00Z", "2024-02-07T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := mustWindow(t, tt.cron, tt.zone, tt.minutes)
			start, end := w.Next(mustTime(t, tt.after))
			if got := start.Format(time.RFC3339Nano); got != tt.start {
				t.Errorf("start = %s, want %s", got, tt.start)
			}
			if got := end.Format(time.RFC3339Nano); got != tt.end {
				t.Errorf("end = %s, want %s", got, tt.end)
			}
			if got, want := end.Sub(start), time.Duration(tt.minutes)*time.Minute; got != want {
				t.Errorf("window lasts %v, want %v of elapsed time", got, want)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	w := mustWindow(t, "30 1 * * 0#1", "America/New_York", 120)
	// 2024-11-03: 01:30 EDT (05:30Z) to 02:30 EST (07:30Z).
	tests := []struct {
		at   string
		want bool
	}{
		{"2024-11-03T05:29:59Z", false},
		{"2024-11-03T05:30:00Z", true},
		{"2024-11-03T01:30:00-05:00", true}, // the second 01:30, an hour in
		{"2024-11-03T07:29:59.999999999Z", true},
		{"2024-11-03T07:30:00Z", false},
		{"2024-12-01T06:29:59Z", false},
		{"2024-12-01T06:30:00Z", true}, // 01:30 EST
	}
	for _, tt := range tests {
		if got := w.Open(mustTime(t, tt.at)); got != tt.want {
			t.Errorf("Open(%s) = %v, want %v", tt.at, got, tt.want)
		}
	}
}

func TestZeroWindow(t *testing.T) {
	var w Window
	if s, e := w.Next(time.Unix(0, 0)); !s.IsZero() || !e.IsZero() {
		t.Errorf("zero Window Next = %v, %v; want zero times", s, e)
	}
	if w.Open(time.Unix(0, 0)) {
		t.Error("zero Window is open")
	}
	if s, e := w.NextEligible(time.Unix(0, 0), 1, time.Unix(0, 0)); !s.IsZero() || !e.IsZero() {
		t.Errorf("zero Window NextEligible = %v, %v; want zero times", s, e)
	}
}

func TestNewWindowErrors(t *testing.T) {
	tests := []struct {
		cron, zone string
		minutes    int
		wantInMsg  string
	}{
		{"0 2 15 * *", "Mars/Olympus_Mons", 60, `"Mars/Olympus_Mons"`},
		{"0 2 15 * *", "", 60, "IANA"},
		{"0 2 15 * *", "Local", 60, "IANA"},
		{"0 2 15 * *", "../../etc/passwd", 60, "IANA"},
		{"0 2 15 * *", "UTC", 0, "duration 0 minutes"},
		{"0 2 15 * *", "UTC", -5, "duration -5 minutes"},
		{"0 2 15 * *", "UTC", MaxDurationMinutes + 1, "must be 1 to 10080"},
		{"0 2 15 * 1#1", "UTC", 60, "day-of-week"},
	}
	for _, tt := range tests {
		_, err := NewWindow(tt.cron, tt.zone, tt.minutes)
		if err == nil || !strings.Contains(err.Error(), tt.wantInMsg) {
			t.Errorf("NewWindow(%q, %q, %d) error = %v, want one containing %q", tt.cron, tt.zone, tt.minutes, err, tt.wantInMsg)
		}
	}
	var pe *ParseError
	if _, err := NewWindow("bad", "UTC", 60); !errors.As(err, &pe) {
		t.Errorf("NewWindow with a bad cron: error %v is not a *ParseError", err)
	}
	for _, m := range []int{MinDurationMinutes, MaxDurationMinutes} {
		if _, err := NewWindow("0 2 15 * *", "UTC", m); err != nil {
			t.Errorf("NewWindow with %d minutes: %v", m, err)
		}
	}
	w := mustWindow(t, "0 2 * * 2#1", "Europe/London", 90)
	if got, want := w.String(), "0 2 * * 2#1 Europe/London 90m"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestValidateDelay(t *testing.T) {
	for _, d := range []int{0, 1, MaxDelayDays} {
		if err := ValidateDelay(d); err != nil {
			t.Errorf("ValidateDelay(%d) = %v", d, err)
		}
	}
	for _, d := range []int{-1, MaxDelayDays + 1} {
		if err := ValidateDelay(d); err == nil {
			t.Errorf("ValidateDelay(%d) = nil, want an error", d)
		}
	}
}

func TestEligibleAt(t *testing.T) {
	tests := []struct {
		name     string
		zone     string
		released string
		days     int
		want     string
	}{
		{"one calendar day across spring-forward is 23 hours", "America/New_York",
			"2024-03-09T12:00:00-05:00", 1, "2024-03-10T12:00:00-04:00"},
		{"one calendar day across fall-back is 25 hours", "America/New_York",
			"2024-11-02T12:00:00-04:00", 1, "2024-11-03T12:00:00-05:00"},
		{"landing in the gap moves past it", "America/New_York",
			"2024-03-09T02:30:00-05:00", 1, "2024-03-10T03:00:00-04:00"},
		{"landing on an ambiguous time takes the first", "America/New_York",
			"2024-11-02T01:30:00-04:00", 1, "2024-11-03T01:30:00-04:00"},
		{"days count in the window's zone, not UTC", "America/New_York",
			"2024-06-01T02:00:00Z", 1, "2024-06-01T22:00:00-04:00"},
		{"month overflow like AddDate", "UTC",
			"2024-01-31T10:00:00Z", 30, "2024-03-01T10:00:00Z"},
		{"sub-second precision kept", "Europe/London",
			"2024-03-30T12:00:00.5Z", 1, "2024-03-31T12:00:00.5+01:00"},
		{"zero delay is the release instant", "Australia/Sydney",
			"2024-04-06T16:30:00Z", 0, "2024-04-06T16:30:00Z"},
		{"negative delay counts as zero", "UTC",
			"2024-04-06T16:30:00Z", -3, "2024-04-06T16:30:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := mustWindow(t, "0 2 15 * *", tt.zone, 60)
			got := w.EligibleAt(mustTime(t, tt.released), tt.days)
			if !got.Equal(mustTime(t, tt.want)) {
				t.Errorf("EligibleAt = %s, want %s", got.Format(time.RFC3339Nano), tt.want)
			}
			if tt.days > 0 && got.Format(time.RFC3339Nano) != tt.want {
				t.Errorf("EligibleAt = %s, want it in the window's zone as %s", got.Format(time.RFC3339Nano), tt.want)
			}
		})
	}
}

func TestNextEligible(t *testing.T) {
	w := mustWindow(t, "0 2 15 * *", "UTC", 240) // the 15th, 02:00-06:00 UTC
	tests := []struct {
		name          string
		released, now string
		days          int
		start, end    string
	}{
		{"eligible before the window", "2024-06-10T00:00:00Z", "2024-06-11T00:00:00Z", 3,
			"2024-06-15T02:00:00Z", "2024-06-15T06:00:00Z"},
		{"eligible inside the window: start moves up", "2024-06-12T04:00:00Z", "2024-06-11T00:00:00Z", 3,
			"2024-06-15T04:00:00Z", "2024-06-15T06:00:00Z"},
		{"eligible at the window's end: next month", "2024-06-12T06:00:00Z", "2024-06-11T00:00:00Z", 3,
			"2024-07-15T02:00:00Z", "2024-07-15T06:00:00Z"},
		{"eligible long ago, window open now", "2024-06-01T00:00:00Z", "2024-06-15T03:00:00Z", 3,
			"2024-06-15T02:00:00Z", "2024-06-15T06:00:00Z"},
		{"eligible long ago, between windows", "2024-01-01T00:00:00Z", "2024-06-20T00:00:00Z", 0,
			"2024-07-15T02:00:00Z", "2024-07-15T06:00:00Z"},
		{"start moved up is rounded up to a whole second", "2024-06-12T04:00:00.25Z", "2024-06-11T00:00:00Z", 3,
			"2024-06-15T04:00:01Z", "2024-06-15T06:00:00Z"},
		{"eligible in the window's last fraction of a second: next window", "2024-06-12T05:59:59.5Z", "2024-06-11T00:00:00Z", 3,
			"2024-07-15T02:00:00Z", "2024-07-15T06:00:00Z"},
		{"eligible inside, already past now", "2024-06-12T03:00:00Z", "2024-06-15T05:00:00Z", 3,
			"2024-06-15T03:00:00Z", "2024-06-15T06:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, end := w.NextEligible(mustTime(t, tt.released), tt.days, mustTime(t, tt.now))
			if !start.Equal(mustTime(t, tt.start)) || !end.Equal(mustTime(t, tt.end)) {
				t.Errorf("NextEligible = %s, %s; want %s, %s",
					start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano), tt.start, tt.end)
			}
		})
	}
}

// testZones covers both hemispheres, 30-minute and 2-hour changes, changes
// at midnight, negative DST, and a skipped calendar day.
var testZones = []string{
	"UTC",
	"America/New_York",
	"Europe/London",
	"Australia/Sydney",
	"Australia/Lord_Howe",
	"Pacific/Apia",
	"America/Sao_Paulo",
	"America/Havana",
	"America/St_Johns",
	"Asia/Kathmandu",
	"Pacific/Chatham",
	"Antarctica/Troll",
	"Africa/Casablanca",
	"Europe/Dublin",
}

var testCrons = []string{
	"0 2 15 * *",
	"30 2 * * 0#2",
	"30 1 * * 0#1",
	"0 0 * * 0L",
	"30 0 1,15,L * *",
	"0 0 L * *",
	"59 23 31 * *",
	"0 2 29 * *",
	"0 2 * * 5#5",
	"45 1 * * 6L",
	"0 3 * * 0L",
	"30 2 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31 * *",
}

// TestNextMatchesReference compares Next with a slow, independent
// implementation: a per-day match predicate and a minute-by-minute scan of
// the zone's wall clock.
func TestNextMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lo := time.Date(1995, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	hi := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	durations := []int{1, 90, 1440, MaxDurationMinutes}
	n := 400
	if testing.Short() {
		n = 50
	}
	for i := 0; i < n; i++ {
		zone := testZones[rng.IntN(len(testZones))]
		expr := testCrons[rng.IntN(len(testCrons))]
		minutes := durations[rng.IntN(len(durations))]
		after := time.Unix(lo+rng.Int64N(hi-lo), rng.Int64N(1e9))
		w := mustWindow(t, expr, zone, minutes)
		start, end := w.Next(after)
		want := refFirstStartAfter(t, w, after.Add(-w.duration))
		if !start.Equal(want) || start.Format(time.RFC3339) != want.Format(time.RFC3339) {
			t.Errorf("%s: Next(%s) start = %s, reference %s", w, after.Format(time.RFC3339Nano),
				start.Format(time.RFC3339), want.Format(time.RFC3339))
		}
		if end.Sub(start) != w.duration {
			t.Errorf("%s: Next(%s) lasts %v", w, after, end.Sub(start))
		}
	}
}

// TestResolveGapsAndOverlaps checks resolve against the reference scan at
// every wall time around each DST change of several zones in 2024.
func TestResolveGapsAndOverlaps(t *testing.T) {
	for _, zone := range testZones {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, loc)
		for t0.Year() < 2025 {
			_, end := t0.ZoneBounds()
			if end.IsZero() {
				break
			}
			// Every 15 minutes from 3 hours before to 3 hours after the change.
			local := end.In(loc)
			for m := -180; m <= 180; m += 15 {
				wt := time.Date(local.Year(), local.Month(), local.Day(), local.Hour(), local.Minute()+m, 0, 0, time.UTC)
				got := resolve(loc, wt.Year(), wt.Month(), wt.Day(), wt.Hour(), wt.Minute(), 0, 0)
				want := refResolve(t, loc, wt.Year(), wt.Month(), wt.Day(), wt.Hour(), wt.Minute())
				if !got.Equal(want) {
					t.Errorf("%s %s: resolve = %s, reference %s", zone, wt.Format("2006-01-02 15:04"),
						got.Format(time.RFC3339), want.Format(time.RFC3339))
				}
			}
			t0 = end
		}
	}
}

// refMatches reports whether the cron starts a window on the date, decided
// from the calendar directly rather than by daysIn.
func refMatches(c Cron, y int, m time.Month, d int) bool {
	date := time.Date(y, m, d, 12, 0, 0, 0, time.UTC)
	lastOfMonth := date.AddDate(0, 0, 1).Month() != m
	if c.nth == 0 {
		return c.days&(1<<d) != 0 || (c.lastDay && lastOfMonth)
	}
	if date.Weekday() != c.weekday {
		return false
	}
	if c.nth < 0 {
		return date.AddDate(0, 0, 7).Month() != m
	}
	return (d-1)/7+1 == c.nth
}

// refResolve scans instants minute by minute for the first whose wall clock
// reads at least the wanted time: the first occurrence of an ambiguous time,
// or the instant after a gap.
func refResolve(t testing.TB, loc *time.Location, y int, m time.Month, d, hh, mm int) time.Time {
	t.Helper()
	wall := time.Date(y, m, d, hh, mm, 0, 0, time.UTC)
	for u := wall.Add(-15 * time.Hour); u.Before(wall.Add(27 * time.Hour)); u = u.Add(time.Minute) {
		l := u.In(loc)
		lw := time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), 0, time.UTC)
		if !lw.Before(wall) {
			return l
		}
	}
	t.Fatalf("reference: no instant reads %s in %s", wall.Format("2006-01-02 15:04"), loc)
	return time.Time{}
}

func refFirstStartAfter(t testing.TB, w Window, threshold time.Time) time.Time {
	t.Helper()
	l := threshold.In(w.loc)
	day := time.Date(l.Year(), l.Month(), l.Day()-2, 0, 0, 0, 0, time.UTC)
	for range 366 {
		y, m, d := day.Date()
		if refMatches(w.cron, y, m, d) {
			if s := refResolve(t, w.loc, y, m, d, w.cron.hour, w.cron.minute); s.After(threshold) {
				return s
			}
		}
		day = day.AddDate(0, 0, 1)
	}
	t.Fatalf("reference: no start within a year after %s", threshold)
	return time.Time{}
}

// TestWindowProperties checks invariants that relate Next, Open and the
// window boundaries at many instants.
func TestWindowProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	lo := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	hi := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	for i := 0; i < 2000; i++ {
		zone := testZones[rng.IntN(len(testZones))]
		expr := testCrons[rng.IntN(len(testCrons))]
		w := mustWindow(t, expr, zone, 1+rng.IntN(MaxDurationMinutes))
		at := time.Unix(lo+rng.Int64N(hi-lo), 0)
		s, e := w.Next(at)
		switch {
		case !e.After(at):
			t.Fatalf("%s: Next(%s) ends at %s, not after it", w, at, e)
		case w.Open(at) != !at.Before(s):
			t.Fatalf("%s: Open(%s) = %v with window [%s, %s)", w, at, w.Open(at), s, e)
		case !w.Open(s):
			t.Fatalf("%s: not open at its start %s", w, s)
		case s.Location() != w.loc:
			t.Fatalf("%s: start in %s", w, s.Location())
		}
		// Next(start) is this window, or an earlier one still open at start
		// when windows overlap.
		if s2, e2 := w.Next(s); s2.After(s) || !e2.After(s) || (w.duration < 24*time.Hour && !s2.Equal(s)) {
			t.Fatalf("%s: Next(start %s) = [%s, %s), want this window or one covering its start", w, s, s2, e2)
		}
		if s2, _ := w.Next(e.Add(-time.Nanosecond)); !s2.Equal(s) {
			t.Fatalf("%s: Next(end-1ns) starts %s, want %s", w, s2, s)
		}
		if s2, _ := w.Next(e); !s2.After(s) {
			t.Fatalf("%s: Next(end %s) starts %s, not after %s", w, e, s2, s)
		}
		if c, err := Parse(w.cron.String()); err != nil || c != w.cron {
			t.Fatalf("Parse(%q) = %v, %v; want %v", w.cron.String(), c, err, w.cron)
		}
	}
}
