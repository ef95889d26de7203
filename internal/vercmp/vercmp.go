// Package vercmp compares the version strings that agents and releases carry.
//
// Versions in a fleet are not all semver: the seeds show "1.2.3", "345" and
// "415_583_79.0.0". Compare splits a version into runs of digits and runs of
// other characters and compares them pairwise: digit runs numerically, other
// runs lexically, so "1.10.0" > "1.9.2" and "2" > "1.99". A leading "v" is
// ignored. A pre-release suffix after "-" sorts before the plain version
// ("1.2.0-rc1" < "1.2.0"); build metadata after "+" is ignored.
package vercmp

import (
	"strings"
)

// Compare returns -1 when a < b, 0 when they are equal and +1 when a > b.
func Compare(a, b string) int {
	a, apre := split(a)
	b, bpre := split(b)
	if c := compareParts(a, b); c != 0 {
		return c
	}
	switch {
	case apre == bpre:
		return 0
	case apre == "":
		return 1
	case bpre == "":
		return -1
	}
	return compareParts(apre, bpre)
}

// Valid reports whether s looks like a version: non-empty, at most 128
// bytes, starting with a digit (after an optional "v") and made only of
// letters, digits and ". _ - +".
func Valid(s string) bool {
	s = strings.TrimPrefix(s, "v")
	if s == "" || len(s) > 128 || s[0] < '0' || s[0] > '9' {
		return false
	}
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r == '.' || r == '_' || r == '-' || r == '+':
		default:
			return false
		}
	}
	return true
}

func split(v string) (main, pre string) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	if i := strings.IndexByte(v, '+'); i >= 0 {
		v = v[:i]
	}
	if i := strings.IndexByte(v, '-'); i >= 0 {
		return v[:i], v[i+1:]
	}
	return v, ""
}

func compareParts(a, b string) int {
	for a != "" || b != "" {
		var pa, pb string
		pa, a = next(a)
		pb, b = next(b)
		if c := comparePart(pa, pb); c != 0 {
			return c
		}
	}
	return 0
}

// next returns the next run of digits or of letters, skipping separators.
func next(s string) (part, rest string) {
	s = strings.TrimLeft(s, "._-")
	if s == "" {
		return "", ""
	}
	digit := isDigit(s[0])
	i := 1
	for i < len(s) && isDigit(s[i]) == digit && !isSep(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

func comparePart(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == "":
		// "1.0" == "1.0.0"; "1.0" < "1.0.1".
		if strings.Trim(b, "0") == "" {
			return 0
		}
		return -1
	case b == "":
		if strings.Trim(a, "0") == "" {
			return 0
		}
		return 1
	}
	ad, bd := isDigit(a[0]), isDigit(b[0])
	switch {
	case ad && bd:
		a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
		if len(a) != len(b) {
			if len(a) < len(b) {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	case ad:
		return 1 // numbers sort after words: "1.0.1" > "1.0.beta"
	case bd:
		return -1
	}
	return strings.Compare(a, b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isSep(c byte) bool   { return c == '.' || c == '_' || c == '-' }
