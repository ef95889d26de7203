package delta

import (
	"bytes"
	"context"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/minio/selfupdate"

	"github.com/poolagent/poolagent/internal/bsdiff"
)

var updateFixture = flag.Bool("update-fixture", false, "rewrite internal/bsdiff/testdata from Diff")

// edit returns a copy of b with a few scattered small changes, an
// insertion and a truncation: what a minor release does to a binary.
func edit(b []byte, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	out := bytes.Clone(b)
	for range 20 {
		i := r.IntN(len(out) - 8)
		copy(out[i:], []byte{byte(r.Uint32()), byte(r.Uint32()), 0xff})
	}
	mid := len(out) / 2
	out = append(out[:mid], append([]byte("a new function's bytes, inserted"), out[mid:]...)...)
	return out[:len(out)-100]
}

// binaryLike is pseudo-random bytes with repeated runs, a stand-in for
// machine code (incompressible enough that a patch beats gzip).
func binaryLike(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, 0, n)
	for len(b) < n {
		if len(b) > 64 && r.IntN(4) == 0 {
			start := r.IntN(len(b) - 32)
			b = append(b, b[start:start+32]...)
			continue
		}
		for range 16 {
			b = append(b, byte(r.Uint32()))
		}
	}
	return b[:n]
}

func diffFile(t *testing.T, old, new []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "patch")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := Diff(context.Background(), old, new, f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func apply(t *testing.T, old []byte, patchPath string, want int64) ([]byte, error) {
	t.Helper()
	pb, err := os.ReadFile(patchPath)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = bsdiff.Apply(bytes.NewReader(old), int64(len(old)), bytes.NewReader(pb), int64(len(pb)), &out, want)
	return out.Bytes(), err
}

// TestDiffRoundTrip: the streaming patcher turns old into new with every
// patch Diff writes, and a minor change gives a small patch.
func TestDiffRoundTrip(t *testing.T) {
	base := binaryLike(300<<10, 1)
	for _, tc := range []struct {
		name     string
		old, new []byte
		maxRatio float64 // patch size / new size
	}{
		{"minor release", base, edit(base, 7), 0.1},
		{"identical", base, base, 0.01},
		{"empty old", nil, []byte("hello, world"), 100},
		{"empty new", base[:1000], nil, 100},
		{"unrelated", binaryLike(50<<10, 3), binaryLike(60<<10, 4), 1.2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := diffFile(t, tc.old, tc.new)
			got, err := apply(t, tc.old, p, int64(len(tc.new)))
			if err != nil {
				t.Fatalf("apply: %v", err)
			}
			if !bytes.Equal(got, tc.new) {
				t.Fatalf("the patch builds %d bytes that differ from new (%d bytes)", len(got), len(tc.new))
			}
			// The format is minio/selfupdate's too.
			pf, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer pf.Close()
			var viaSelfupdate bytes.Buffer
			if err := selfupdate.NewBSDiffPatcher().Patch(bytes.NewReader(tc.old), &viaSelfupdate, pf); err != nil || !bytes.Equal(viaSelfupdate.Bytes(), tc.new) {
				t.Fatalf("minio/selfupdate's patcher: %v (output equal: %v)", err, bytes.Equal(viaSelfupdate.Bytes(), tc.new))
			}
			st, _ := os.Stat(p)
			if r := float64(st.Size()) / float64(max(len(tc.new), 1)); r > tc.maxRatio {
				t.Errorf("patch is %d bytes, %.3f of new; want at most %.3f", st.Size(), r, tc.maxRatio)
			}
		})
	}
}

// TestDiffCancelled: a cancelled context stops Diff.
func TestDiffCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f, err := os.Create(filepath.Join(t.TempDir(), "p"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Diff(ctx, binaryLike(1<<10, 1), binaryLike(1<<10, 2), f); err == nil {
		t.Fatal("Diff ignored a cancelled context")
	}
}

// TestFixture keeps internal/bsdiff/testdata (whose tests cannot import
// this package) a patch that Diff writes.
func TestFixture(t *testing.T) {
	dir := filepath.Join("..", "..", "internal", "bsdiff", "testdata")
	old, new := binaryLike(40<<10, 11), edit(binaryLike(40<<10, 11), 12)
	if *updateFixture {
		p := diffFile(t, old, new)
		pb, _ := os.ReadFile(p)
		for name, b := range map[string][]byte{"old.bin": old, "new.bin": new, "old-to-new.bsdiff": pb} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, want := range map[string][]byte{"old.bin": old, "new.bin": new} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s is stale (%v); rerun with -update-fixture", name, err)
		}
	}
	got, err := apply(t, old, filepath.Join(dir, "old-to-new.bsdiff"), int64(len(new)))
	if err != nil || !bytes.Equal(got, new) {
		t.Fatalf("the fixture patch does not build new.bin (%v); rerun with -update-fixture", err)
	}
}
