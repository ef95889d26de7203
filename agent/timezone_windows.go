package agent

import (
	"os"

	"golang.org/x/sys/windows/registry"
)

// osTimezone is the host's IANA zone: $TZ when it names one, else the
// registry's TimeZoneKeyName mapped through windowsZones; "" for a zone
// the table does not list (set timezone in the config for those).
func osTimezone() string {
	if tz, ok := os.LookupEnv("TZ"); ok {
		if z := zoneFromTZ(tz); z != "" {
			return z
		}
	}
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, `SYSTEM\CurrentControlSet\Control\TimeZoneInformation`, registry.QUERY_VALUE)
	if err != nil {
		return ""
	}
	defer k.Close()
	name, _, err := k.GetStringValue("TimeZoneKeyName")
	if err != nil {
		return ""
	}
	return zoneFromWindowsName(name)
}
