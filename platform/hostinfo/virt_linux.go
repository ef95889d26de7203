package hostinfo

import (
	"context"

	"github.com/shirou/gopsutil/v3/host"
)

// virtualization asks gopsutil which virtualization system the host runs
// under, from /proc and /sys (Xen, KVM, VirtualBox, VMware, Hyper-V via
// DMI, and containers: Docker, LXC, systemd-nspawn...).
func virtualization(ctx context.Context) (system, role string, err error) {
	return host.VirtualizationWithContext(ctx)
}
