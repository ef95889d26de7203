package schedule

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseValid(t *testing.T) {
	tests := []struct {
		expr, canonical string
	}{
		{"0 2 15 * *", "0 2 15 * *"},
		{"0 2 * * 2#1", "0 2 * * 2#1"},
		{"00 02 15 * *", "0 2 15 * *"},
		{"59 23 31 * *", "59 23 31 * *"},
		{"0 2 15,1,15 * *", "0 2 1,15 * *"},
		{"0 2 L * *", "0 2 L * *"},
		{"0 2 l,31 * *", "0 2 31,L * *"},
		{"0 2 * * 7#1", "0 2 * * 0#1"},
		{"0 2 * * 0#5", "0 2 * * 0#5"},
		{"0 2 * * tue#1", "0 2 * * 2#1"},
		{"0 2 * * SUN#5", "0 2 * * 0#5"},
		{"0 2 * * 5L", "0 2 * * 5L"},
		{"0 2 * * friL", "0 2 * * 5L"},
		{"0 2 * * 7l", "0 2 * * 0L"},
		{"  0\t2 15 *   * ", "0 2 15 * *"},
	}
	for _, tt := range tests {
		c, err := Parse(tt.expr)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.expr, err)
			continue
		}
		if got := c.String(); got != tt.canonical {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.expr, got, tt.canonical)
		}
		back, err := Parse(c.String())
		if err != nil || back != c {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", c.String(), back, err, c)
		}
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		expr, field string
	}{
		{"", ""},
		{"0 2 15 *", ""},
		{"0 2 15 * * *", ""},
		{"0 0 2 15 * * 2026", ""},
		{"garbage", ""},
		{"*/5 2 15 * *", FieldMinute},
		{"60 2 15 * *", FieldMinute},
		{"-1 2 15 * *", FieldMinute},
		{"+5 2 15 * *", FieldMinute},
		{"1-5 2 15 * *", FieldMinute},
		{"0,30 2 15 * *", FieldMinute},
		{"000 2 15 * *", FieldMinute},
		{"0 24 15 * *", FieldHour},
		{"0 * 15 * *", FieldHour},
		{"0 1-3 15 * *", FieldHour},
		{"0 2 0 * *", FieldDayOfMonth},
		{"0 2 32 * *", FieldDayOfMonth},
		{"0 2 1-5 * *", FieldDayOfMonth},
		{"0 2 1,,2 * *", FieldDayOfMonth},
		{"0 2 1, * *", FieldDayOfMonth},
		{"0 2 ? * *", FieldDayOfMonth},
		{"0 2 15W * *", FieldDayOfMonth},
		{"0 2 LW * *", FieldDayOfMonth},
		{"0 2 */2 * *", FieldDayOfMonth},
		{"0 2 * * *", FieldDayOfMonth},
		{"0 2 15 1 *", FieldMonth},
		{"0 2 15 JAN *", FieldMonth},
		{"0 2 15 */2 *", FieldMonth},
		{"0 2 15 * 2#1", FieldDayOfWeek},
		{"0 2 15 * 2", FieldDayOfWeek},
		{"0 2 * * 2", FieldDayOfWeek},
		{"0 2 * * MON", FieldDayOfWeek},
		{"0 2 * * 2#0", FieldDayOfWeek},
		{"0 2 * * 2#6", FieldDayOfWeek},
		{"0 2 * * 8#1", FieldDayOfWeek},
		{"0 2 * * #1", FieldDayOfWeek},
		{"0 2 * * L", FieldDayOfWeek},
		{"0 2 * * 2#", FieldDayOfWeek},
		{"0 2 * * 2#1#1", FieldDayOfWeek},
		{"0 2 * * 2#1,3#1", FieldDayOfWeek},
		{"0 2 * * MON-FRI", FieldDayOfWeek},
		{"0 2 * * MONDAY#1", FieldDayOfWeek},
		{"0 2 * * ?", FieldDayOfWeek},
	}
	for _, tt := range tests {
		_, err := Parse(tt.expr)
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q) error = %v, want a *ParseError", tt.expr, err)
			continue
		}
		if pe.Field != tt.field {
			t.Errorf("Parse(%q) field = %q, want %q (%v)", tt.expr, pe.Field, tt.field, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, allowedForms) {
			t.Errorf("Parse(%q) error %q does not list the allowed forms", tt.expr, msg)
		}
		if tt.field != "" && !strings.Contains(msg, tt.field+" ") {
			t.Errorf("Parse(%q) error %q does not name the field %s", tt.expr, msg, tt.field)
		}
	}
}

