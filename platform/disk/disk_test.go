package disk

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestFree(t *testing.T) {
	dir := t.TempDir()
	n, err := Free(dir)
	if err != nil || n == 0 {
		t.Fatalf("Free(%s) = %d, %v; want a positive size", dir, n, err)
	}
	// A path not created yet is judged by its parent.
	m, err := Free(filepath.Join(dir, "not", "yet", "there"))
	if err != nil || m == 0 {
		t.Fatalf("Free(missing path) = %d, %v", m, err)
	}
}

func TestIsFull(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"other", errors.New("boom"), false},
		{"not exist", os.ErrNotExist, false},
		{"ENOSPC wrapped in a PathError", fmt.Errorf("download: %w", &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}), isUnix},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsFull(tc.err); got != tc.want {
				t.Errorf("IsFull(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
