package e2e

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// ZoneOffset is one local time type of a zone WriteZone writes: its
// abbreviation, its offset east of UTC (whole seconds) and whether it is
// daylight saving time.
type ZoneOffset struct {
	Abbrev string
	Offset time.Duration
	DST    bool
}

// WriteZone writes a zone file (TZif version 2, RFC 8536) for the zone
// name under dir: local time is before until the instant at, after from
// then on. A process whose ZONEINFO environment variable names dir loads
// the zone with time.LoadLocation(name), and every other zone from the
// system's database as usual: tests use it to put a clock change a minute
// away, where a real zone's is months away.
func WriteZone(dir, name string, at time.Time, before, after ZoneOffset) error {
	if !filepath.IsLocal(name) {
		return fmt.Errorf("zone name %q: want a relative name such as Test/Spring", name)
	}
	types := []ZoneOffset{before, after}
	var abbrevs []byte
	for _, z := range types {
		if z.Abbrev == "" || bytes.IndexByte([]byte(z.Abbrev), 0) >= 0 {
			return fmt.Errorf("zone %s: abbreviation %q: want a non-empty name", name, z.Abbrev)
		}
		if z.Offset%time.Second != 0 {
			return fmt.Errorf("zone %s: offset %s: want whole seconds", name, z.Offset)
		}
		abbrevs = append(append(abbrevs, z.Abbrev...), 0)
	}
	sec := at.Unix()
	if int64(int32(sec)) != sec {
		return errors.New("the transition does not fit the version 1 block's 32-bit times")
	}
	var buf bytes.Buffer
	// The version 1 block (32-bit times), then the version 2 block (64-bit
	// times) with the same data: a reader of either finds the transition.
	for _, size := range []int{4, 8} {
		buf.WriteString("TZif2")
		buf.Write(make([]byte, 15))
		// isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
		for _, n := range []int{0, 0, 0, 1, len(types), len(abbrevs)} {
			_ = binary.Write(&buf, binary.BigEndian, uint32(n))
		}
		if size == 4 {
			_ = binary.Write(&buf, binary.BigEndian, int32(sec))
		} else {
			_ = binary.Write(&buf, binary.BigEndian, sec)
		}
		buf.WriteByte(1) // the transition is to type 1, after
		// Type 0 is also local time before the first transition.
		idx := 0
		for _, z := range types {
			_ = binary.Write(&buf, binary.BigEndian, int32(z.Offset/time.Second))
			dst := byte(0)
			if z.DST {
				dst = 1
			}
			buf.Write([]byte{dst, byte(idx)})
			idx += len(z.Abbrev) + 1
		}
		buf.Write(abbrevs)
	}
	// The footer: an empty TZ string, so after the transition stays in
	// force for all later times.
	buf.WriteString("\n\n")
	path := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("zone %s: %w", name, err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("zone %s: %w", name, err)
	}
	return nil
}
