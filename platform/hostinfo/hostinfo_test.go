package hostinfo

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestOSType(t *testing.T) {
	tests := []struct {
		name, os, platform, goos, want string
	}{
		{"flatcar", "linux", "flatcar", "linux", "flatcar"},
		{"ubuntu upper case", "linux", "Ubuntu", "linux", "ubuntu"},
		{"multi-word distribution keeps first word", "linux", "Red Hat Enterprise", "linux", "red"},
		{"linux without platform", "linux", "", "linux", "linux"},
		{"windows uses the OS, not the product name", "windows", "Microsoft Windows Server 2019 Datacenter", "windows", "windows"},
		{"darwin", "darwin", "darwin", "darwin", "darwin"},
		{"empty OS falls back to GOOS", "", "", "freebsd", "freebsd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := osType(tt.os, tt.platform, tt.goos); got != tt.want {
				t.Errorf("osType(%q, %q, %q) = %q, want %q", tt.os, tt.platform, tt.goos, got, tt.want)
			}
		})
	}
}

func TestHypervisor(t *testing.T) {
	tests := []struct {
		system, role, want string
	}{
		{"", "", HypervisorUnknown},
		{"kvm", "guest", "kvm"},
		{"VMware", "guest", "vmware"},
		{"docker", "guest", "docker"},
		{"kvm", "host", HypervisorNone},
		{"", "host", HypervisorNone},
		{" xen ", "guest", "xen"},
	}
	for _, tt := range tests {
		if got := hypervisor(tt.system, tt.role); got != tt.want {
			t.Errorf("hypervisor(%q, %q) = %q, want %q", tt.system, tt.role, got, tt.want)
		}
	}
}

func TestGoArch(t *testing.T) {
	tests := []struct {
		kernel, fallback, want string
	}{
		{"x86_64", "arm64", "amd64"},
		{"AMD64", "arm64", "amd64"}, // Windows' PROCESSOR_ARCHITECTURE
		{"aarch64", "amd64", "arm64"},
		{"arm64", "amd64", "arm64"}, // macOS uname -m
		{"i686", "amd64", "386"},
		{"armv7l", "amd64", "arm"},
		{"", "amd64", "amd64"},
		{"mips64", "riscv64", "riscv64"},
	}
	for _, tt := range tests {
		if got := goArch(tt.kernel, tt.fallback); got != tt.want {
			t.Errorf("goArch(%q, %q) = %q, want %q", tt.kernel, tt.fallback, got, tt.want)
		}
	}
}

func ipnet(s string) net.Addr {
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	n.IP = ip
	return n
}

