//go:build !linux && !windows

package agent

import "os"

// osTimezone is the host's IANA zone: $TZ, else the target of the
// /etc/localtime link (macOS, the BSDs); "" when none names one.
func osTimezone() string {
	if tz, ok := os.LookupEnv("TZ"); ok {
		if z := zoneFromTZ(tz); z != "" {
			return z
		}
	}
	return zoneFromLink("/etc/localtime")
}
