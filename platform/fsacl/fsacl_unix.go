//go:build !windows

package fsacl

import (
	"fmt"
	"os"
)

// MkdirPrivate creates dir and its missing parents with mode 0700. An
// existing directory's mode is left as it is (on Unix the packages and the
// systemd unit create the state dir 0700).
func MkdirPrivate(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create private directory: %w", err)
	}
	return nil
}

// RestrictFile makes path readable and writable by its owner only (0600).
func RestrictFile(path string) error {
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("restrict %s to its owner: %w", path, err)
	}
	return nil
}
