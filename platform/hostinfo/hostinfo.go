// Package hostinfo collects the host facts that poolagent reports in every
// heartbeat (the SailPoint ManagedClientStatus host fields: hostname,
// internal_ip, os_type, os_version, hypervisor, and a few more the control
// plane uses to pick artifacts and to show operators what a host is).
//
// The facts come from gopsutil and the standard library; see docs/platform.md
// for where each one comes from on each OS. The I/O lives in source.go and the
// per-OS files; everything that turns raw readings into [Facts] is pure and
// table-tested.
//
// The daemon heartbeats every 30 s and must stay cheap, so use a [Collector]:
// it re-reads the facts that rarely change (OS, kernel, hypervisor, CPU
// count, memory, boot time) only once per TTL, and on every call reads just
// the hostname and the internal IP and derives the uptime from the cached
// boot time.
package hostinfo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Hypervisor values reported when gopsutil detects no virtualization system.
const (
	// HypervisorUnknown is reported when no virtualization system was
	// detected: either bare metal or a hypervisor gopsutil cannot recognise
	// (and always on Windows, where gopsutil has no detection). It is the
	// value the SailPoint seed uses.
	HypervisorUnknown = "unknown"
	// HypervisorNone is reported when the host is itself a virtualization
	// host (gopsutil role "host"), i.e. it runs on bare metal.
	HypervisorNone = "none"
)

// DefaultTTL is how long a [Collector] reuses the facts that rarely change
// when [CollectorOptions.TTL] is zero.
const DefaultTTL = 10 * time.Minute

// Facts are the host facts reported in a heartbeat. String fields are empty
// when a fact could not be read.
type Facts struct {
	// Hostname is the kernel's host name (os.Hostname).
	Hostname string
	// InternalIP is the primary non-loopback IPv4 address: the source
	// address of the default route, else the first address of the first up
	// non-loopback interface; empty when the host has none.
	InternalIP string
	// OSType is the short, lower-case OS name of the seed's os_type:
	// the distribution on Linux ("ubuntu", "flatcar", "rhel"...),
	// else the OS ("windows", "darwin").
	OSType string
	// OSName is gopsutil's platform verbatim, e.g. "ubuntu" or
	// "Microsoft Windows Server 2019 Datacenter".
	OSName string
	// OSFamily is gopsutil's platform family, e.g. "debian", "rhel", "Server".
	OSFamily string
	// OSVersion is the platform version, e.g. "22.04", "2345.3.1",
	// "10.0.17763.1234 Build 17763.1234" (the seed's os_version).
	OSVersion string
	// KernelVersion is the kernel release, e.g. "6.8.0-45-generic".
	KernelVersion string
	// Hypervisor is the virtualization system the host runs on ("kvm",
	// "vmware", "xen", "docker"...), [HypervisorNone] on a virtualization
	// host, or [HypervisorUnknown] (the seed's hypervisor).
	Hypervisor string
	// VirtualizationRole is gopsutil's role: "guest", "host" or empty.
	VirtualizationRole string
	// Arch is the machine architecture in Go's naming ("amd64", "arm64"),
	// from the kernel, falling back to the agent binary's GOARCH.
	Arch string
	// KernelArch is the kernel's own name for the architecture (uname -m),
	// e.g. "x86_64", "aarch64".
	KernelArch string
	// BootTime is when the host booted; zero if unknown.
	BootTime time.Time
	// UptimeSeconds is the time since BootTime when the facts were collected.
	UptimeSeconds uint64
	// CPUCount is the number of logical CPUs.
	CPUCount int
	// MemoryTotalBytes is the total physical memory.
	MemoryTotalBytes uint64
	// CollectedAt is when these facts were assembled.
	CollectedAt time.Time
}

// Platform returns a one-line description of the OS for logs and operator
// displays, e.g. "flatcar 2345.3.1 (kernel 5.10.25-flatcar, amd64)".
//
// It is not the seed's platform_version, which is the appliance platform
// generation and comes from the agent's configuration, not from the host.
func (f Facts) Platform() string {
	var b strings.Builder
	b.WriteString(firstNonEmpty(f.OSName, f.OSType, "unknown"))
	if f.OSVersion != "" {
		b.WriteString(" " + f.OSVersion)
	}
	var extra []string
	if f.KernelVersion != "" && f.KernelVersion != f.OSVersion {
		extra = append(extra, "kernel "+f.KernelVersion)
	}
	if f.Arch != "" {
		extra = append(extra, f.Arch)
	}
	if len(extra) > 0 {
		b.WriteString(" (" + strings.Join(extra, ", ") + ")")
	}
	return b.String()
}

