// Package atomicfile replaces a file's content so that a crash leaves the
// old or the new content, never a torn file: write a temporary file in the
// same directory, fsync it, close it, rename it over the target, fsync the
// directory. Every step's error is returned.
//
// Directory fsync is Unix-only: on Windows a directory cannot be opened for
// FlushFileBuffers without backup privileges, and NTFS journals the rename
// itself, so SyncDir does nothing there.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces path with data, which ends up with exactly mode (the umask
// does not apply).
func Write(path string, data []byte, mode os.FileMode) error {
	return WriteWith(path, data, mode, nil)
}

// WriteWith is Write with prepare, when not nil, called on the temporary
// file's name before anything is written to it: an ACL it applies is
// carried to path by the rename, so the data is never readable under a
// wider one.
func WriteWith(path string, data []byte, mode os.FileMode, prepare func(tmpName string) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if prepare != nil {
		if err := prepare(tmp.Name()); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return SyncDir(dir)
}
