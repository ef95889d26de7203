package controlplane_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/controlplane/store"
)

// TestAuditTrail drives an update's lifecycle through the API and checks
// the audit log it leaves: who, what, which update, the status before and
// after, newest first, paged, and no secret anywhere.
func TestAuditTrail(t *testing.T) {
	e := newEnv(t)
	p, _ := e.pool(okta.AgentTypeAD, "ad", "dc1", "dc2", "dc3")
	u := e.createUpdate(p.ID, `{"targetVersion":"1.1.0"}`)
	base := "/api/v1/agentPools/" + p.ID + "/updates/" + u.ID
	for _, a := range []string{"pause", "resume", "stop", "retry"} {
		if r := e.do("POST", base+"/"+a, e.manage, ""); r.status != http.StatusCreated {
			t.Fatalf("%s: %d %s", a, r.status, r.body)
		}
	}
	if r := e.do("POST", base+"/pause", e.manage, ""); r.status != http.StatusCreated {
		t.Fatalf("pause: %d %s", r.status, r.body)
	}
	if r := e.do("POST", base, e.manage, `{"name":"renamed"}`); r.status != http.StatusCreated {
		t.Fatalf("modify: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/api/v1/agentPools/"+p.ID+"/updates/settings", e.manage, `{"maxUnavailable":2}`); r.status != http.StatusCreated {
		t.Fatalf("settings: %d %s", r.status, r.body)
	}
	if r := e.do("DELETE", base, e.manage, ""); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	// A refused action changes nothing and leaves no entry.
	if r := e.do("POST", base+"/resume", e.manage, ""); r.status < 400 {
		t.Fatalf("resume of a deleted update: %d", r.status)
	}
	// The CLI's changes join the same log.
	if err := controlplane.AuditCLI(context.Background(), e.st, store.AuditEntry{Action: controlplane.AuditPoolCreate, PoolID: "polX"}, e.clock.Now()); err != nil {
		t.Fatal(err)
	}

	paused, running, cancelled := string(okta.JobPaused), string(okta.JobInProgress), string(okta.JobCancelled)
	type step struct{ action, before, after string }
	want := []step{ // newest first
		{"pool.create", "", ""},
		{"update.delete", paused, ""},
		{"settings.change", "", ""},
		{"update.modify", paused, paused},
		{"update.pause", running, paused},
		{"update.retry", cancelled, running},
		{"update.stop", running, cancelled},
		{"update.resume", paused, running},
		{"update.pause", running, paused},
		{"update.create", "", running},
	}
	var got []okta.AuditEntry
	var bodies []string
	path := "/api/v1/auditLog?limit=3"
	for pages := 0; path != ""; pages++ {
		if pages > len(want) {
			t.Fatal("the next links do not end")
		}
		r := e.do("GET", path, e.read, "")
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
		bodies = append(bodies, string(r.body))
		var page []okta.AuditEntry
		r.decode(t, &page)
		got = append(got, page...)
		path = ""
		for _, l := range r.header.Values("Link") {
			if m := regexp.MustCompile(`^<([^>]+)>; rel="next"$`).FindStringSubmatch(l); m != nil {
				nu, _ := url.Parse(m[1])
				path = nu.RequestURI()
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("audit log has %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Action != w.action || g.StatusBefore != w.before || g.StatusAfter != w.after {
			t.Errorf("entry %d = %s %s->%s, want %s %s->%s", i, g.Action, g.StatusBefore, g.StatusAfter, w.action, w.before, w.after)
		}
		if g.ID == "" || g.Published.IsZero() {
			t.Errorf("entry %d has no id or time: %+v", i, g)
		}
		if i == 0 {
			if g.Actor.Type != "cli" || g.Actor.ID == "" {
				t.Errorf("CLI entry actor = %+v", g.Actor)
			}
			continue
		}
		if g.Actor.Type != "token" || g.Actor.Name != "manage" || !strings.HasPrefix(g.Actor.ID, "tok") || g.PoolID != p.ID {
			t.Errorf("entry %d actor/pool = %+v %s", i, g.Actor, g.PoolID)
		}
		if strings.HasPrefix(w.action, "update.") && g.UpdateID != u.ID {
			t.Errorf("entry %d update = %q, want %s", i, g.UpdateID, u.ID)
		}
	}
	all := strings.Join(bodies, "\n")
	for _, secret := range []string{e.manage, e.read, e.expired} {
		if strings.Contains(all, secret) {
			t.Errorf("the audit log holds a token secret")
		}
	}

	// since bounds the log by time.
	e.clock.Advance(time.Hour)
	if r := e.do("POST", "/api/v1/agentPools/"+p.ID+"/updates/settings", e.manage, `{"maxUnavailable":3}`); r.status != http.StatusCreated {
		t.Fatalf("settings: %d %s", r.status, r.body)
	}
	var recent []okta.AuditEntry
	e.do("GET", "/api/v1/auditLog?since="+url.QueryEscape(e.clock.Now().Add(-time.Minute).Format(time.RFC3339)), e.read, "").decode(t, &recent)
	if len(recent) != 1 || recent[0].Action != "settings.change" {
		t.Errorf("since an hour later = %+v", recent)
	}
}

func TestAuditLogQueryErrors(t *testing.T) {
	e := newEnv(t)
	for _, q := range []string{"limit=0", "limit=x", "limit=1001", "since=yesterday", "after=bm90LWEtY3Vyc29y", "after=YTA"} {
		t.Run(q, func(t *testing.T) {
			r := e.do("GET", "/api/v1/auditLog?"+q, e.read, "")
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
			if oe := r.okta(t); oe.ErrorCode != okta.CodeValidation || len(oe.ErrorCauses) != 1 {
				t.Errorf("error = %+v", oe)
			}
		})
	}
	if r := e.do("GET", "/api/v1/auditLog", "", ""); r.status != http.StatusUnauthorized {
		t.Errorf("without a token: %d", r.status)
	}
	if r := e.do("GET", "/api/v1/auditLog", e.read, ""); r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != "[]" {
		t.Errorf("empty log: %d %s", r.status, r.body)
	}
}
