// Package minor makes the benchmarks' stand-in for a minor release: a copy
// of a binary changed as a small code change changes it, so bench/updater
// and bench/fleet measure patches of the same shape.
package minor

import (
	"bytes"
	"math/rand/v2"
)

// Edits and Inserted shape Release: small rewritten regions, and the
// bytes of new code inserted.
const (
	Edits    = 24
	Inserted = 6 << 10
)

// Release returns a copy of b changed as a minor release changes a binary:
// Edits small regions (4-64 bytes) rewritten at scattered places, three
// insertions of new bytes totalling Inserted, and one 512-byte region
// removed. It is deterministic for a seed; b must be larger than 1 KB.
//
// A real compiler also moves addresses throughout a binary when code is
// inserted, so real patches are larger than these.
func Release(b []byte, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	out := bytes.Clone(b)
	for range Edits {
		n := 4 + r.IntN(61)
		i := r.IntN(len(out) - n)
		for k := range n {
			out[i+k] = byte(r.Uint32())
		}
	}
	insert := func(at, n int) {
		ins := make([]byte, n)
		for k := range ins {
			ins[k] = byte(r.Uint32())
		}
		out = append(out[:at:at], append(ins, out[at:]...)...)
	}
	insert(len(out)/5, Inserted/2)
	insert(len(out)/2, Inserted/4)
	insert(len(out)*4/5, Inserted/4)
	cut := len(out) / 3
	return append(out[:cut:cut], out[cut+512:]...)
}
