package e2e_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/internal/e2e"
)

// TestHostZoneWindows runs a schedule read in each host's own time zone
// through real poolagents configured with different zones: the window is
// open now in Tokyo and closed in São Paulo (both without DST, twelve
// hours apart), so the Tokyo host updates and the São Paulo host waits
// with its own opening time; once Tokyo's host is done the update is
// Scheduled until São Paulo's window opens. A clock change:
// TestHostZoneWindowAcrossDST.
func TestHostZoneWindows(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 0)
	tokyo := f.addHost("tokyo", "", e2e.HostOptions{Timezone: "Asia/Tokyo"})
	saoPaulo := f.addHost("saopaulo", "", e2e.HostOptions{Timezone: "America/Sao_Paulo"})
	f.waitAgents(2)

	// The window opened a minute ago on Tokyo's wall clock and lasts an
	// hour; São Paulo's wall clock reaches the same time twelve hours later.
	tky, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	sp, err := time.LoadLocation("America/Sao_Paulo")
	if err != nil {
		t.Fatal(err)
	}
	o := time.Now().In(tky).Add(-time.Minute)
	spOpens := time.Date(o.Year(), o.Month(), o.Day(), o.Hour(), o.Minute(), 0, 0, sp)
	id := f.create(fmt.Sprintf(`{"targetVersion":"1.1.0","schedule":{"cron":"%d %d %d * *","timezone":"host","duration":60,"delay":0}}`,
		o.Minute(), o.Hour(), o.Day()))

	want := fmt.Sprintf("waiting: the host's window opens at %s (America/Sao_Paulo)", spOpens.Format(time.RFC3339))
	var u okta.AgentPoolUpdate
	err = e2e.Eventually(f.ctx, 90*time.Second, func() (bool, error) {
		u = f.update(id)
		var tk, sp *okta.Agent
		for i := range u.Agents {
			switch u.Agents[i].Name {
			case tokyo.Name:
				tk = &u.Agents[i]
			case saoPaulo.Name:
				sp = &u.Agents[i]
			}
		}
		if tk == nil || sp == nil {
			return false, nil
		}
		if sp.UpdateStatus != okta.InstanceScheduled {
			return false, fmt.Errorf("the São Paulo host left its wait outside its window: %s %q", sp.UpdateStatus, sp.UpdateMessage)
		}
		return tk.UpdateStatus == okta.InstanceSuccess && sp.UpdateMessage == want, nil
	})
	if err != nil {
		var got []string
		for _, a := range u.Agents {
			got = append(got, fmt.Sprintf("%s: %s %q", a.Name, a.UpdateStatus, a.UpdateMessage))
		}
		t.Fatalf("the Tokyo host updates, the São Paulo host waits with %q: %v; update %s, agents %s", want, err, u.Status, strings.Join(got, "; "))
	}
	// No window holding a host still to update is open: the update waits
	// for São Paulo's.
	u = f.waitStatus(id, okta.JobScheduled)
	for _, a := range u.Agents {
		if a.Name == saoPaulo.Name && (a.UpdateStatus != okta.InstanceScheduled || a.UpdateMessage != want) {
			t.Errorf("the São Paulo host while the update waits: %s %q, want %q", a.UpdateStatus, a.UpdateMessage, want)
		}
	}
	if got := strings.Join(f.versions(), ","); got != "1.1.0,1.0.0" {
		t.Errorf("installed (Tokyo, São Paulo) = %s, want 1.1.0,1.0.0", got)
	}
	w := u.NextWindow
	if w == nil || len(w.Zones) != 1 || w.Zones[0].Timezone != "America/Sao_Paulo" || !w.Zones[0].Start.Equal(spOpens) || w.Zones[0].Open {
		t.Errorf("nextWindow = %+v, want São Paulo's window only (Tokyo has no host left to update)", w)
	}
	// The waiting host holds no job: its poolagent says so.
	st, err := saoPaulo.Status(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Jobs) != 0 {
		t.Errorf("the São Paulo host holds jobs %+v", st.Jobs)
	}
}
