// Package schedule turns an Okta AutoUpdateSchedule (cron, timezone,
// duration, delay) into maintenance windows: the instants between which an
// agent may swap its binaries.
//
// Okta limits the cron expression to two forms, a day of the month
// ("0 2 15 * *", the 15th at 02:00) or the nth weekday of the month
// ("0 2 * * 2#1", the first Tuesday at 02:00); Parse accepts exactly those,
// also in the Quartz style of Okta's own example ("0 8 ? * 6#3", the third
// Friday at 08:00), where "?" marks the day field left without a value.
// Windows are computed in the schedule's IANA time zone with explicit rules
// for daylight-saving changes and short months (see Window).
//
// Everything here is pure: the current time is always passed in, so the
// rollout engine can use an injectable clock and tests are deterministic.
package schedule

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxExprLen bounds what Parse reads and echoes back in errors. The longest
// useful expression ("59 23 1,2,...,31,L * *") is under 100 bytes.
const maxExprLen = 256

// allowedForms ends every parse error: the API returns the message verbatim
// to the operator, who should not need other documentation to fix the input.
const allowedForms = `allowed forms: "MINUTE HOUR DAY * *" with DAY 1-31, a list such as 1,15, or L for the last day of the month (e.g. "0 2 15 * *"), ` +
	`or "MINUTE HOUR * * WEEKDAY#N" for the Nth weekday of the month, WEEKDAY 0-7 (0 and 7 are Sunday) or SUN-SAT, N 1-5, or WEEKDAYL for the last one (e.g. "0 2 * * 2#1"); ` +
	`the unused day field may be ? instead of * (Quartz style), and then WEEKDAY is 1-7 for Sunday to Saturday (e.g. "0 8 ? * 6#3", the third Friday); ` +
	`MINUTE 0-59, HOUR 0-23`

// Field names used in ParseError.Field.
const (
	FieldMinute     = "minute"
	FieldHour       = "hour"
	FieldDayOfMonth = "day-of-month"
	FieldMonth      = "month"
	FieldDayOfWeek  = "day-of-week"
)

// ParseError reports why a cron expression was rejected. Its message names
// the offending field and lists the accepted forms, so it can be shown to an
// operator as is (for example in Okta's errorCauses).
type ParseError struct {
	Expr   string // the expression, or "" when it was too long to echo
	Field  string // one of the Field constants, or "" for the whole expression
	Value  string // the offending field's text, if Field is set
	Reason string // what is wrong, in words
}

// Error implements error.
func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString("invalid cron expression")
	if e.Expr != "" {
		fmt.Fprintf(&b, " %q", e.Expr)
	}
	b.WriteString(": ")
	if e.Field != "" {
		fmt.Fprintf(&b, "%s %q: ", e.Field, e.Value)
	}
	b.WriteString(e.Reason)
	b.WriteString("; ")
	b.WriteString(allowedForms)
	return b.String()
}

// Cron is a parsed schedule expression: a start time of day on either a set
// of days of the month or the nth (or last) given weekday of every month.
// Cron values are comparable with ==. The zero Cron matches no day; obtain
// one from Parse.
type Cron struct {
	minute, hour int
	days         uint32 // day-of-month form: bit d set for day d (1-31)
	lastDay      bool   // day-of-month form: L, the last day of the month
	weekday      time.Weekday
	nth          int // nth-weekday form: 1-5, or -1 for the last; 0 in day-of-month form
}

