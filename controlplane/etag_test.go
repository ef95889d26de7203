package controlplane_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/poolagent/poolagent/api/okta"
)

// get sends a GET with an optional If-None-Match.
func (e *env) get(path, auth, ifNoneMatch string) reply {
	e.t.Helper()
	req, err := http.NewRequest("GET", e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "SSWS "+auth)
	if ifNoneMatch != "" {
		req.Header.Set("If-None-Match", ifNoneMatch)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: body}
}

func TestETagAndNotModified(t *testing.T) {
	f := newFleet(t)
	f.publish("1.1.0")
	h := f.host("dc1", "1.0.0")
	paths := []string{
		"/api/v1/agentPools",
		"/api/v1/agentPools/" + f.pool.ID + "/updates",
		"/api/v1/agentPools/" + f.pool.ID + "/updates/settings",
		"/api/v1/releases",
	}
	tags := map[string]string{}
	for _, p := range paths {
		r := f.get(p, f.read, "")
		tag := r.header.Get("ETag")
		if r.status != 200 || len(tag) < 10 || tag[0] != '"' {
			t.Fatalf("GET %s: %d ETag %q", p, r.status, tag)
		}
		tags[p] = tag
		// Unchanged: 304, no body, the API's headers still there.
		for _, inm := range []string{tag, "W/" + tag, `"other", ` + tag, "*"} {
			r = f.get(p, f.read, inm)
			if r.status != 304 || len(r.body) != 0 || r.header.Get("ETag") != tag || r.header.Get("X-Rate-Limit-Remaining") == "" {
				t.Errorf("GET %s If-None-Match %s: %d %v %q", p, inm, r.status, r.header, r.body)
			}
		}
		if r = f.get(p, f.read, `"stale"`); r.status != 200 || len(r.body) == 0 {
			t.Errorf("GET %s with a stale tag: %d", p, r.status)
		}
	}
	// A change changes the tag: a heartbeat moves lastConnection, an
	// update appears in the list.
	f.clock.Advance(10 * time.Second)
	f.beat(h)
	u := f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0"}`)
	for _, p := range paths[:2] {
		r := f.get(p, f.read, tags[p])
		if r.status != 200 || r.header.Get("ETag") == tags[p] {
			t.Errorf("GET %s after a change: %d, ETag %q (was %q)", p, r.status, r.header.Get("ETag"), tags[p])
		}
	}
	one := "/api/v1/agentPools/" + f.pool.ID + "/updates/" + u.ID
	tag := f.get(one, f.read, "").header.Get("ETag")
	f.do("POST", one+"/pause", f.manage, "")
	if r := f.get(one, f.read, tag); r.status != 200 || r.header.Get("ETag") == tag {
		t.Errorf("GET after pause: %d", r.status)
	}
	// Errors and writes carry no ETag; an error is never a 304.
	if r := f.get("/api/v1/agentPools/nope/updates", f.read, "*"); r.status != 404 || r.header.Get("ETag") != "" {
		t.Errorf("404: %d ETag %q", r.status, r.header.Get("ETag"))
	}
	if r := f.get(paths[0], "bad-token", "*"); r.status != 401 || r.header.Get("ETag") != "" {
		t.Errorf("401: %d ETag %q", r.status, r.header.Get("ETag"))
	}
	if r := f.do("POST", one+"/resume", f.manage, ""); r.status != 201 || r.header.Get("ETag") != "" {
		t.Errorf("POST: %d ETag %q", r.status, r.header.Get("ETag"))
	}
}

func TestNextWindowExtension(t *testing.T) {
	f := newFleet(t)
	f.publish("1.1.0")
	f.host("dc1", "1.0.0")
	// The clock is Monday 2026-03-02 10:00 UTC; the window the 3rd 02:00-03:00.
	sched := f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0","schedule":{"cron":"0 2 3 * *","timezone":"UTC","duration":60}}`)
	want := okta.UpdateWindow{Start: time.Date(2026, 3, 3, 2, 0, 0, 0, time.UTC), Finish: time.Date(2026, 3, 3, 3, 0, 0, 0, time.UTC)}
	if w := sched.NextWindow; w == nil || !w.Start.Equal(want.Start) || !w.Finish.Equal(want.Finish) {
		t.Fatalf("nextWindow at creation = %+v, want %+v", w, want)
	}
	// Inside the window it is the current one; after it, the next month's.
	f.clock.Advance(16*time.Hour + 30*time.Minute)
	f.tick()
	if got := f.update(sched.ID); got.Status != okta.JobInProgress || got.NextWindow == nil || !got.NextWindow.Start.Equal(want.Start) {
		t.Errorf("in the window: %s %+v", got.Status, got.NextWindow)
	}
	f.clock.Advance(time.Hour)
	f.tick()
	if got := f.update(sched.ID); got.NextWindow == nil || !got.NextWindow.Start.Equal(time.Date(2026, 4, 3, 2, 0, 0, 0, time.UTC)) {
		t.Errorf("after the window: %s %+v", got.Status, got.NextWindow)
	}
	// No schedule, or stopped: no nextWindow.
	adhoc := f.createUpdate(f.pool.ID, `{"targetVersion":"1.1.0"}`)
	if adhoc.NextWindow != nil {
		t.Errorf("ad-hoc update has nextWindow %+v", adhoc.NextWindow)
	}
	f.do("POST", "/api/v1/agentPools/"+f.pool.ID+"/updates/"+sched.ID+"/stop", f.manage, "")
	if got := f.update(sched.ID); got.Status != okta.JobCancelled || got.NextWindow != nil {
		t.Errorf("stopped: %s %+v", got.Status, got.NextWindow)
	}
}
