package hostinfo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"

	"github.com/shirou/gopsutil/v3/cpu"
	"github.com/shirou/gopsutil/v3/host"
	"github.com/shirou/gopsutil/v3/mem"
)

// source is the I/O behind a Collector; tests substitute a fake.
type source interface {
	// static reads the slowly changing facts. It returns what it could
	// read together with the joined errors of what it could not.
	static(ctx context.Context) (rawStatic, error)
	// hostname returns the host name.
	hostname() (string, error)
	// internalIP returns the primary non-loopback IPv4 address or "".
	internalIP(ctx context.Context) string
}

// systemSource reads the real host through gopsutil and the standard library.
type systemSource struct{}

func (systemSource) static(ctx context.Context) (rawStatic, error) {
	r := rawStatic{OS: runtime.GOOS}
	var errs []error

	platform, family, version, err := host.PlatformInformationWithContext(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("read OS platform and version: %w", err))
	}
	r.Platform, r.PlatformFamily, r.PlatformVersion = platform, family, version

	if r.KernelVersion, err = host.KernelVersionWithContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("read kernel version: %w", err))
	}
	if r.KernelArch, err = host.KernelArch(); err != nil {
		errs = append(errs, fmt.Errorf("read kernel architecture: %w", err))
	}
	if r.VirtualizationSystem, r.VirtualizationRole, err = virtualization(ctx); err != nil {
		errs = append(errs, fmt.Errorf("detect hypervisor: %w", err))
	}
	if r.BootTime, err = host.BootTimeWithContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("read boot time: %w", err))
	}
	if r.CPUCount, err = cpu.CountsWithContext(ctx, true); err != nil || r.CPUCount <= 0 {
		if err == nil {
			err = errors.New("no CPUs reported")
		}
		errs = append(errs, fmt.Errorf("count logical CPUs (reporting the CPUs usable by this process instead): %w", err))
		r.CPUCount = runtime.NumCPU()
	}
	if vm, err := mem.VirtualMemoryWithContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("read total memory: %w", err))
	} else {
		r.MemoryTotal = vm.Total
	}
	return r, errors.Join(errs...)
}

func (systemSource) hostname() (string, error) {
	return os.Hostname()
}

// routeProbeAddr is a TEST-NET-1 address (RFC 5737): never answered, and
// only used to ask the kernel which local address the default route would
// use. Connecting a UDP socket sends no packet.
const routeProbeAddr = "192.0.2.1:9"

func (systemSource) internalIP(ctx context.Context) string {
	if ip := defaultRouteIP(ctx); ip != "" {
		return ip
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return ""
	}
	list := make([]iface, 0, len(ifs))
	for _, ni := range ifs {
		addrs, err := ni.Addrs()
		if err != nil {
			continue
		}
		list = append(list, iface{Flags: ni.Flags, Addrs: addrs})
	}
	return pickInterfaceIP(list)
}

// defaultRouteIP returns the local IPv4 address the kernel selects for the
// default route, or "" when there is no IPv4 default route. It works the same
// way on Linux, Windows and macOS and needs no privileges.
func defaultRouteIP(ctx context.Context) string {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp4", routeProbeAddr)
	if err != nil {
		return ""
	}
	defer conn.Close()
	ua, ok := conn.LocalAddr().(*net.UDPAddr)
	if !ok || !usableRouteIP(ua.IP) {
		return ""
	}
	return ua.IP.To4().String()
}