// Parse parses a five-field cron expression "minute hour day-of-month month
// day-of-week" restricted to Okta's two forms:
//
//	M H DAYS * *     DAYS is a comma list of 1-31 and L (last day of the month)
//	M H * * W#N      the Nth weekday W of the month; W is 0-7 (0 and 7 are
//	                 Sunday) or SUN-SAT, N is 1-5
//	M H * * WL       the last weekday W of the month
//
// The day field that names no day may be "?" ("no value") instead of "*",
// as in Quartz and in Okta's example "0 8 ? * 6#3": "M H DAYS * ?",
// "M H ? * W#N", "M H ? * WL". An expression with "?" follows Quartz's
// weekday numbers, 1-7 for Sunday to Saturday, so "0 8 ? * 6#3" is the
// third Friday (and "0 8 * * 6#3" the third Saturday); names mean the same
// in both styles.
//
// A day that a month lacks is skipped in that month: "0 2 31 * *" has no
// window in February, April, June, September or November, "0 2 29 * *" none in
// February of common years, and "0 2 * * 5#5" none in months with only four
// Fridays. Use L for "the last day, whatever the month". Fields are separated
// by white space; names are case-insensitive. Anything else, including
// steps, ranges, month values and expressions setting both day fields, is a
// *ParseError.
func Parse(expr string) (Cron, error) {
	if len(expr) > maxExprLen {
		return Cron{}, &ParseError{Reason: fmt.Sprintf("expression is %d bytes long; at most %d are accepted", len(expr), maxExprLen)}
	}
	fields := strings.Fields(expr)
	if len(fields) != 5 {
		return Cron{}, &ParseError{Expr: expr, Reason: fmt.Sprintf("want 5 fields (minute hour day-of-month month day-of-week), got %d", len(fields))}
	}
	fail := func(field, value, reason string) (Cron, error) {
		return Cron{}, &ParseError{Expr: expr, Field: field, Value: value, Reason: reason}
	}

	var c Cron
	var ok bool
	if c.minute, ok = number(fields[0], 0, 59); !ok {
		return fail(FieldMinute, fields[0], "must be a single number 0-59")
	}
	if c.hour, ok = number(fields[1], 0, 23); !ok {
		return fail(FieldHour, fields[1], "must be a single number 0-23")
	}
	if fields[3] != "*" {
		return fail(FieldMonth, fields[3], "must be * (every month)")
	}
	dom, dow := fields[2], fields[4]
	quartz := dom == "?" || dow == "?"
	noDom, noDow := dom == "*" || dom == "?", dow == "*" || dow == "?"
	switch {
	case noDom && noDow:
		if dow == "?" {
			return fail(FieldDayOfWeek, dow, "one of day-of-month and day-of-week must name a day")
		}
		return fail(FieldDayOfMonth, dom, "one of day-of-month and day-of-week must name a day")
	case !noDom && !noDow:
		return fail(FieldDayOfWeek, dow, fmt.Sprintf("cannot be combined with day-of-month %q; put * or ? in one of them", dom))
	case !noDom:
		for item := range strings.SplitSeq(dom, ",") {
			if strings.EqualFold(item, "L") {
				c.lastDay = true
				continue
			}
			d, ok := number(item, 1, 31)
			if !ok {
				return fail(FieldDayOfMonth, dom, fmt.Sprintf("item %q must be a day 1-31 or L", item))
			}
			c.days |= 1 << d
		}
	default:
		wd, n, ok := nthWeekday(dow, quartz)
		switch {
		case !ok && quartz:
			return fail(FieldDayOfWeek, dow, "must be WEEKDAY#N or WEEKDAYL with WEEKDAY 1-7 (Sunday to Saturday, as day-of-month is ?) or SUN-SAT (e.g. 6#3, FRI#3, 6L)")
		case !ok:
			return fail(FieldDayOfWeek, dow, "must be WEEKDAY#N or WEEKDAYL (e.g. 2#1, TUE#1, 5L)")
		}
		c.weekday, c.nth = wd, n
	}
	return c, nil
}

// number parses a plain decimal in [lo, hi]: no sign, no spaces, at most
// two digits, so "+5" and "0x1" fail instead of being read loosely.
func number(s string, lo, hi int) (int, bool) {
	if s == "" || len(s) > 2 {
		return 0, false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, false
	}
	return n, true
}

var weekdayNames = [...]string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}

// nthWeekday parses "W#N" or "WL"; nth is -1 for the last. A numeric W is
// 0-7 with 0 and 7 Sunday, or with quartz 1-7 for Sunday to Saturday.
func nthWeekday(s string, quartz bool) (time.Weekday, int, bool) {
	var w, n string
	if i := strings.IndexByte(s, '#'); i >= 0 {
		w, n = s[:i], s[i+1:]
	} else if l := len(s); l > 1 && (s[l-1] == 'L' || s[l-1] == 'l') {
		w, n = s[:l-1], "L"
	} else {
		return 0, 0, false
	}
	wd := -1
	if quartz {
		if d, ok := number(w, 1, 7); ok {
			wd = d - 1
		}
	} else if d, ok := number(w, 0, 7); ok {
		wd = d % 7
	}
	if wd < 0 {
		for i, name := range weekdayNames {
			if strings.EqualFold(w, name) {
				wd = i
			}
		}
	}
	if wd < 0 {
		return 0, 0, false
	}
	if n == "L" {
		return time.Weekday(wd), -1, true
	}
	nth, ok := number(n, 1, 5)
	if !ok {
		return 0, 0, false
	}
	return time.Weekday(wd), nth, true
}

// String returns the canonical form of c, which Parse maps back to c:
// weekdays as numbers 0-6, days ascending without repeats, L last.
func (c Cron) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %d ", c.minute, c.hour)
	if c.nth != 0 {
		b.WriteString("* * ")
		b.WriteString(strconv.Itoa(int(c.weekday)))
		if c.nth < 0 {
			b.WriteByte('L')
		} else {
			b.WriteByte('#')
			b.WriteString(strconv.Itoa(c.nth))
		}
		return b.String()
	}
	first := true
	for d := 1; d <= 31; d++ {
		if c.days&(1<<d) != 0 {
			if !first {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(d))
			first = false
		}
	}
	if c.lastDay {
		if !first {
			b.WriteByte(',')
		}
		b.WriteByte('L')
	}
	b.WriteString(" * *")
	return b.String()
}

// daysIn appends to dst the days of the given month on which c starts a
// window, in ascending order.
func (c Cron) daysIn(dst []int, year int, month time.Month) []int {
	dim := daysInMonth(year, month)
	if c.nth != 0 {
		var d int
		if c.nth > 0 {
			first := time.Date(year, month, 1, 0, 0, 0, 0, time.UTC).Weekday()
			d = 1 + (int(c.weekday)-int(first)+7)%7 + 7*(c.nth-1)
		} else {
			last := time.Date(year, month, dim, 0, 0, 0, 0, time.UTC).Weekday()
			d = dim - (int(last)-int(c.weekday)+7)%7
		}
		if d <= dim {
			dst = append(dst, d)
		}
		return dst
	}
	for d := 1; d <= dim; d++ {
		if c.days&(1<<d) != 0 || (c.lastDay && d == dim) {
			dst = append(dst, d)
		}
	}
	return dst
}

func daysInMonth(year int, month time.Month) int {
	return time.Date(year, month+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
