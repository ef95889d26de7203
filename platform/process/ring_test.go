package process

import (
	"bytes"
	"strings"
	"testing"
)

func TestRing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		size   int
		writes []string
		want   string
	}{
		{"empty", 8, nil, ""},
		{"below the size", 8, []string{"abc", "de"}, "abcde"},
		{"exactly the size", 4, []string{"ab", "cd"}, "abcd"},
		{"wraps", 4, []string{"abc", "def"}, "cdef"},
		{"wraps many times", 5, []string{"12", "34", "56", "78", "9"}, "56789"},
		{"one write larger than the ring", 3, []string{"x", "abcdefg"}, "efg"},
		{"after a large write", 3, []string{"abcdefg", "hi"}, "ghi"},
		{"zero size keeps nothing", 0, []string{"abc"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRing(tc.size)
			for _, w := range tc.writes {
				if n, err := r.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if got := string(r.Bytes()); got != tc.want {
				t.Errorf("Bytes() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRingKeepsTheTailOfALongStream(t *testing.T) {
	r := NewRing(1000)
	var all bytes.Buffer
	for i := range 5000 {
		line := strings.Repeat(string(rune('a'+i%26)), i%37) + "\n"
		all.WriteString(line)
		r.Write([]byte(line))
	}
	want := all.Bytes()[all.Len()-1000:]
	if got := r.Bytes(); !bytes.Equal(got, want) {
		t.Errorf("the ring does not hold the stream's last 1000 bytes")
	}
	r.Reset()
	if got := r.Bytes(); len(got) != 0 {
		t.Errorf("after Reset: %q", got)
	}
}
