package agent

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	// Windows hosts have no zone database of their own; Linux minimal
	// images may lack one. The reported zone is checked against this copy.
	_ "time/tzdata"
)

// timezone is the IANA zone this host reports in its heartbeat, for
// maintenance windows in each host's local time: the config's timezone,
// else the operating system's (osTimezone), else "" (the server then
// uses its documented default).
func (d *Daemon) timezone() string {
	if d.cfg.Timezone != "" {
		return d.cfg.Timezone // checked by config.Validate
	}
	return osTimezone()
}

// validZone returns name when it is an IANA zone name, else "".
func validZone(name string) string {
	if name == "" || name == "Local" || len(name) > 64 {
		return ""
	}
	if _, err := time.LoadLocation(name); err != nil {
		return ""
	}
	return name
}

// zoneFromTZ reads a TZ environment value: a zone name ("Europe/Paris",
// ":Europe/Paris") or a path into a zone database
// ("/usr/share/zoneinfo/Europe/Paris"). POSIX rule strings ("CET-1CEST")
// name no IANA zone and give "".
func zoneFromTZ(tz string) string {
	tz = strings.TrimPrefix(strings.TrimSpace(tz), ":")
	if z := zoneFromPath(tz); z != "" {
		return z
	}
	if filepath.IsAbs(tz) {
		return ""
	}
	return validZone(tz)
}

// zoneFromPath returns the zone a zone file's path names: the part after
// a "zoneinfo/" directory ("/usr/share/zoneinfo/Asia/Tokyo",
// "/var/db/timezone/zoneinfo/Asia/Tokyo" on macOS).
func zoneFromPath(p string) string {
	p = filepath.ToSlash(p)
	i := strings.LastIndex(p, "zoneinfo/")
	if i < 0 {
		return ""
	}
	name := p[i+len("zoneinfo/"):]
	// Debian's posix/ and right/ trees hold the same zones.
	name = strings.TrimPrefix(strings.TrimPrefix(name, "posix/"), "right/")
	return validZone(name)
}

// zoneFromLink reads the /etc/localtime symbolic link (systemd, macOS).
func zoneFromLink(path string) string {
	target, err := os.Readlink(path)
	if err != nil {
		return ""
	}
	return zoneFromPath(target)
}

// zoneFromFile reads a file holding a zone name on its first line
// (/etc/timezone on Debian and Ubuntu).
func zoneFromFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) > 4096 {
		return ""
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return validZone(strings.TrimSpace(line))
}

// windowsZones maps the Windows time zones of most hosts (the registry's
// TimeZoneKeyName) to IANA zones, as Unicode CLDR's windowsZones.xml does
// for territory "001". A zone not listed is not reported.
var windowsZones = map[string]string{
	"UTC":                             "UTC",
	"Coordinated Universal Time":      "UTC",
	"GMT Standard Time":               "Europe/London",
	"Greenwich Standard Time":         "Atlantic/Reykjavik",
	"W. Europe Standard Time":         "Europe/Berlin",
	"Romance Standard Time":           "Europe/Paris",
	"Central Europe Standard Time":    "Europe/Budapest",
	"Central European Standard Time":  "Europe/Warsaw",
	"E. Europe Standard Time":         "Europe/Chisinau",
	"FLE Standard Time":               "Europe/Kiev",
	"GTB Standard Time":               "Europe/Bucharest",
	"Russian Standard Time":           "Europe/Moscow",
	"Turkey Standard Time":            "Europe/Istanbul",
	"Israel Standard Time":            "Asia/Jerusalem",
	"Egypt Standard Time":             "Africa/Cairo",
	"South Africa Standard Time":      "Africa/Johannesburg",
	"W. Central Africa Standard Time": "Africa/Lagos",
	"Arab Standard Time":              "Asia/Riyadh",
	"Arabian Standard Time":           "Asia/Dubai",
	"Iran Standard Time":              "Asia/Tehran",
	"Pakistan Standard Time":          "Asia/Karachi",
	"India Standard Time":             "Asia/Calcutta",
	"Nepal Standard Time":             "Asia/Katmandu",
	"Bangladesh Standard Time":        "Asia/Dhaka",
	"SE Asia Standard Time":           "Asia/Bangkok",
	"China Standard Time":             "Asia/Shanghai",
	"Singapore Standard Time":         "Asia/Singapore",
	"Taipei Standard Time":            "Asia/Taipei",
	"Tokyo Standard Time":             "Asia/Tokyo",
	"Korea Standard Time":             "Asia/Seoul",
	"W. Australia Standard Time":      "Australia/Perth",
	"Cen. Australia Standard Time":    "Australia/Adelaide",
	"E. Australia Standard Time":      "Australia/Brisbane",
	"AUS Eastern Standard Time":       "Australia/Sydney",
	"New Zealand Standard Time":       "Pacific/Auckland",
	"Hawaiian Standard Time":          "Pacific/Honolulu",
	"Alaskan Standard Time":           "America/Anchorage",
	"Pacific Standard Time":           "America/Los_Angeles",
	"US Mountain Standard Time":       "America/Phoenix",
	"Mountain Standard Time":          "America/Denver",
	"Central Standard Time":           "America/Chicago",
	"Central Standard Time (Mexico)":  "America/Mexico_City",
	"Canada Central Standard Time":    "America/Regina",
	"Eastern Standard Time":           "America/New_York",
	"SA Pacific Standard Time":        "America/Bogota",
	"Atlantic Standard Time":          "America/Halifax",
	"Newfoundland Standard Time":      "America/St_Johns",
	"Pacific SA Standard Time":        "America/Santiago",
	"Argentina Standard Time":         "America/Buenos_Aires",
	"E. South America Standard Time":  "America/Sao_Paulo",
}

// zoneFromWindowsName maps a Windows time zone name to an IANA zone, or "".
func zoneFromWindowsName(name string) string {
	return validZone(windowsZones[strings.TrimSpace(name)])
}