func TestParseTooLong(t *testing.T) {
	expr := "0 2 " + strings.Repeat("1,", maxExprLen) + "1 * *"
	_, err := Parse(expr)
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("Parse(long) error = %v, want a *ParseError", err)
	}
	if strings.Contains(err.Error(), "1,1,1") {
		t.Errorf("error echoes the over-long expression: %.120s...", err)
	}
}

func TestParseErrorMessage(t *testing.T) {
	_, err := Parse("*/5 2 15 * *")
	want := `invalid cron expression "*/5 2 15 * *": minute "*/5": must be a single number 0-59; allowed forms: `
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error = %v, want prefix %q", err, want)
	}
}

func TestDaysIn(t *testing.T) {
	tests := []struct {
		expr  string
		year  int
		month time.Month
		want  []int
	}{
		{"0 0 31 * *", 2024, time.February, nil},
		{"0 0 31 * *", 2024, time.March, []int{31}},
		{"0 0 29 * *", 2023, time.February, nil},
		{"0 0 29 * *", 2024, time.February, []int{29}},
		{"0 0 29 * *", 1900, time.February, nil}, // divisible by 100: common year
		{"0 0 29 * *", 2000, time.February, []int{29}},
		{"0 0 L * *", 2023, time.February, []int{28}},
		{"0 0 L * *", 2024, time.February, []int{29}},
		{"0 0 L * *", 2024, time.April, []int{30}},
		{"0 0 L * *", 2024, time.December, []int{31}},
		{"0 0 30,L * *", 2024, time.April, []int{30}},
		{"0 0 30,L * *", 2024, time.May, []int{30, 31}},
		{"0 0 30,L * *", 2023, time.February, []int{28}},
		{"0 0 15,1 * *", 2024, time.May, []int{1, 15}},
		// May 2024 starts on a Wednesday and has five Fridays; April 2024 has four.
		{"0 0 * * 5#5", 2024, time.May, []int{31}},
		{"0 0 * * 5#5", 2024, time.April, nil},
		{"0 0 * * 3#1", 2024, time.May, []int{1}},
		{"0 0 * * 2#1", 2024, time.May, []int{7}},
		{"0 0 * * 2#5", 2024, time.April, []int{30}},
		{"0 0 * * 5L", 2024, time.May, []int{31}},
		{"0 0 * * 5L", 2024, time.April, []int{26}},
		{"0 0 * * 1L", 2024, time.February, []int{26}},
		{"0 0 * * 4L", 2024, time.February, []int{29}},
		{"0 0 * * 0#5", 2015, time.February, nil},
	}
	for _, tt := range tests {
		c, err := Parse(tt.expr)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.expr, err)
		}
		got := c.daysIn(nil, tt.year, tt.month)
		if !equalInts(got, tt.want) {
			t.Errorf("%q in %d-%02d: days %v, want %v", tt.expr, tt.year, tt.month, got, tt.want)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestMonthGapBound checks, over the whole 400-year Gregorian cycle, that
// every single-day schedule (lists only add days) has a start within the
// months Next scans: it begins one month before the threshold's month and
// the next start can be up to the largest gap after that month.
func TestMonthGapBound(t *testing.T) {
	var exprs []string
	for d := 1; d <= 31; d++ {
		exprs = append(exprs, "0 0 "+strconv.Itoa(d)+" * *")
	}
	exprs = append(exprs, "0 0 L * *")
	for wd := 0; wd < 7; wd++ {
		for n := 1; n <= 5; n++ {
			exprs = append(exprs, "0 0 * * "+strconv.Itoa(wd)+"#"+strconv.Itoa(n))
		}
		exprs = append(exprs, "0 0 * * "+strconv.Itoa(wd)+"L")
	}
	worst, worstExpr := 0, ""
	for _, expr := range exprs {
		c, err := Parse(expr)
		if err != nil {
			t.Fatal(err)
		}
		last := -1
		for i := 0; i < 2*4800; i++ { // two cycles so the wrap-around gap counts
			if len(c.daysIn(nil, 2000+i/12, time.Month(i%12+1))) == 0 {
				continue
			}
			if last >= 0 && i-last > worst {
				worst, worstExpr = i-last, expr
			}
			last = i
		}
	}
	if worst > maxSearchMonths-2 {
		t.Errorf("%q goes %d months without a window; Next scans only %d", worstExpr, worst, maxSearchMonths)
	}
	if worst != 4 {
		t.Errorf("largest gap is %d months (%q); update the comment on maxSearchMonths", worst, worstExpr)
	}
}

// TestOktaCronExamples holds every cron expression Okta documents for
// AutoUpdateSchedule.cron. The seeds' field tables cut the sentence off
// after "For example,"; Okta's API reference completes it with
// "0 8 ? * 6#3" (the third Friday at 08:00, Quartz style). The rest are
// the two forms the seeds describe ("the day of the month or the
// nth-day-of-the-week"), written with ? as Okta's example does and
// without. Each must parse, and the first window after a fixed instant is
// checked.
func TestOktaCronExamples(t *testing.T) {
	// Wednesday 2026-03-04 00:00 UTC.
	after := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		expr, canonical string
		next            string // first window start after `after`, UTC
	}{
		{"0 8 ? * 6#3", "0 8 * * 5#3", "2026-03-20T08:00:00Z"},   // Okta's example: third Friday
		{"0 8 ? * FRI#3", "0 8 * * 5#3", "2026-03-20T08:00:00Z"}, // the same by name
		{"0 8 * * 5#3", "0 8 * * 5#3", "2026-03-20T08:00:00Z"},   // the same, Unix numbering
		{"0 8 * * 6#3", "0 8 * * 6#3", "2026-03-21T08:00:00Z"},   // Unix 6 is Saturday
		{"0 8 15 * ?", "0 8 15 * *", "2026-03-15T08:00:00Z"},     // day of the month, Quartz style
		{"0 8 15 * *", "0 8 15 * *", "2026-03-15T08:00:00Z"},
		{"0 8 ? * 1#1", "0 8 * * 0#1", "2026-04-05T08:00:00Z"}, // Quartz 1 is Sunday
		{"0 8 ? * 7L", "0 8 * * 6L", "2026-03-28T08:00:00Z"},   // Quartz 7 is Saturday
		{"0 2 * * 2#1", "0 2 * * 2#1", "2026-04-07T02:00:00Z"}, // the examples poolserver's own errors give
		{"0 2 15 * *", "0 2 15 * *", "2026-03-15T02:00:00Z"},
	}
	for _, tt := range tests {
		c, err := Parse(tt.expr)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.expr, err)
			continue
		}
		if got := c.String(); got != tt.canonical {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.expr, got, tt.canonical)
		}
		w, err := NewWindow(tt.expr, "UTC", 120)
		if err != nil {
			t.Errorf("NewWindow(%q): %v", tt.expr, err)
			continue
		}
		start, end := w.Next(after)
		if got := start.UTC().Format(time.RFC3339); got != tt.next {
			t.Errorf("%q: next window starts %s, want %s", tt.expr, got, tt.next)
		}
		if end.Sub(start) != 120*time.Minute {
			t.Errorf("%q: window %s to %s, want 120 minutes", tt.expr, start, end)
		}
	}
	// ? is "no value": it does not name a day by itself, and Quartz
	// weekdays are 1-7.
	for _, expr := range []string{"0 8 ? * ?", "0 8 ? * *", "0 8 ? * 0#1", "0 8 ? * 8#1", "0 8 15 * 6#3"} {
		if _, err := Parse(expr); err == nil {
			t.Errorf("Parse(%q) succeeded; want an error", expr)
		}
	}
}