// Collect reads every fact afresh. It is meant for one-off use (a CLI, a
// diagnostic dump); a daemon that collects repeatedly should keep a
// [Collector].
//
// Collection is best effort: the returned Facts hold whatever could be read,
// and the error (if any) joins every individual failure. Callers should
// report the facts and log the error rather than drop the heartbeat.
func Collect(ctx context.Context) (Facts, error) {
	return NewCollector(CollectorOptions{TTL: -1}).Collect(ctx)
}

// CollectorOptions configure a [Collector]. The zero value is ready to use.
type CollectorOptions struct {
	// TTL is how long the slowly changing facts are reused before being
	// read again. Zero means [DefaultTTL]; a negative TTL disables caching.
	TTL time.Duration
	// Now returns the current time; nil means time.Now. Tests use it.
	Now func() time.Time
}

// Collector collects [Facts], caching the slowly changing ones for a TTL.
// It is safe for concurrent use.
type Collector struct {
	ttl time.Duration
	now func() time.Time
	src source

	mu       sync.Mutex
	static   staticFacts
	cachedAt time.Time
	cached   bool
}

// NewCollector returns a Collector reading the real host.
func NewCollector(opts CollectorOptions) *Collector {
	return newCollector(opts, systemSource{})
}

func newCollector(opts CollectorOptions, src source) *Collector {
	c := &Collector{ttl: opts.TTL, now: opts.Now, src: src}
	if c.ttl == 0 {
		c.ttl = DefaultTTL
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// Invalidate drops the cached facts so that the next Collect reads them all
// again, e.g. after the agent learns that the host was upgraded.
func (c *Collector) Invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cached = false
}

// Collect returns the current facts. The slowly changing ones are read at
// most once per TTL; the hostname and the internal IP are read on every
// call, and the uptime is derived from the boot time.
//
// Collection is best effort, as for the package-level [Collect]. Errors from
// reading the slowly changing facts are returned only by the call that read
// them, so a fact that cannot be read on this host is logged once per TTL,
// not on every heartbeat.
func (c *Collector) Collect(ctx context.Context) (Facts, error) {
	if err := ctx.Err(); err != nil {
		return Facts{}, fmt.Errorf("collect host facts: %w", err)
	}
	var errs []error

	c.mu.Lock()
	now := c.now()
	if !c.cached || c.ttl < 0 || now.Sub(c.cachedAt) >= c.ttl {
		raw, err := c.src.static(ctx)
		if err != nil {
			errs = append(errs, err)
		}
		if ctx.Err() == nil {
			// Do not cache a read that was cut short by the caller.
			c.static = mapStatic(raw, runtime.GOOS, runtime.GOARCH)
			c.cachedAt = now
			c.cached = true
		} else {
			c.mu.Unlock()
			return Facts{}, fmt.Errorf("collect host facts: %w", ctx.Err())
		}
	}
	static := c.static
	c.mu.Unlock()

	hostname, err := c.src.hostname()
	if err != nil {
		errs = append(errs, fmt.Errorf("read hostname: %w", err))
	}
	ip := c.src.internalIP(ctx)

	f := assemble(static, hostname, ip, now)
	if err := errors.Join(errs...); err != nil {
		return f, fmt.Errorf("collect host facts (partial result): %w", err)
	}
	return f, nil
}

// rawStatic holds the slowly changing readings as the sources return them.
type rawStatic struct {
	OS                   string // gopsutil InfoStat.OS / runtime.GOOS
	Platform             string
	PlatformFamily       string
	PlatformVersion      string
	KernelVersion        string
	KernelArch           string
	VirtualizationSystem string
	VirtualizationRole   string
	BootTime             uint64 // Unix seconds; 0 if unknown
	CPUCount             int
	MemoryTotal          uint64
}

// staticFacts are the cached, already mapped slowly changing facts.
type staticFacts struct {
	OSType, OSName, OSFamily, OSVersion, KernelVersion string
	Hypervisor, VirtualizationRole                     string
	Arch, KernelArch                                   string
	BootTime                                           time.Time
	CPUCount                                           int
	MemoryTotal                                        uint64
}

// mapStatic turns raw readings into facts. goos and goarch are the agent
// binary's, used where the host readings are empty.
func mapStatic(r rawStatic, goos, goarch string) staticFacts {
	s := staticFacts{
		OSType:             osType(r.OS, r.Platform, goos),
		OSName:             strings.TrimSpace(r.Platform),
		OSFamily:           strings.TrimSpace(r.PlatformFamily),
		OSVersion:          strings.TrimSpace(r.PlatformVersion),
		KernelVersion:      strings.TrimSpace(r.KernelVersion),
		Hypervisor:         hypervisor(r.VirtualizationSystem, r.VirtualizationRole),
		VirtualizationRole: strings.ToLower(strings.TrimSpace(r.VirtualizationRole)),
		Arch:               goArch(r.KernelArch, goarch),
		KernelArch:         strings.TrimSpace(r.KernelArch),
		CPUCount:           r.CPUCount,
		MemoryTotal:        r.MemoryTotal,
	}
	if r.BootTime > 0 {
		s.BootTime = time.Unix(int64(r.BootTime), 0).UTC()
	}
	return s
}

// assemble combines cached and per-call facts.
func assemble(s staticFacts, hostname, ip string, now time.Time) Facts {
	f := Facts{
		Hostname:           strings.TrimSpace(hostname),
		InternalIP:         ip,
		OSType:             s.OSType,
		OSName:             s.OSName,
		OSFamily:           s.OSFamily,
		OSVersion:          s.OSVersion,
		KernelVersion:      s.KernelVersion,
		Hypervisor:         s.Hypervisor,
		VirtualizationRole: s.VirtualizationRole,
		Arch:               s.Arch,
		KernelArch:         s.KernelArch,
		BootTime:           s.BootTime,
		CPUCount:           s.CPUCount,
		MemoryTotalBytes:   s.MemoryTotal,
		CollectedAt:        now.UTC(),
	}
	if !s.BootTime.IsZero() && now.After(s.BootTime) {
		f.UptimeSeconds = uint64(now.Sub(s.BootTime) / time.Second)
	}
	return f
}

// osType returns the seed's os_type: the distribution on Linux, else the OS.
func osType(os, platform, goos string) string {
	os = strings.ToLower(strings.TrimSpace(os))
	if os == "" {
		os = goos
	}
	platform = strings.ToLower(strings.TrimSpace(platform))
	if os == "linux" && platform != "" {
		// gopsutil reports distributions as one lower-case word
		// ("ubuntu", "flatcar", "amazon"); keep only the first word in
		// case a future version reports a longer name.
		if i := strings.IndexAny(platform, " \t"); i > 0 {
			platform = platform[:i]
		}
		return platform
	}
	return os
}

// hypervisor maps gopsutil's virtualization system and role to the seed's
// hypervisor value.
func hypervisor(system, role string) string {
	system = strings.ToLower(strings.TrimSpace(system))
	role = strings.ToLower(strings.TrimSpace(role))
	switch {
	case role == "host":
		return HypervisorNone
	case system == "":
		return HypervisorUnknown
	default:
		return system
	}
}

// goArch maps a kernel architecture name (uname -m, or Windows'
// PROCESSOR_ARCHITECTURE as gopsutil reports it) to Go's name, falling back
// to the binary's own GOARCH when the kernel name is empty or unrecognised.
func goArch(kernelArch, fallback string) string {
	switch strings.ToLower(strings.TrimSpace(kernelArch)) {
	case "x86_64", "amd64", "x64":
		return "amd64"
	case "aarch64", "arm64", "aarch64_be", "armv8b", "armv8l":
		return "arm64"
	case "i386", "i486", "i586", "i686", "x86", "386":
		return "386"
	case "armv7l", "armv7", "armv6l", "arm":
		return "arm"
	case "ppc64le":
		return "ppc64le"
	case "s390x":
		return "s390x"
	case "riscv64":
		return "riscv64"
	default:
		return fallback
	}
}

// iface is the part of a network interface that pickInterfaceIP looks at.
type iface struct {
	Flags net.Flags
	Addrs []net.Addr
}

// pickInterfaceIP returns the first global unicast IPv4 address of the first
// up, non-loopback interface, in the order given; failing that, the first
// link-local one (169.254/16, e.g. an unconfigured DHCP client); else "".
func pickInterfaceIP(ifaces []iface) string {
	var linkLocal string
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		for _, a := range ifc.Addrs {
			ip := addrIP(a).To4()
			if ip == nil || ip.IsLoopback() || ip.IsUnspecified() || ip.IsMulticast() {
				continue
			}
			if ip.IsGlobalUnicast() {
				return ip.String()
			}
			if linkLocal == "" && ip.IsLinkLocalUnicast() {
				linkLocal = ip.String()
			}
		}
	}
	return linkLocal
}

// usableRouteIP reports whether ip, the local address the kernel chose for
// the default route, is worth reporting.
func usableRouteIP(ip net.IP) bool {
	ip = ip.To4()
	return ip != nil && !ip.IsLoopback() && !ip.IsUnspecified() && ip.IsGlobalUnicast()
}

func addrIP(a net.Addr) net.IP {
	switch v := a.(type) {
	case *net.IPNet:
		return v.IP
	case *net.IPAddr:
		return v.IP
	default:
		return nil
	}
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
