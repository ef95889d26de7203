package daemon

import (
	"context"
	"errors"
	"testing"
	"time"
)

// foregroundManager returns a Manager that always takes the foreground path.
func foregroundManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "poolagent-test"
	}
	m, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.interactive = func() bool { return true }
	return m
}

func TestRunForegroundReturnsWhenContextCancelled(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name string
		// prog is run with a context that the test cancels once prog has
		// started (when cancelAfterStart is set).
		prog             Program
		cancelAfterStart bool
		wantErr          error // nil: Run must return nil
	}{
		{
			name:             "returns ctx error after cancel: clean stop",
			prog:             func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
			cancelAfterStart: true,
		},
		{
			name:             "returns wrapped ctx error after cancel: clean stop",
			prog:             func(ctx context.Context) error { <-ctx.Done(); return errors.Join(errors.New("heartbeat"), ctx.Err()) },
			cancelAfterStart: true,
		},
		{
			name:             "returns nil after cancel",
			prog:             func(ctx context.Context) error { <-ctx.Done(); return nil },
			cancelAfterStart: true,
		},
		{
			name:             "fails while stopping",
			prog:             func(ctx context.Context) error { <-ctx.Done(); return errBoom },
			cancelAfterStart: true,
			wantErr:          errBoom,
		},
		{
			name:    "fails by itself",
			prog:    func(context.Context) error { return errBoom },
			wantErr: errBoom,
		},
		{
			name:    "returns context.Canceled by itself: not a requested stop",
			prog:    func(context.Context) error { return context.Canceled },
			wantErr: context.Canceled,
		},
		{
			name: "returns nil by itself",
			prog: func(context.Context) error { return nil },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := foregroundManager(t, Config{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			started := make(chan struct{})
			prog := func(pctx context.Context) error {
				close(started)
				return tt.prog(pctx)
			}
			if tt.cancelAfterStart {
				go func() { <-started; cancel() }()
			}
			err := m.Run(ctx, prog)
			if tt.wantErr == nil && err != nil {
				t.Fatalf("Run = %v, want nil", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run = %v, want an error wrapping %v", err, tt.wantErr)
			}
		})
	}
}

func TestRunForegroundStopTimeout(t *testing.T) {
	m := foregroundManager(t, Config{StopTimeout: time.Nanosecond})
	release := make(chan struct{})
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	go func() { <-started; cancel() }()
	// The program ignores cancellation until the test ends, so Run can
	// only return through the stop timeout.
	err := m.Run(ctx, func(context.Context) error { close(started); <-release; return nil })
	if !errors.Is(err, ErrStopTimeout) {
		t.Fatalf("Run = %v, want ErrStopTimeout", err)
	}
}

func TestProgramLifecycle(t *testing.T) {
	// kardianos's contract: Start must not block, Stop must return (not
	// exit) once the program has stopped.
	ctx := context.Background()
	running := make(chan struct{})
	var sawCancel bool
	p := newProgram(ctx, func(ctx context.Context) error {
		close(running)
		<-ctx.Done()
		sawCancel = true
		return ctx.Err()
	}, time.Hour)
	if err := p.Start(nil); err != nil { // returns while the program blocks
		t.Fatalf("Start: %v", err)
	}
	<-running
	if err := p.Stop(nil); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-p.exited:
	default:
		t.Fatal("Stop returned before the program exited")
	}
	if !sawCancel {
		t.Error("program did not see its context cancelled")
	}
	if err := p.result("test"); err != nil {
		t.Errorf("result after Stop = %v, want nil", err)
	}
	// A second Start must not run the program again.
	if err := p.Start(nil); err != nil {
		t.Fatalf("second Start: %v", err)
	}
}
