package hostinfo

import "context"

// virtualization reports nothing on Windows: gopsutil v3 has no hypervisor
// detection there (it returns "not implemented"), so the hypervisor is
// reported as HypervisorUnknown without an error on every collection.
func virtualization(context.Context) (system, role string, err error) {
	return "", "", nil
}
