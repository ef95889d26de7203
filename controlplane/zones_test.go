package controlplane_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
)

// beatIn sends h's heartbeat reporting the time zone tz.
func (f *fleet) beatIn(h *host, tz string) (reply, sailpoint.StatusReply) {
	f.t.Helper()
	var req sailpoint.StatusRequest
	if err := json.Unmarshal([]byte(f.body(h)), &req); err != nil {
		f.t.Fatal(err)
	}
	req.Body.Timezone = sailpoint.Flex(tz)
	b, _ := json.Marshal(req)
	r := f.beatRaw(h.secret, h.id, string(b))
	var rep sailpoint.StatusReply
	if r.status == 200 {
		r.decode(f.t, &rep)
	}
	return r, rep
}

// TestHostZoneSchedule: an update whose schedule reads the cron in each
// host's zone is accepted, its nextWindow lists the zones of its hosts,
// and each host's job carries its own zone's window.
func TestHostZoneSchedule(t *testing.T) {
	f := newFleet(t)
	f.publish("1.1.0")
	tokyo, none := f.host("tokyo", "1.0.0"), f.host("nowhere", "1.0.0")
	f.beatIn(tokyo, "Asia/Tokyo")
	// The clock is 2026-03-02 10:00 UTC; "0 2 3 * *" opens in Tokyo at
	// 03-02T17:00Z, in UTC (the host without a zone) at 03-03T02:00Z.
	u := f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0","schedule":{"cron":"0 2 3 * *","timezone":"host","duration":60}}`)
	if u.Schedule == nil || u.Schedule.Timezone != "host" || u.Status != okta.JobScheduled {
		t.Fatalf("created: %s %+v", u.Status, u.Schedule)
	}
	f.tick()
	w := f.update(u.ID).NextWindow
	tokyoOpens, utcOpens := time.Date(2026, 3, 2, 17, 0, 0, 0, time.UTC), time.Date(2026, 3, 3, 2, 0, 0, 0, time.UTC)
	if w == nil || len(w.Zones) != 2 || !w.Start.Equal(tokyoOpens) ||
		w.Zones[0].Timezone != "Asia/Tokyo" || !w.Zones[0].Start.Equal(tokyoOpens) || w.Zones[0].Hosts != 1 || w.Zones[0].Open ||
		w.Zones[1].Timezone != "UTC" || !w.Zones[1].Start.Equal(utcOpens) || !w.Zones[1].Finish.Equal(utcOpens.Add(time.Hour)) {
		t.Fatalf("nextWindow = %+v", w)
	}
	f.clock.Advance(7 * time.Hour) // 17:00Z, 02:00 in Tokyo
	f.beatIn(tokyo, "Asia/Tokyo")
	f.beat(none)
	f.tick()
	_, rep := f.beatIn(tokyo, "Asia/Tokyo")
	if len(rep.Body.Jobs) != 1 || rep.Body.Jobs[0].Maintenance == nil || rep.Body.Jobs[0].Maintenance.WindowStartTime != "2026-03-02T17:00:00Z" {
		t.Fatalf("the Tokyo host's reply at its 02:00: %+v", rep.Body.Jobs)
	}
	if rep := f.beat(none); len(rep.Body.Jobs) != 0 {
		t.Fatalf("the host without a zone got a job at 17:00 UTC: %+v", rep.Body.Jobs)
	}
	got := f.update(u.ID)
	if got.Status != okta.JobInProgress || got.NextWindow == nil || !got.NextWindow.Zones[0].Open {
		t.Fatalf("in Tokyo's window: %s %+v", got.Status, got.NextWindow)
	}
	waiting := 0
	for _, a := range got.Agents {
		if a.Name == "nowhere" {
			waiting++
			if !strings.HasPrefix(a.UpdateMessage, "waiting: the host's window opens at 2026-03-03T02:00:00Z (UTC") {
				t.Errorf("the host without a zone: %q", a.UpdateMessage)
			}
		}
	}
	if waiting != 1 {
		t.Errorf("the update lists %d agents of the host without a zone", waiting)
	}

	// Bad input: a zone name the API does not know, a host's overlong zone.
	for _, tz := range []string{"Host", "Mars/Olympus", "Local"} {
		r := f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates", f.manage,
			`{"targetVersion":"1.1.0","schedule":{"cron":"0 2 3 * *","timezone":"`+tz+`"}}`)
		if r.status != 400 || !strings.Contains(string(r.body), "schedule.timezone") {
			t.Errorf("timezone %q: %d %s", tz, r.status, r.body)
		}
	}
	if r, _ := f.beatIn(none, strings.Repeat("A", 65)); r.status != 400 || !strings.Contains(string(r.body), "body.timezone") {
		t.Errorf("an overlong zone: %d %s", r.status, r.body)
	}
	if r, _ := f.beatIn(none, "Mars/Olympus"); r.status != 200 {
		t.Errorf("an unknown zone is the default's, not an error: %d %s", r.status, r.body)
	}
}
