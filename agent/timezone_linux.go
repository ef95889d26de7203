package agent

import "os"

// osTimezone is the host's IANA zone: $TZ, else /etc/timezone (Debian,
// Ubuntu), else the target of the /etc/localtime link (systemd, RHEL,
// Alpine with a link); "" when none names one.
func osTimezone() string {
	if tz, ok := os.LookupEnv("TZ"); ok {
		if z := zoneFromTZ(tz); z != "" {
			return z
		}
	}
	if z := zoneFromFile("/etc/timezone"); z != "" {
		return z
	}
	return zoneFromLink("/etc/localtime")
}
