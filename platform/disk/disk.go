// Package disk answers two questions the updater and the daemon ask about
// a host's file systems: how much space is free where a file will be
// written (Free), and whether an error means the disk is full (IsFull).
// The system calls are per OS: statfs on Unix, GetDiskFreeSpaceEx on
// Windows.
package disk

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Free returns the bytes available to poolagent on the file system that
// holds path. A path that does not exist yet is judged by its nearest
// existing parent (where it would be created).
func Free(path string) (uint64, error) {
	p, err := existing(path)
	if err != nil {
		return 0, err
	}
	n, err := free(p)
	if err != nil {
		return 0, fmt.Errorf("free space of %s: %w", p, err)
	}
	return n, nil
}

// existing returns path or its nearest existing parent.
func existing(path string) (string, error) {
	p, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("free space of %s: %w", path, err)
	}
	for {
		_, err := os.Stat(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("free space of %s: %w", path, err)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return "", fmt.Errorf("free space of %s: no existing parent directory", path)
		}
		p = parent
	}
}

// IsFull reports whether err says the disk (or the user's quota) is full:
// ENOSPC or EDQUOT on Unix, ERROR_DISK_FULL or ERROR_HANDLE_DISK_FULL on
// Windows.
func IsFull(err error) bool {
	return err != nil && isFull(err)
}
