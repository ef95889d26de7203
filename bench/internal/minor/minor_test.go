package minor

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestRelease: the result has the size the edits give, differs from the
// original, keeps most of it, and is the same for the same seed.
func TestRelease(t *testing.T) {
	for _, n := range []int{4 << 10, 1 << 20} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rand.Uint32())
		}
		orig := bytes.Clone(b)
		got := Release(b, 7)
		if want := n + Inserted - 512; len(got) != want {
			t.Fatalf("%d bytes: got %d bytes, want %d", n, len(got), want)
		}
		if !bytes.Equal(b, orig) {
			t.Fatalf("%d bytes: Release changed its input", n)
		}
		if bytes.Equal(got[:n], b) {
			t.Fatalf("%d bytes: nothing changed", n)
		}
		if again := Release(b, 7); !bytes.Equal(got, again) {
			t.Fatalf("%d bytes: two calls with one seed differ", n)
		}
		if other := Release(b, 8); bytes.Equal(got, other) {
			t.Fatalf("%d bytes: two seeds give the same release", n)
		}
		// The first fifth is the original but for the scattered edits.
		same := 0
		for i := range n / 5 {
			if got[i] == b[i] {
				same++
			}
		}
		if same < n/5-Edits*64 {
			t.Fatalf("%d bytes: only %d of the first %d bytes kept", n, same, n/5)
		}
	}
}
