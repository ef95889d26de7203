package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// zoneChildEnv carries the transition's Unix time to the test's child
// process, which loads the zone with ZONEINFO set.
const zoneChildEnv = "POOLAGENT_E2E_ZONE_AT"

// TestWriteZoneLoads writes a zone with WriteZone and loads it with
// time.LoadLocation in a child process whose ZONEINFO names the
// directory, as poolserver and poolagent load it in the end-to-end tests
// (a process reads ZONEINFO once, at its first LoadLocation).
func TestWriteZoneLoads(t *testing.T) {
	if v := os.Getenv(zoneChildEnv); v != "" {
		sec, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		checkSpringZone(t, time.Unix(sec, 0))
		return
	}
	dir := t.TempDir()
	at := time.Now().Truncate(time.Minute).Add(2 * time.Minute)
	if err := WriteZone(dir, "Test/Spring", at, ZoneOffset{Abbrev: "TST"}, ZoneOffset{Abbrev: "TDT", Offset: time.Hour, DST: true}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "Test", "Spring"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := time.LoadLocationFromTZData("Test/Spring", b); err != nil {
		t.Fatalf("the zone file does not parse: %v", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestWriteZoneLoads$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "ZONEINFO="+dir, zoneChildEnv+"="+strconv.FormatInt(at.Unix(), 10))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("loading the zone with ZONEINFO: %v\n%s", err, out)
	}
	// Other zones still come from the system's database (or Go's copy).
	if _, err := time.LoadLocation("UTC"); err != nil {
		t.Fatal(err)
	}
}

func checkSpringZone(t *testing.T, at time.Time) {
	loc, err := time.LoadLocation("Test/Spring")
	if err != nil {
		t.Fatalf("LoadLocation: %v", err)
	}
	for _, c := range []struct {
		t      time.Time
		abbrev string
		offset int
		dst    bool
	}{
		{at.Add(-365 * 24 * time.Hour), "TST", 0, false},
		{at.Add(-time.Second), "TST", 0, false},
		{at, "TDT", 3600, true},
		{at.Add(365 * 24 * time.Hour), "TDT", 3600, true},
	} {
		lt := c.t.In(loc)
		name, off := lt.Zone()
		if name != c.abbrev || off != c.offset || lt.IsDST() != c.dst {
			t.Errorf("%s in Test/Spring: %s %+d dst=%v, want %s %+d dst=%v", c.t.UTC(), name, off, lt.IsDST(), c.abbrev, c.offset, c.dst)
		}
	}
	// The local hour after the transition's wall clock is skipped: the
	// clock reads at+1h at the transition.
	if got, want := at.In(loc).Format("15:04"), at.UTC().Add(time.Hour).Format("15:04"); got != want {
		t.Errorf("local time at the transition = %s, want %s", got, want)
	}
	start, end := at.In(loc).ZoneBounds()
	if !start.Equal(at) || !end.IsZero() {
		t.Errorf("ZoneBounds at the transition = %s, %s; want %s and no end", start, end, at)
	}
	if _, err := time.LoadLocation("Europe/Paris"); err != nil {
		t.Errorf("the system's zones with ZONEINFO set: %v", err)
	}
}
