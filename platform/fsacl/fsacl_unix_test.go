//go:build !windows

package fsacl

import (
	"os"
	"path/filepath"
	"testing"
)

func TestModesOnUnix(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "nested")
	if err := MkdirPrivate(dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("state dir mode %v: group or others have access, want 0700", fi.Mode().Perm())
	}
	f := filepath.Join(dir, "client.json")
	if err := os.WriteFile(f, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := RestrictFile(f); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if err := RestrictFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("RestrictFile on a missing file succeeded")
	}
}
