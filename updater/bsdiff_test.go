package updater

import (
	"bytes"
	"encoding/binary"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

var updatePatch = flag.Bool("update-patch", false, "regenerate testdata/*.bsdiff (needs the bzip2 command)")

// naiveBSDiff writes a valid BSDIFF40 patch from old to new with one
// control triple: add the byte-wise difference over the common length,
// then copy the rest verbatim. It is not bsdiff's clever diff, but bspatch
// (minio/selfupdate's patcher) applies it the same way.
func naiveBSDiff(t *testing.T, old, new []byte) []byte {
	n := min(len(old), len(new))
	diff := make([]byte, n)
	for i := range n {
		diff[i] = new[i] - old[i]
	}
	var ctrl bytes.Buffer
	for _, v := range []int64{int64(n), int64(len(new) - n), 0} {
		ctrl.Write(offtout(v))
	}
	cc, dc, ec := bzip2(t, ctrl.Bytes()), bzip2(t, diff), bzip2(t, new[n:])
	var p bytes.Buffer
	p.WriteString("BSDIFF40")
	p.Write(offtout(int64(len(cc))))
	p.Write(offtout(int64(len(dc))))
	p.Write(offtout(int64(len(new))))
	p.Write(cc)
	p.Write(dc)
	p.Write(ec)
	return p.Bytes()
}

func offtout(v int64) []byte {
	b := make([]byte, 8)
	neg := v < 0
	if neg {
		v = -v
	}
	binary.LittleEndian.PutUint64(b, uint64(v))
	if neg {
		b[7] |= 0x80
	}
	return b
}

func bzip2(t *testing.T, b []byte) []byte {
	cmd := exec.Command("bzip2", "-c")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bzip2: %v", err)
	}
	return out
}

// TestPatchFixture keeps testdata/agent-1.0.0-to-1.1.0.bsdiff in step with
// the two scripts it joins.
func TestPatchFixture(t *testing.T) {
	old, new := readFixture(t, "agent-1.0.0.sh"), readFixture(t, "agent-1.1.0.sh")
	p := filepath.Join("testdata", "agent-1.0.0-to-1.1.0.bsdiff")
	if *updatePatch {
		if err := os.WriteFile(p, naiveBSDiff(t, old, new), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "out")
	oldPath := filepath.Join(t.TempDir(), "old")
	if err := os.WriteFile(oldPath, old, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := applyBSDiff(oldPath, p, out, int64(len(new))); err != nil {
		t.Fatalf("apply fixture patch: %v", err)
	}
	got, _ := os.ReadFile(out)
	if !bytes.Equal(got, new) {
		t.Fatal("fixture patch does not turn agent-1.0.0.sh into agent-1.1.0.sh; rerun with -update-patch")
	}
	if err := applyBSDiff(oldPath, p, out, int64(len(new))+1); err == nil {
		t.Fatal("a patch announcing another size was applied")
	}
}
