//go:build unix

package disk

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

func free(path string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	// Bavail: what an unprivileged writer may use; root's reserve is
	// not counted, so the answer errs on the safe side.
	return uint64(st.Bavail) * uint64(st.Bsize), nil // field types differ per OS
}

func isFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
