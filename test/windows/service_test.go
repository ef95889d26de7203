package windows_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/internal/winetest"
)

// TestServiceUnderWineSCM: `poolagent install` registers the service with
// Wine's Service Control Manager, `start` runs it (the registered
// `run --service` talks to the SCM: RUNNING, not a start timeout),
// heartbeats reach the server, `stop` stops it and `uninstall` removes it.
func TestServiceUnderWineSCM(t *testing.T) {
	w := needWine(t)
	s := newServer(t)
	h := s.newHost("winsvc", "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	h.must(t, "install")
	t.Cleanup(func() {
		if st, _, err := w.ServiceState(ctx, "poolagent"); err == nil {
			if st != "STOPPED" {
				_, _ = w.SC(ctx, "stop", "poolagent")
			}
			_, _ = w.SC(ctx, "delete", "poolagent")
		}
	})
	if _, err := w.WaitServiceState(ctx, "poolagent", "STOPPED", 30*time.Second); err != nil {
		t.Fatalf("after install: %v", err)
	}
	cmdline, err := w.ServiceCommandLine(ctx, "poolagent")
	if err != nil {
		t.Fatal(err)
	}
	if want := winetest.WindowsPath(h.exe) + " run --service --config " + winetest.WindowsPath(h.config); cmdline != want {
		t.Errorf("registered command line %q, want %q", cmdline, want)
	}

	if res := h.poolagent(t, "start"); res.Code != 0 {
		q, _ := w.SC(ctx, "query", "poolagent")
		t.Fatalf("poolagent start: %s\nsc query: %s", res, q)
	}
	if res, err := w.WaitServiceState(ctx, "poolagent", "RUNNING", 60*time.Second); err != nil {
		t.Fatalf("after start: %v\n%s", err, res)
	}
	s.waitHeartbeats("winsvc")
	if st := h.status(t); st == nil || !st.Connected {
		t.Errorf("status of the service: %+v", st)
	}

	h.must(t, "stop")
	if res, err := w.WaitServiceState(ctx, "poolagent", "STOPPED", 90*time.Second); err != nil {
		t.Fatalf("after stop: %v\n%s", err, res)
	}
	if res, err := w.SC(ctx, "query", "poolagent"); err != nil || !strings.Contains(res.Stdout, "EXIT_CODE") {
		t.Logf("sc query after stop: %v %s", err, res)
	} else if strings.Contains(res.Stdout, "1077") {
		t.Errorf("the service stopped with 1077 (never talked to the SCM): %s", res)
	}

	h.must(t, "uninstall")
	if st, res, err := w.ServiceState(ctx, "poolagent"); err == nil {
		t.Errorf("after uninstall the service is still %s: %s", st, res)
	}
}
