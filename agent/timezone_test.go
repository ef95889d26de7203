package agent

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestZoneFromTZ(t *testing.T) {
	for _, tc := range []struct{ tz, want string }{
		{"Europe/Paris", "Europe/Paris"},
		{":Asia/Tokyo", "Asia/Tokyo"},
		{"/usr/share/zoneinfo/America/New_York", "America/New_York"},
		{":/usr/share/zoneinfo/posix/Australia/Sydney", "Australia/Sydney"},
		{"UTC", "UTC"},
		{"CET-1CEST,M3.5.0,M10.5.0/3", ""}, // a POSIX rule names no zone
		{"Local", ""},
		{"Mars/Olympus_Mons", ""},
		{"/etc/localtime", ""},
		{"", ""},
	} {
		if got := zoneFromTZ(tc.tz); got != tc.want {
			t.Errorf("zoneFromTZ(%q) = %q, want %q", tc.tz, got, tc.want)
		}
	}
}

func TestZoneFromLinkAndFile(t *testing.T) {
	dir := t.TempDir()
	if runtime.GOOS != "windows" {
		link := filepath.Join(dir, "localtime")
		if err := os.Symlink("../usr/share/zoneinfo/Asia/Tokyo", link); err != nil {
			t.Fatal(err)
		}
		if got := zoneFromLink(link); got != "Asia/Tokyo" {
			t.Errorf("zoneFromLink = %q, want Asia/Tokyo", got)
		}
		mac := filepath.Join(dir, "mac")
		if err := os.Symlink("/var/db/timezone/zoneinfo/Europe/London", mac); err != nil {
			t.Fatal(err)
		}
		if got := zoneFromLink(mac); got != "Europe/London" {
			t.Errorf("zoneFromLink(macOS) = %q, want Europe/London", got)
		}
	}
	if got := zoneFromLink(filepath.Join(dir, "missing")); got != "" {
		t.Errorf("zoneFromLink(missing) = %q", got)
	}
	f := filepath.Join(dir, "timezone")
	if err := os.WriteFile(f, []byte("Europe/Berlin\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := zoneFromFile(f); got != "Europe/Berlin" {
		t.Errorf("zoneFromFile = %q, want Europe/Berlin", got)
	}
	if err := os.WriteFile(f, []byte("not a zone\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := zoneFromFile(f); got != "" {
		t.Errorf("zoneFromFile(junk) = %q", got)
	}
}

func TestWindowsZones(t *testing.T) {
	for win, iana := range windowsZones {
		if got := zoneFromWindowsName(win); got != iana {
			t.Errorf("%q maps to %q, which does not load (%q)", win, iana, got)
		}
	}
	if got := zoneFromWindowsName("Tokyo Standard Time"); got != "Asia/Tokyo" {
		t.Errorf("Tokyo Standard Time = %q", got)
	}
	if got := zoneFromWindowsName("Made-up Standard Time"); got != "" {
		t.Errorf("an unknown Windows zone = %q, want none", got)
	}
}

func TestTimezoneConfigOverrides(t *testing.T) {
	d := &Daemon{}
	d.cfg.Timezone = "Pacific/Auckland"
	if got := d.timezone(); got != "Pacific/Auckland" {
		t.Errorf("timezone with the config's = %q", got)
	}
	d.cfg.Timezone = ""
	if got := d.timezone(); got != osTimezone() {
		t.Errorf("timezone without the config's = %q, want the system's %q", got, osTimezone())
	}
}
