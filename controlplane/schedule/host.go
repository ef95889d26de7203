package schedule

import (
	"sync"
	"time"
)

// HostTimezone is the schedule timezone (an extension of Okta's schedule)
// that reads the cron on each host's own wall clock: every host reports
// its IANA zone in its heartbeat and gets its windows in that zone.
const HostTimezone = "host"

// DefaultHostZone is the zone of a host that reported no time zone, or one
// this server does not know, under a HostTimezone schedule.
const DefaultHostZone = "UTC"

// MaxZoneNameLen bounds a reported zone name; the longest in the tz
// database is 32 bytes (America/Argentina/ComodRivadavia).
const MaxZoneNameLen = 64

// zoneCache keeps loaded zones: time.LoadLocation reads and parses the
// zone's file on every call, and the engine asks for the same few zones
// on every tick.
// Only zones that loaded are kept, so the cache is bounded by the tz
// database whatever names hosts report.
var zoneCache sync.Map // name -> *time.Location

func cachedZone(name string) (*time.Location, error) {
	if v, ok := zoneCache.Load(name); ok {
		return v.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	zoneCache.Store(name, loc)
	return loc, nil
}

// ValidZone reports whether name is an IANA zone this server knows and a
// host may report: not empty, not "Local" (which means the reader's own
// zone), and at most MaxZoneNameLen bytes.
func ValidZone(name string) bool {
	if name == "" || name == "Local" || len(name) > MaxZoneNameLen {
		return false
	}
	_, err := cachedZone(name)
	return err == nil
}

// HostZone returns the zone a HostTimezone schedule uses for a host that
// reported reported: that zone when it is valid (ValidZone), else
// DefaultHostZone; fellBack says which.
func HostZone(reported string) (zone string, fellBack bool) {
	if ValidZone(reported) {
		return reported, false
	}
	return DefaultHostZone, true
}

// ScheduleZone returns the zone a schedule with the given timezone uses
// for a host that reported hostZone: the schedule's own zone, or with
// HostTimezone the host's (HostZone).
func ScheduleZone(timezone, hostZone string) string {
	if timezone != HostTimezone {
		return timezone
	}
	z, _ := HostZone(hostZone)
	return z
}
