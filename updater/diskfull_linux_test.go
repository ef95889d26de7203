package updater

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestFetchDiskFull downloads 3 MiB into a 1 MiB tmpfs: the error is
// ErrDiskFull (code disk-full), not a lost connection, and is not retried.
func TestFetchDiskFull(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("this test needs to mount a tmpfs (root with CAP_SYS_ADMIN): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	s := newSigner(t)
	srv := newArtifactServer(t)
	job := srv.job(t, s, "/a", randomBytes(t, 3<<20), meta("1.1.0"))
	u := newTestUpdater(t, []string{s.pubText()}, func(c *Config) { c.StateDir = dir })
	_, err := u.Fetch(t.Context(), job, Target{Version: "1.0.0"}, nil)
	if !errors.Is(err, ErrDiskFull) || Code(err) != "disk-full" {
		t.Fatalf("Fetch into a full disk: %v (code %s); want ErrDiskFull", err, Code(err))
	}
	if n := srv.count("/a"); n != 1 {
		t.Errorf("the artifact was requested %d times; a full disk is not retried", n)
	}
}
