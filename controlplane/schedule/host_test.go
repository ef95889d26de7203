package schedule

import (
	"strings"
	"testing"
)

func TestHostZone(t *testing.T) {
	for _, tc := range []struct {
		reported, want string
		fellBack       bool
	}{
		{"Asia/Tokyo", "Asia/Tokyo", false},
		{"UTC", "UTC", false},
		{"", DefaultHostZone, true},
		{"Local", DefaultHostZone, true},
		{"Mars/Olympus_Mons", DefaultHostZone, true},
		{"../../etc/passwd", DefaultHostZone, true},
		{strings.Repeat("A", MaxZoneNameLen+1), DefaultHostZone, true},
	} {
		if z, fb := HostZone(tc.reported); z != tc.want || fb != tc.fellBack {
			t.Errorf("HostZone(%q) = %q, %v; want %q, %v", tc.reported, z, fb, tc.want, tc.fellBack)
		}
	}
	if z := ScheduleZone("Europe/Paris", "Asia/Tokyo"); z != "Europe/Paris" {
		t.Errorf("a fixed zone follows the schedule, got %q", z)
	}
	if z := ScheduleZone(HostTimezone, "Asia/Tokyo"); z != "Asia/Tokyo" {
		t.Errorf("a host schedule follows the host, got %q", z)
	}
	if _, err := NewWindow("0 2 3 * *", HostTimezone, 60); err == nil {
		t.Error(`NewWindow accepts "host" unresolved`)
	}
}

// TestHostWindowsAcrossDST reads one cron in each host's zone across the
// DST changes of 2027: the wall-clock rules of Window hold per host.
func TestHostWindowsAcrossDST(t *testing.T) {
	tests := []struct {
		name, hostZone, cron string
		minutes              int
		after                string
		start, end           string // in the host's zone
	}{
		// New York 2027: EST->EDT 14 March 02:00, EDT->EST 7 November 02:00.
		{"New York spring forward: 02:30 does not exist, opens 03:00 EDT", "America/New_York", "30 2 14 * *", 60,
			"2027-03-01T00:00:00Z", "2027-03-14T03:00:00-04:00", "2027-03-14T04:00:00-04:00"},
		{"New York the day after: 02:30 EDT", "America/New_York", "30 2 15 * *", 60,
			"2027-03-01T00:00:00Z", "2027-03-15T02:30:00-04:00", "2027-03-15T03:30:00-04:00"},
		{"New York fall back: 01:30 twice, the first (EDT)", "America/New_York", "30 1 7 * *", 60,
			"2027-11-01T00:00:00Z", "2027-11-07T01:30:00-04:00", "2027-11-07T01:30:00-05:00"},
		{"New York fall back: asked after the first 01:30, next month", "America/New_York", "30 1 7 * *", 60,
			"2027-11-07T06:30:00Z", "2027-12-07T01:30:00-05:00", "2027-12-07T02:30:00-05:00"},
		{"New York 02:00 on the fall-back day is EST", "America/New_York", "0 2 7 * *", 60,
			"2027-11-01T00:00:00Z", "2027-11-07T02:00:00-05:00", "2027-11-07T03:00:00-05:00"},
		// London 2027: GMT->BST 28 March 01:00, BST->GMT 31 October 02:00.
		{"London spring forward: 01:30 does not exist, opens 02:00 BST", "Europe/London", "30 1 28 * *", 60,
			"2027-03-01T00:00:00Z", "2027-03-28T02:00:00+01:00", "2027-03-28T03:00:00+01:00"},
		{"London fall back: 01:30 twice, the first (BST)", "Europe/London", "30 1 31 * *", 60,
			"2027-10-01T00:00:00Z", "2027-10-31T01:30:00+01:00", "2027-10-31T01:30:00Z"},
		// Sydney 2027: AEDT->AEST 4 April 03:00, AEST->AEDT 3 October 02:00.
		{"Sydney fall back in April: 02:30 twice, the first (AEDT)", "Australia/Sydney", "30 2 4 * *", 60,
			"2027-04-01T00:00:00Z", "2027-04-04T02:30:00+11:00", "2027-04-04T02:30:00+10:00"},
		{"Sydney spring forward in October: 02:30 does not exist", "Australia/Sydney", "30 2 3 * *", 60,
			"2027-09-20T00:00:00Z", "2027-10-03T03:00:00+11:00", "2027-10-03T04:00:00+11:00"},
		// No DST: the same UTC hour all year.
		{"Tokyo in March", "Asia/Tokyo", "0 2 14 * *", 60,
			"2027-03-01T00:00:00Z", "2027-03-14T02:00:00+09:00", "2027-03-14T03:00:00+09:00"},
		{"Tokyo in November", "Asia/Tokyo", "0 2 7 * *", 60,
			"2027-11-01T00:00:00Z", "2027-11-07T02:00:00+09:00", "2027-11-07T03:00:00+09:00"},
		// No zone: the default, UTC.
		{"a host without a zone", "", "30 2 14 * *", 60,
			"2027-03-01T00:00:00Z", "2027-03-14T02:30:00Z", "2027-03-14T03:30:00Z"},
		{"a host with an unknown zone", "Mars/Olympus_Mons", "30 1 7 * *", 60,
			"2027-11-01T00:00:00Z", "2027-11-07T01:30:00Z", "2027-11-07T02:30:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := mustWindow(t, tt.cron, ScheduleZone(HostTimezone, tt.hostZone), tt.minutes)
			start, end := w.Next(mustTime(t, tt.after))
			want, wantEnd := mustTime(t, tt.start), mustTime(t, tt.end)
			if !start.Equal(want) || !end.Equal(wantEnd) {
				t.Fatalf("Next(%s) = %s to %s, want %s to %s", tt.after, start, end, want, wantEnd)
			}
			// The wall clock reads the offsets written above.
			if got, off := start.Format("-07:00"), want.Format("-07:00"); got != off {
				t.Errorf("start's offset %s, want %s", got, off)
			}
			if !w.Open(start) || w.Open(end) || w.Open(start.Add(-1)) {
				t.Errorf("Open at the window's edges is wrong")
			}
		})
	}
}