func TestPickInterfaceIP(t *testing.T) {
	up := net.FlagUp | net.FlagBroadcast
	lo := net.FlagUp | net.FlagLoopback
	tests := []struct {
		name   string
		ifaces []iface
		want   string
	}{
		{"none", nil, ""},
		{"only loopback", []iface{{lo, []net.Addr{ipnet("127.0.0.1/8")}}}, ""},
		{"skips loopback and down", []iface{
			{lo, []net.Addr{ipnet("127.0.0.1/8")}},
			{net.FlagBroadcast, []net.Addr{ipnet("10.9.9.9/24")}},
			{up, []net.Addr{ipnet("10.0.2.64/24")}},
		}, "10.0.2.64"},
		{"skips IPv6 on the same interface", []iface{
			{up, []net.Addr{ipnet("fe80::1/64"), ipnet("2001:db8::5/64"), ipnet("192.168.1.20/24")}},
		}, "192.168.1.20"},
		{"prefers global over link-local", []iface{
			{up, []net.Addr{ipnet("169.254.10.1/16")}},
			{up, []net.Addr{ipnet("172.16.0.4/12")}},
		}, "172.16.0.4"},
		{"link-local as last resort", []iface{
			{up, []net.Addr{ipnet("169.254.10.1/16")}},
		}, "169.254.10.1"},
		{"IPAddr form", []iface{
			{up, []net.Addr{&net.IPAddr{IP: net.ParseIP("10.1.2.3")}}},
		}, "10.1.2.3"},
		{"IPv6 only host", []iface{
			{up, []net.Addr{ipnet("2001:db8::5/64")}},
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pickInterfaceIP(tt.ifaces); got != tt.want {
				t.Errorf("pickInterfaceIP() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestUsableRouteIP(t *testing.T) {
	tests := []struct {
		ip   string
		want bool
	}{
		{"10.0.0.5", true},
		{"127.0.0.1", false},
		{"0.0.0.0", false},
		{"169.254.1.1", false},
		{"2001:db8::1", false},
	}
	for _, tt := range tests {
		if got := usableRouteIP(net.ParseIP(tt.ip)); got != tt.want {
			t.Errorf("usableRouteIP(%s) = %v, want %v", tt.ip, got, tt.want)
		}
	}
}

func TestMapStaticAndAssemble(t *testing.T) {
	boot := time.Date(2021, 5, 12, 18, 0, 0, 0, time.UTC)
	now := boot.Add(26*time.Hour + 500*time.Millisecond)
	tests := []struct {
		name     string
		raw      rawStatic
		goos     string
		goarch   string
		want     Facts
		platform string
	}{
		{
			name: "flatcar VA as in the seed",
			raw: rawStatic{OS: "linux", Platform: "flatcar", PlatformFamily: "", PlatformVersion: "2345.3.1",
				KernelVersion: "5.4.92-flatcar", KernelArch: "x86_64", BootTime: uint64(boot.Unix()),
				CPUCount: 4, MemoryTotal: 8 << 30},
			goos: "linux", goarch: "amd64",
			want: Facts{Hostname: "va-1", InternalIP: "10.0.2.64", OSType: "flatcar", OSName: "flatcar",
				OSVersion: "2345.3.1", KernelVersion: "5.4.92-flatcar", Hypervisor: "unknown",
				Arch: "amd64", KernelArch: "x86_64", BootTime: boot, UptimeSeconds: 26 * 3600,
				CPUCount: 4, MemoryTotalBytes: 8 << 30, CollectedAt: now},
			platform: "flatcar 2345.3.1 (kernel 5.4.92-flatcar, amd64)",
		},
		{
			name: "windows server on vmware (no detection)",
			raw: rawStatic{OS: "windows", Platform: "Microsoft Windows Server 2019 Datacenter",
				PlatformFamily: "Server", PlatformVersion: "10.0.17763 Build 17763",
				KernelVersion: "10.0.17763 Build 17763", KernelArch: "x86_64", CPUCount: 2},
			goos: "windows", goarch: "amd64",
			want: Facts{Hostname: "ad-conn-01", InternalIP: "10.0.5.187", OSType: "windows",
				OSName: "Microsoft Windows Server 2019 Datacenter", OSFamily: "Server",
				OSVersion: "10.0.17763 Build 17763", KernelVersion: "10.0.17763 Build 17763",
				Hypervisor: "unknown", Arch: "amd64", KernelArch: "x86_64", CPUCount: 2, CollectedAt: now},
			platform: "Microsoft Windows Server 2019 Datacenter 10.0.17763 Build 17763 (amd64)",
		},
		{
			name: "ubuntu KVM guest, arm64",
			raw: rawStatic{OS: "linux", Platform: "ubuntu", PlatformFamily: "debian", PlatformVersion: "22.04",
				KernelVersion: "6.8.0-45-generic", KernelArch: "aarch64", VirtualizationSystem: "kvm",
				VirtualizationRole: "guest", BootTime: uint64(boot.Unix())},
			goos: "linux", goarch: "arm64",
			want: Facts{Hostname: "ldap-1", InternalIP: "", OSType: "ubuntu", OSName: "ubuntu", OSFamily: "debian",
				OSVersion: "22.04", KernelVersion: "6.8.0-45-generic", Hypervisor: "kvm",
				VirtualizationRole: "guest", Arch: "arm64", KernelArch: "aarch64", BootTime: boot,
				UptimeSeconds: 26 * 3600, CollectedAt: now},
			platform: "ubuntu 22.04 (kernel 6.8.0-45-generic, arm64)",
		},
		{
			name:     "nothing readable",
			raw:      rawStatic{},
			goos:     "linux",
			goarch:   "amd64",
			want:     Facts{OSType: "linux", Hypervisor: "unknown", Arch: "amd64", CollectedAt: now},
			platform: "linux (amd64)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := assemble(mapStatic(tt.raw, tt.goos, tt.goarch), tt.want.Hostname, tt.want.InternalIP, now)
			if got != tt.want {
				t.Errorf("facts mismatch\n got: %+v\nwant: %+v", got, tt.want)
			}
			if p := got.Platform(); p != tt.platform {
				t.Errorf("Platform() = %q, want %q", p, tt.platform)
			}
		})
	}
}

func TestAssembleBootInFuture(t *testing.T) {
	// A clock stepped backwards after boot must not produce a huge uptime.
	boot := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	f := assemble(staticFacts{BootTime: boot}, "h", "", boot.Add(-time.Hour))
	if f.UptimeSeconds != 0 {
		t.Errorf("UptimeSeconds = %d, want 0", f.UptimeSeconds)
	}
}

// fakeSource counts reads and returns canned values.
type fakeSource struct {
	staticCalls, hostnameCalls, ipCalls int
	raw                                 rawStatic
	staticErr, hostErr                  error
	host, ip                            string
}

func (f *fakeSource) static(context.Context) (rawStatic, error) {
	f.staticCalls++
	return f.raw, f.staticErr
}
func (f *fakeSource) hostname() (string, error)         { f.hostnameCalls++; return f.host, f.hostErr }
func (f *fakeSource) internalIP(context.Context) string { f.ipCalls++; return f.ip }

// fakeClock is a settable clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestCollectorCachesSlowFacts(t *testing.T) {
	boot := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: boot.Add(time.Hour)}
	src := &fakeSource{raw: rawStatic{OS: "linux", Platform: "ubuntu", BootTime: uint64(boot.Unix())}, host: "a", ip: "10.0.0.1"}
	c := newCollector(CollectorOptions{TTL: 5 * time.Minute, Now: clock.now}, src)
	ctx := context.Background()

	steps := []struct {
		advance    time.Duration
		host, ip   string
		wantStatic int
		wantUptime uint64
		invalidate bool
		changeOSTo string
		wantOSType string
	}{
		{advance: 0, host: "a", ip: "10.0.0.1", wantStatic: 1, wantUptime: 3600, wantOSType: "ubuntu"},
		// Within the TTL: only hostname and IP are re-read; uptime still advances.
		{advance: 30 * time.Second, host: "b", ip: "10.0.0.2", wantStatic: 1, wantUptime: 3630, changeOSTo: "debian", wantOSType: "ubuntu"},
		{advance: 4 * time.Minute, host: "b", ip: "10.0.0.2", wantStatic: 1, wantUptime: 3870, wantOSType: "ubuntu"},
		// TTL reached: the slow facts are read again.
		{advance: 30 * time.Second, host: "b", ip: "", wantStatic: 2, wantUptime: 3900, wantOSType: "debian"},
		{advance: time.Second, host: "b", ip: "", wantStatic: 2, wantUptime: 3901, changeOSTo: "flatcar", wantOSType: "debian"},
		// Invalidate forces a re-read inside the TTL.
		{advance: time.Second, host: "b", ip: "", wantStatic: 3, wantUptime: 3902, invalidate: true, wantOSType: "flatcar"},
	}
	for i, s := range steps {
		clock.t = clock.t.Add(s.advance)
		src.host, src.ip = s.host, s.ip
		if s.invalidate {
			c.Invalidate()
		}
		f, err := c.Collect(ctx)
		if err != nil {
			t.Fatalf("step %d: Collect: %v", i, err)
		}
		if src.staticCalls != s.wantStatic {
			t.Errorf("step %d: static reads = %d, want %d", i, src.staticCalls, s.wantStatic)
		}
		if src.hostnameCalls != i+1 || src.ipCalls != i+1 {
			t.Errorf("step %d: hostname/IP reads = %d/%d, want %d", i, src.hostnameCalls, src.ipCalls, i+1)
		}
		if f.Hostname != s.host || f.InternalIP != s.ip {
			t.Errorf("step %d: hostname/IP = %q/%q, want %q/%q", i, f.Hostname, f.InternalIP, s.host, s.ip)
		}
		if f.UptimeSeconds != s.wantUptime {
			t.Errorf("step %d: uptime = %d, want %d", i, f.UptimeSeconds, s.wantUptime)
		}
		if f.OSType != s.wantOSType {
			t.Errorf("step %d: OSType = %q, want %q", i, f.OSType, s.wantOSType)
		}
		if s.changeOSTo != "" {
			src.raw.Platform = s.changeOSTo
		}
	}
}

func TestCollectorPartialErrors(t *testing.T) {
	clock := &fakeClock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	errKernel := errors.New("read kernel version: permission denied")
	errHost := errors.New("uname failed")
	src := &fakeSource{raw: rawStatic{OS: "linux", Platform: "ubuntu"}, staticErr: errKernel, hostErr: errHost, ip: "10.0.0.1"}
	c := newCollector(CollectorOptions{TTL: time.Minute, Now: clock.now}, src)

	f, err := c.Collect(context.Background())
	if !errors.Is(err, errKernel) || !errors.Is(err, errHost) {
		t.Fatalf("first Collect error = %v, want both the static and the hostname error", err)
	}
	if f.OSType != "ubuntu" || f.InternalIP != "10.0.0.1" {
		t.Errorf("partial facts lost: %+v", f)
	}

	// The static error was reported once; within the TTL only the
	// per-call hostname error is reported again.
	_, err = c.Collect(context.Background())
	if errors.Is(err, errKernel) {
		t.Errorf("cached static error reported again: %v", err)
	}
	if !errors.Is(err, errHost) {
		t.Errorf("second Collect error = %v, want the hostname error", err)
	}
	src.hostErr = nil
	if _, err := c.Collect(context.Background()); err != nil {
		t.Errorf("third Collect error = %v, want nil", err)
	}
}

func TestCollectorNegativeTTLDisablesCache(t *testing.T) {
	clock := &fakeClock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	src := &fakeSource{}
	c := newCollector(CollectorOptions{TTL: -1, Now: clock.now}, src)
	for range 3 {
		if _, err := c.Collect(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if src.staticCalls != 3 {
		t.Errorf("static reads = %d, want 3", src.staticCalls)
	}
}

func TestCollectorCancelledContext(t *testing.T) {
	src := &fakeSource{}
	c := newCollector(CollectorOptions{}, src)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Collect(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Collect error = %v, want context.Canceled", err)
	}
	if src.staticCalls != 0 {
		t.Errorf("static reads = %d after cancellation, want 0", src.staticCalls)
	}
}

// TestCollectRealHost reads this machine. Only facts every supported host
// has are asserted; the IP and hypervisor depend on the machine's setup.
func TestCollectRealHost(t *testing.T) {
	f, err := Collect(t.Context())
	if err != nil {
		// Best effort by design: log, but the essentials must be there.
		t.Logf("Collect reported partial failures: %v", err)
	}
	t.Logf("facts: %+v", f)
	t.Logf("platform: %s", f.Platform())
	checks := []struct {
		name string
		ok   bool
	}{
		{"Hostname", f.Hostname != ""},
		{"OSType", f.OSType != "" && f.OSType == strings.ToLower(f.OSType)},
		{"KernelVersion", f.KernelVersion != ""},
		{"Hypervisor", f.Hypervisor != ""},
		{"Arch", f.Arch != ""},
		{"BootTime", !f.BootTime.IsZero() && f.BootTime.Before(f.CollectedAt)},
		{"UptimeSeconds", f.UptimeSeconds > 0},
		{"CPUCount", f.CPUCount > 0},
		{"MemoryTotalBytes", f.MemoryTotalBytes > 0},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s missing or malformed in %+v", c.name, f)
		}
	}
	if runtime.GOOS == "linux" && f.OSVersion == "" && f.OSName == "" {
		t.Errorf("neither OSName nor OSVersion read on linux: %+v", f)
	}
	if f.InternalIP != "" {
		ip := net.ParseIP(f.InternalIP)
		if ip == nil || ip.To4() == nil || ip.IsLoopback() {
			t.Errorf("InternalIP %q is not a non-loopback IPv4 address", f.InternalIP)
		}
	}
}
