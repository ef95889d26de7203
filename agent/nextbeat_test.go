package agent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/poolagent/poolagent/agent/state"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/platform/hostinfo"
)

func TestNextHeartbeatFromReply(t *testing.T) {
	tests := []struct {
		value string
		want  time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{"0", 0},
		{"-4", 0},
		{"soon", 0},
		{"1.5", 0},
		{"3600", 30 * time.Second}, // never later than the interval
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			d := testDaemon(t)
			d.interval = 30 * time.Second
			d.nextBeat = 7 * time.Second // a previous reply's: replaced
			rep := &sailpoint.StatusReply{Body: sailpoint.ReplyBody{Configuration: map[string]string{sailpoint.ConfigNextHeartbeat: tt.value}}}
			d.handleReply(context.Background(), rep, time.Now(), nil)
			if d.nextBeat != tt.want {
				t.Errorf("nextBeat = %s, want %s", d.nextBeat, tt.want)
			}
			if d.interval != 30*time.Second {
				t.Errorf("interval changed to %s", d.interval)
			}
		})
	}
}

// loopAgainst runs a daemon's heartbeat loop against a server that
// answers heartbeat n (from 1) with the reply configuration config(n). It
// returns the daemon, the heartbeats counted so far and stop, which ends
// the loop.
func loopAgainst(t *testing.T, config func(n int32) string) (*Daemon, *atomic.Int32, func()) {
	t.Helper()
	beats := new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg := config(beats.Add(1))
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"NORMAL","type":"VA","timestamp":"` + time.Now().UTC().Format(time.RFC3339Nano) +
			`","body":{"id":"c1","clientId":"c1","clusterId":"p1","configuration":` + cfg + `,"jobs":[]}}`))
	}))
	t.Cleanup(srv.Close)
	d := testDaemon(t, func(deps *Deps) {
		deps.Server, _ = url.Parse(srv.URL)
		deps.Transport = srv.Client().Transport
		deps.Creds = state.Credentials{ClientID: "c1", Secret: "pcs_x"}
		deps.Facts = hostinfo.NewCollector(hostinfo.CollectorOptions{})
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.heartbeatLoop(ctx) }()
	return d, beats, func() { cancel(); <-done }
}

// waitBeats waits (30 s at most) until beats counts n heartbeats.
func waitBeats(t *testing.T, beats *atomic.Int32, n int32) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); beats.Load() < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d heartbeats, want %d", beats.Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHeartbeatLoopTakesNextHeartbeat: with an hour's interval, the
// server's nextHeartbeat brings the second heartbeat within seconds, once.
func TestHeartbeatLoopTakesNextHeartbeat(t *testing.T) {
	_, beats, stop := loopAgainst(t, func(n int32) string {
		if n == 1 {
			return `{"heartbeatInterval":"3600","nextHeartbeat":"1"}`
		}
		return `{"heartbeatInterval":"3600"}`
	})
	waitBeats(t, beats, 2)
	// Long enough for a third heartbeat had the hint stuck.
	time.Sleep(2500 * time.Millisecond)
	stop()
	if n := beats.Load(); n != 2 {
		t.Errorf("%d heartbeats, want 2: the first, then one at nextHeartbeat, then the hour's interval", n)
	}
}

// TestProgressHeartbeats: a job's progress is reported within
// ProgressDelay, in one heartbeat however many steps it took; a change
// reported at once (a job's end) carries the progress before it, with no
// heartbeat of its own left over.
func TestProgressHeartbeats(t *testing.T) {
	tests := []struct {
		name  string
		kicks func(d *Daemon)
	}{
		{"progress only", func(d *Daemon) { d.kickSoon(); d.kickSoon(); d.kickSoon() }},
		{"progress, then the end at once", func(d *Daemon) { d.kickSoon(); d.kick() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, beats, stop := loopAgainst(t, func(int32) string { return `{"heartbeatInterval":"3600"}` })
			waitBeats(t, beats, 1) // the first, at start
			tt.kicks(d)
			waitBeats(t, beats, 2)
			// Long enough for a progress heartbeat left over.
			time.Sleep(ProgressDelay + 500*time.Millisecond)
			stop()
			if n := beats.Load(); n != 2 {
				t.Errorf("%d heartbeats, want 2: the first, then one for the kicks", n)
			}
		})
	}
}
