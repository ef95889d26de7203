package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
)

// TestPrintUpdateZones: a host-zoned update's windows are listed by zone.
func TestPrintUpdateZones(t *testing.T) {
	at := func(s string) time.Time { tm, _ := time.Parse(time.RFC3339, s); return tm }
	u := &okta.AgentPoolUpdate{ID: "upd1", Status: okta.JobInProgress, TargetVersion: "1.1.0",
		Schedule: &okta.AutoUpdateSchedule{Cron: "0 2 3 * *", Timezone: "host"},
		NextWindow: &okta.UpdateWindow{Start: at("2026-12-02T17:00:00Z"), Finish: at("2026-12-02T18:00:00Z"), Zones: []okta.ZoneWindow{
			{Timezone: "Asia/Tokyo", Start: at("2026-12-02T17:00:00Z"), Finish: at("2026-12-02T18:00:00Z"), Open: true, Hosts: 120},
			{Timezone: "America/New_York", Start: at("2026-12-03T07:00:00Z"), Finish: at("2026-12-03T08:00:00Z"), Hosts: 80},
		}}}
	var b bytes.Buffer
	if err := printUpdate(&b, u, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`schedule "0 2 3 * *" in host`,
		"  Asia/Tokyo: 2026-12-02T17:00:00Z to 2026-12-02T18:00:00Z, open, 120 hosts to update\n",
		"  America/New_York: 2026-12-03T07:00:00Z to 2026-12-03T08:00:00Z, closed, 80 hosts to update\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}
