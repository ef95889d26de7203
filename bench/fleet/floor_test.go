package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The simulator's hosts take the floor's job once each, report it done,
// and the floor then reports the update a success; before the create,
// nobody gets a job.
func TestFloorRollout(t *testing.T) {
	const n = 200
	fs := newFloorServer(n)
	ts := httptest.NewServer(fs)
	defer ts.Close()
	s := newSim(ts.URL, newIdentities(n), 200*time.Millisecond, 50*time.Millisecond, goodRollout)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan struct{})
	hctx, stopHosts := context.WithCancel(ctx)
	go func() { s.run(hctx); close(done) }()
	defer func() { stopHosts(); <-done }()

	call := func(method, path string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, method, ts.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for s.beats.Load() < 2*n {
		time.Sleep(20 * time.Millisecond)
	}
	if got := s.jobsTaken.Load(); got != 0 {
		t.Fatalf("%d jobs taken before the create", got)
	}
	if code, _ := call("POST", "/api/v1/agentPools/floor/updates?agents=none"); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	for {
		code, body := call("GET", "/api/v1/agentPools/floor/updates/floor?agents=none")
		if code != http.StatusOK {
			t.Fatalf("get: %d %s", code, body)
		}
		if strings.Contains(body, `"Success"`) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no success: %s; %s", body, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got, done := s.jobsTaken.Load(), s.jobsDone.Load(); got != n || done != n {
		t.Fatalf("jobs taken %d, done %d, want %d each", got, done, n)
	}
	if s.errs.Load() != 0 {
		t.Fatalf("%d errors", s.errs.Load())
	}
}
