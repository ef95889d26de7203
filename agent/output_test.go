package agent

import (
	"context"
	"errors"
	"testing"

	"github.com/poolagent/poolagent/platform/process"
	"github.com/poolagent/poolagent/updater"
)

// fakeService records nothing; the ring is written by the test.
type fakeService struct{ up bool }

func (f *fakeService) Start(context.Context) error           { f.up = true; return nil }
func (f *fakeService) Stop(context.Context) error            { f.up = false; return nil }
func (f *fakeService) Running(context.Context) (bool, error) { return f.up, nil }

// TestOutputServiceKeepsTheFailedVersionsOutput plays Apply's calls for a
// failed update: stop old, health phase, start new (it prints), stop new,
// start old (it prints too). The diagnostics are the new version's words
// only.
func TestOutputServiceKeepsTheFailedVersionsOutput(t *testing.T) {
	ring := process.NewRing(1 << 10)
	h := &outputService{Service: &fakeService{up: true}, ring: ring}
	ctx := t.Context()
	ring.Write([]byte("old version chatter\n"))
	if got := h.failedOutput(ctx); got != "" {
		t.Fatalf("before any job: %q", got)
	}
	h.arm(true)
	_ = h.Stop(ctx)
	h.newVersionStarts()
	_ = h.Start(ctx)
	ring.Write([]byte("new version: panic: nil map\n"))
	_ = h.Stop(ctx) // rollback
	_ = h.Start(ctx)
	ring.Write([]byte("old version is back\n"))
	got := h.failedOutput(ctx)
	h.arm(false)
	if got != "new version: panic: nil map\n" {
		t.Errorf("failed output %q; want only the new version's", got)
	}
	d := testDaemon(t)
	d.svcs["ad-agent"] = h
	diag := d.diagnostics(ctx, "ad-agent", updater.Result{Health: "GET http://127.0.0.1:1/healthz: HTTP 503"},
		errors.New("install: health check failed"))
	if diag == nil || diag.Output != got || diag.Health != "GET http://127.0.0.1:1/healthz: HTTP 503" {
		t.Errorf("diagnostics = %+v", diag)
	}
}
