//go:build !windows

package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestSyncDir: on Unix the directory is fsynced and a failure is reported.
func TestSyncDir(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Errorf("SyncDir: %v", err)
	}
	if err := SyncDir(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("SyncDir of a missing directory = %v, want ErrNotExist", err)
	}
}
