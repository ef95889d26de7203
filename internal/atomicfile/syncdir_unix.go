//go:build !windows

package atomicfile

import "os"

// SyncDir fsyncs a directory so that a rename, creation or unlink in it is
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}
