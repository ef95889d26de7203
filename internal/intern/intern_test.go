package intern

import (
	"fmt"
	"sync"
	"testing"
	"unsafe"
)

// same reports whether a and b share their bytes.
func same(a, b string) bool {
	return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
}

func TestTableString(t *testing.T) {
	tests := []struct {
		name       string
		in         []string // looked up in order
		maxEntries int
		maxLen     int
		shared     bool // whether the last two lookups return one copy
		wantLen    int  // entries afterwards
	}{
		{"repeat", []string{"OPERATIONAL", "OPERATIONAL"}, 8, 16, true, 1},
		{"empty", []string{"", ""}, 8, 16, true, 0},
		{"at max length", []string{"0123456789", "0123456789"}, 8, 10, true, 1},
		{"too long", []string{"0123456789a", "0123456789a"}, 8, 10, false, 0},
		{"distinct", []string{"1.0.0", "1.1.0"}, 8, 16, false, 2},
		{"full table starts over", []string{"a", "b", "c", "d"}, 3, 16, false, 1},
		{"kept until full", []string{"a", "b", "c", "b", "b"}, 3, 16, true, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := New(tt.maxEntries, tt.maxLen)
			var out []string
			for _, s := range tt.in {
				// A fresh copy each time, as a row scan would give.
				got := tab.String(string([]byte(s)))
				if got != s {
					t.Fatalf("String(%q) = %q", s, got)
				}
				out = append(out, got)
			}
			a, b := out[len(out)-2], out[len(out)-1]
			if tt.shared && a != "" && !same(a, b) {
				t.Errorf("%q and %q: two copies, want one", a, b)
			}
			if !tt.shared && same(a, b) {
				t.Errorf("%q and %q: one copy, want two", a, b)
			}
			if got := tab.Len(); got != tt.wantLen {
				t.Errorf("Len() = %d, want %d", got, tt.wantLen)
			}
		})
	}
}

// TestTableCopies checks that the table keeps a copy of its own, not the
// caller's string, which may be a slice of a larger buffer.
func TestTableCopies(t *testing.T) {
	tab := New(8, 16)
	buf := []byte("SUCCESS and a long remainder")
	in := unsafe.String(&buf[0], 7)
	got := tab.String(in)
	if same(got, in) {
		t.Fatal("the table kept the caller's bytes")
	}
	buf[0] = 'X'
	if got != "SUCCESS" {
		t.Fatalf("interned value changed with the caller's buffer: %q", got)
	}
}

// TestTableStartsOver checks that a full table forgets its entries: a
// value seen before the start over gets a fresh copy.
func TestTableStartsOver(t *testing.T) {
	tab := New(2, 16)
	a := tab.String("a")
	tab.String("b")
	tab.String("c") // full: starts over with "c"
	if again := tab.String(string([]byte("a"))); same(a, again) {
		t.Fatal("a full table kept its entries")
	}
	if n := tab.Len(); n != 2 {
		t.Fatalf("Len() = %d, want 2 (c, a)", n)
	}
}

func TestTableBounded(t *testing.T) {
	tab := New(100, 32)
	for i := range 10000 {
		tab.String(fmt.Sprintf("host-%06d", i))
	}
	if n := tab.Len(); n > 100 {
		t.Fatalf("Len() = %d after many distinct values, want at most 100", n)
	}
}

func TestTableConcurrent(t *testing.T) {
	tab := New(16, 32)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				s := fmt.Sprintf("v%d", (i+g)%40)
				if got := tab.String(s); got != s {
					t.Errorf("String(%q) = %q", s, got)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := tab.Len(); n > 16 {
		t.Fatalf("Len() = %d, want at most 16", n)
	}
}

func TestOf(t *testing.T) {
	type status string
	a, b := Of(status([]byte("IN_PROGRESS"))), Of(status([]byte("IN_PROGRESS")))
	if a != "IN_PROGRESS" || !same(string(a), string(b)) {
		t.Fatalf("Of: %q and %q not one copy", a, b)
	}
}

func TestStringAllocs(t *testing.T) {
	tab := New(8, 16)
	tab.String("NORMAL")
	s := string([]byte("NORMAL"))
	if n := testing.AllocsPerRun(100, func() { tab.String(s) }); n != 0 {
		t.Fatalf("a hit allocates %v times, want 0", n)
	}
}
