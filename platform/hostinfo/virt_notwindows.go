//go:build !windows

package hostinfo

import (
	"context"

	"github.com/shirou/gopsutil/v3/host"
)

// virtualization asks gopsutil which virtualization system the host runs
// under (on Linux from /proc and /sys; on macOS from sysctl).
func virtualization(ctx context.Context) (system, role string, err error) {
	return host.VirtualizationWithContext(ctx)
}
