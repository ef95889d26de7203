package bsdiff

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestApply: the fixture (written by controlplane/delta's Diff, kept in
// step by its TestFixture) applies; every way a patch or its source can
// be wrong is refused or gives other bytes, never a panic or a longer
// file.
func TestApply(t *testing.T) {
	old, new, patch := fixture(t, "old.bin"), fixture(t, "new.bin"), fixture(t, "old-to-new.bsdiff")
	wrongSource := bytes.Clone(old)
	for i := 0; i < len(wrongSource); i += 97 {
		wrongSource[i] ^= 0x5a
	}
	badMagic := bytes.Clone(patch)
	copy(badMagic, "BSDIFF41")
	bigBlocks := bytes.Clone(patch)
	bigBlocks[15] = 0x01 // control block length near 2^56
	corruptBody := bytes.Clone(patch)
	for i := HeaderSize + 20; i < len(corruptBody); i += 7 {
		corruptBody[i] ^= 0xff
	}
	for _, tc := range []struct {
		name      string
		old       []byte
		patch     []byte
		want      int64
		wantErr   bool
		wantBytes bool // the output must equal new.bin
	}{
		{"valid patch", old, patch, int64(len(new)), false, true},
		{"truncated", old, patch[:len(patch)-30], int64(len(new)), true, false},
		{"header only", old, patch[:HeaderSize], int64(len(new)), true, false},
		{"shorter than a header", old, patch[:10], int64(len(new)), true, false},
		{"wrong new size", old, patch, int64(len(new)) + 1, true, false},
		{"bad magic", old, badMagic, int64(len(new)), true, false},
		{"blocks larger than the patch", old, bigBlocks, int64(len(new)), true, false},
		{"corrupt blocks", old, corruptBody, int64(len(new)), true, false},
		// bsdiff carries no checksum of its source: a wrong source gives
		// the right length but other bytes, which the caller's SHA-256
		// check of the result refuses.
		{"wrong source", wrongSource, patch, int64(len(new)), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := Apply(bytes.NewReader(tc.old), int64(len(tc.old)), bytes.NewReader(tc.patch), int64(len(tc.patch)), &out, tc.want)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Apply err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Errorf("error %v is not ErrCorrupt", err)
			}
			if int64(out.Len()) > tc.want {
				t.Errorf("wrote %d bytes, more than the %d announced", out.Len(), tc.want)
			}
			if got := bytes.Equal(out.Bytes(), new); got != tc.wantBytes {
				t.Errorf("output equals new.bin: %v, want %v", got, tc.wantBytes)
			}
		})
	}
}

// TestApplyBoundedMemory: applying a patch holds buffers, not the files.
// testdata/zeros-64mib.bsdiff (one control entry: copy 64 MiB of zeros from
// the extra block, which bzip2 squeezes to a few hundred bytes) builds a
// 64 MiB file through a writer that keeps nothing, allocating a fraction
// of that.
func TestApplyBoundedMemory(t *testing.T) {
	const size = 64 << 20
	patch := fixture(t, "zeros-64mib.bsdiff")
	var n countingDiscard
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := Apply(bytes.NewReader(nil), 0, bytes.NewReader(patch), int64(len(patch)), &n, size); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if n != size {
		t.Fatalf("wrote %d bytes, want %d", n, size)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/4 {
		t.Errorf("allocated %d bytes to build a %d-byte file; want a bounded amount", alloc, size)
	}
}

type countingDiscard int64

func (c *countingDiscard) Write(p []byte) (int, error) {
	*c += countingDiscard(len(p))
	return len(p), nil
}

// FuzzApply: no patch makes Apply panic or write more than it announced.
func FuzzApply(f *testing.F) {
	old, patch := fixture(f, "old.bin"), fixture(f, "old-to-new.bsdiff")
	f.Add(patch, int64(len(fixture(f, "new.bin"))))
	f.Add(patch[:40], int64(10))
	f.Fuzz(func(t *testing.T, p []byte, want int64) {
		if want < 0 || want > 1<<20 {
			return
		}
		var out bytes.Buffer
		_ = Apply(bytes.NewReader(old), int64(len(old)), bytes.NewReader(p), int64(len(p)), &out, want)
		if int64(out.Len()) > want {
			t.Fatalf("wrote %d bytes, more than %d", out.Len(), want)
		}
	})
}
