//go:build !linux

package hostinfo

import "context"

// virtualization reports nothing outside Linux: gopsutil v3 has no
// hypervisor detection on Windows or macOS (it answers with an error),
// so the hypervisor is reported as HypervisorUnknown, without an error on
// every collection.
func virtualization(context.Context) (system, role string, err error) {
	return "", "", nil
}
