// Package intern keeps one shared copy of short strings that repeat across
// many rows, so that a fleet's worth of rows read from the store holds each
// pool id, agent type, version, status or message once rather than once per
// row. At 300,000 hosts a duplicated 8-byte status is 2.4 MB of string data
// alone; interned it is one string.
//
// A Table is bounded: it interns strings of at most its maximum length, and
// a full table starts over (it forgets every entry and refills from the
// next lookups), so a column that turns out to be of high cardinality (a
// message naming each host, say) costs at most the table's bound and never
// grows it without limit. Strings already handed out stay valid: starting
// over only means a later lookup of the same value stores a fresh copy.
//
// A Table is safe for concurrent use; a hit takes a read lock and
// allocates nothing.
package intern

import (
	"strings"
	"sync"
)

// The bounds of the package's shared table (String, Of): about 4,096
// distinct values of at most 256 bytes, so at most about 1 MB of strings.
const (
	DefaultMaxEntries = 4096
	DefaultMaxLen     = 256
)

// Table is a bounded set of canonical strings. Its zero value is not
// usable: create one with New.
type Table struct {
	maxEntries, maxLen int
	mu                 sync.RWMutex
	m                  map[string]string
}

// New returns a table that interns strings of at most maxLen bytes and
// starts over once it holds maxEntries of them (both at least 1).
func New(maxEntries, maxLen int) *Table {
	maxEntries, maxLen = max(maxEntries, 1), max(maxLen, 1)
	return &Table{maxEntries: maxEntries, maxLen: maxLen, m: make(map[string]string)}
}

// String returns the table's copy of s, adding a copy of s if it has none
// (a copy, so that s may be a slice of a larger buffer without keeping it
// alive). The empty string and strings longer than the table's maximum
// length are returned as they are.
func (t *Table) String(s string) string {
	if s == "" || len(s) > t.maxLen {
		return s
	}
	t.mu.RLock()
	c, ok := t.m[s]
	t.mu.RUnlock()
	if ok {
		return c
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.m[s]; ok {
		return c
	}
	if len(t.m) >= t.maxEntries {
		t.m = make(map[string]string, len(t.m))
	}
	c = strings.Clone(s)
	t.m[c] = c
	return c
}

// Len returns the number of strings the table holds.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}

var shared = New(DefaultMaxEntries, DefaultMaxLen)

// String returns the shared table's copy of s (see Table.String).
func String(s string) string { return shared.String(s) }

// Of is String for string types (okta.AgentType, statuses and the like).
func Of[S ~string](s S) S { return S(shared.String(string(s))) }
