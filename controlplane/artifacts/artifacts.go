// Package artifacts keeps poolserver's release files, named by their
// SHA-256: in the data dir (DataDir) or in an S3-compatible object store
// (S3). The control plane declares the interface it needs; both types
// satisfy it.
//
// The store is not a trust boundary: agents verify every byte (size,
// SHA-256, minisign signature against their own pinned keys) whatever
// served it.
package artifacts

import (
	"errors"
	"regexp"
)

// ErrNotFound is returned for an artifact the store does not hold.
var ErrNotFound = errors.New("artifact not in the store")

var hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// checkKey refuses anything but a lowercase hex SHA-256: keys become file
// names and object keys.
func checkKey(sha string) error {
	if !hexSHA256.MatchString(sha) {
		return errors.New("artifact key is not a lowercase hex SHA-256")
	}
	return nil
}
