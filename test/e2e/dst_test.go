package e2e_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/internal/e2e"
)

// TestHostZoneWindowAcrossDST runs a host-zoned window across a
// spring-forward clock change through real processes. A real zone's
// change is months away, so the test writes a zone, Test/Spring, whose
// clocks jump from +00:00 to +01:00 at a minute boundary a minute or so
// from now, and runs poolserver and the Test/Spring host with ZONEINFO
// naming its directory. The cron's start is a local time inside the
// skipped hour: it does not exist that day, so by the documented rule the
// Test/Spring host's window opens at the first instant after the gap, the
// transition; a host in UTC with the same schedule waits until that wall
// time comes round in UTC, half an hour later.
func TestHostZoneWindowAcrossDST(t *testing.T) {
	// It owns its server, hosts and zone directory, and sets no variable
	// of the test process: safe beside the other parallel tests.
	t.Parallel()
	zones := t.TempDir()
	env := []string{"ZONEINFO=" + zones}
	f := newFleetWith(t, 0, e2e.ServerOptions{Env: env})

	// The transition leaves time for the hosts to check in and for the
	// waiting to be seen first. Before it the zone's wall clock is UTC's;
	// at it the clock jumps an hour ahead, skipping [at, at+1h) of wall
	// time. The start, at+30m on that wall clock (day of month included,
	// so near midnight the start and the gap move to the next day
	// together), is inside the gap; its previous occurrence was a month
	// earlier.
	at := time.Now().UTC().Add(45 * time.Second).Truncate(time.Minute).Add(time.Minute)
	if err := e2e.WriteZone(zones, "Test/Spring", at,
		e2e.ZoneOffset{Abbrev: "TST"}, e2e.ZoneOffset{Abbrev: "TDT", Offset: time.Hour, DST: true}); err != nil {
		t.Fatal(err)
	}
	spring := f.addHost("spring", "", e2e.HostOptions{Timezone: "Test/Spring", Env: env})
	utc := f.addHost("utc", "", e2e.HostOptions{Timezone: "UTC"})
	f.waitAgents(2)

	// The start's wall time, at+30m read in UTC: where the UTC host's
	// window opens.
	utcOpens := at.Add(30 * time.Minute)
	id := f.create(fmt.Sprintf(`{"targetVersion":"1.1.0","schedule":{"cron":"%d %d %d * *","timezone":"host","duration":10,"delay":0}}`,
		utcOpens.Minute(), utcOpens.Hour(), utcOpens.Day()))

	agents := func(u okta.AgentPoolUpdate) (sp, ut *okta.Agent) {
		for i := range u.Agents {
			switch u.Agents[i].Name {
			case spring.Name:
				sp = &u.Agents[i]
			case utc.Name:
				ut = &u.Agents[i]
			}
		}
		return sp, ut
	}
	describe := func(u okta.AgentPoolUpdate) string {
		var got []string
		for _, a := range u.Agents {
			got = append(got, fmt.Sprintf("%s: %s %q dispatchedAt %v", a.Name, a.UpdateStatus, a.UpdateMessage, a.DispatchedAt))
		}
		return fmt.Sprintf("update %s, agents %s", u.Status, strings.Join(got, "; "))
	}

	// Before the transition both hosts wait: the Test/Spring host for the
	// transition (shown on its wall clock after the jump), the UTC host
	// for the start on its own.
	wantSpring := fmt.Sprintf("waiting: the host's window opens at %s (Test/Spring)", at.In(time.FixedZone("TDT", 3600)).Format(time.RFC3339))
	wantUTC := fmt.Sprintf("waiting: the host's window opens at %s (UTC)", utcOpens.Format(time.RFC3339))
	var u okta.AgentPoolUpdate
	err := e2e.Eventually(f.ctx, time.Until(at), func() (bool, error) {
		u = f.update(id)
		sp, ut := agents(u)
		return u.Status == okta.JobScheduled && sp != nil && ut != nil &&
			sp.UpdateStatus == okta.InstanceScheduled && sp.UpdateMessage == wantSpring &&
			ut.UpdateStatus == okta.InstanceScheduled && ut.UpdateMessage == wantUTC, nil
	})
	if err != nil {
		t.Fatalf("before the transition at %s: want both hosts Scheduled, Test/Spring with %q, UTC with %q: %v; %s",
			at.Format(time.RFC3339), wantSpring, wantUTC, err, describe(u))
	}

	// The transition opens the Test/Spring host's window: it gets its job
	// and installs the release; the UTC host keeps waiting.
	err = e2e.Eventually(f.ctx, time.Until(at)+90*time.Second, func() (bool, error) {
		u = f.update(id)
		sp, ut := agents(u)
		if sp == nil || ut == nil {
			return false, nil
		}
		if ut.UpdateStatus != okta.InstanceScheduled || ut.UpdateMessage != wantUTC || ut.DispatchedAt != nil {
			return false, fmt.Errorf("the UTC host left its wait before its window: %s %q", ut.UpdateStatus, ut.UpdateMessage)
		}
		return sp.UpdateStatus == okta.InstanceSuccess, nil
	})
	if err != nil {
		t.Fatalf("after the transition at %s: want the Test/Spring host updated, the UTC host waiting: %v; %s", at.Format(time.RFC3339), err, describe(u))
	}
	sp, _ := agents(u)
	t.Logf("transition at %s; the Test/Spring host's job dispatched at %v; the UTC host's window opens at %s",
		at.Format(time.RFC3339), sp.DispatchedAt, utcOpens.Format(time.RFC3339))
	// The server's own record: the job went out at the transition's window,
	// not before it and not at the UTC start.
	if sp.DispatchedAt == nil || sp.DispatchedAt.Before(at) || !sp.DispatchedAt.Before(utcOpens) {
		t.Errorf("the Test/Spring host's job dispatchedAt %v, want in [%s, %s)", sp.DispatchedAt, at.Format(time.RFC3339), utcOpens.Format(time.RFC3339))
	}
	for h, want := range map[*e2e.Host]string{spring: "1.1.0", utc: "1.0.0"} {
		if v, err := h.InstalledVersion(f.ctx); err != nil || v != want {
			t.Errorf("%s: installed %q (%v), want %s", h.Name, v, err, want)
		}
	}

	// No window holding a host still to update is open: the update waits
	// for the UTC host's, which holds no job meanwhile.
	u = f.waitStatus(id, okta.JobScheduled)
	if _, ut := agents(u); ut.UpdateStatus != okta.InstanceScheduled || ut.UpdateMessage != wantUTC {
		t.Errorf("the UTC host while the update waits: %s %q, want %q", ut.UpdateStatus, ut.UpdateMessage, wantUTC)
	}
	st, err := utc.Status(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Jobs) != 0 {
		t.Errorf("the UTC host holds jobs %+v", st.Jobs)
	}
}
