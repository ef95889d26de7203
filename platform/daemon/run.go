package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/kardianos/service"
	"go.uber.org/zap"
)

// Program is the daemon's main loop. It must return soon after ctx is
// cancelled; returning ctx's error then counts as a clean stop. Returning
// on its own ends the daemon: with an error, the service manager restarts
// it (per Config.Restart); with nil, it stays stopped.
type Program func(ctx context.Context) error

// shutdownSignals cancel the program in the foreground and, on Unix, under
// the service manager (systemd and launchd stop services with SIGTERM).
var shutdownSignals = []os.Signal{os.Interrupt, syscall.SIGTERM}

// Run runs prog until it returns. Started by the service manager, it runs
// prog as the service and cancels its context when the manager stops the
// service; otherwise it runs prog in the foreground and cancels its context
// on SIGTERM or SIGINT. Cancelling ctx also stops prog. A second signal
// after the first one kills the process (the default signal action).
//
// Run returns nil when prog stopped cleanly, prog's error when it failed,
// and an error wrapping ErrStopTimeout when prog did not return within
// Config.StopTimeout of being cancelled. main should exit non-zero on an
// error so that the service manager restarts the daemon.
func (m *Manager) Run(ctx context.Context, prog Program) error {
	if m.interactive() {
		m.log.Debug("running in the foreground")
		return m.runForeground(ctx, prog)
	}
	m.log.Info("running under the service manager", zap.String("manager", service.Platform()))
	return m.runService(ctx, prog)
}

// RunService runs prog as the service, for a process the service manager
// started with the command line Install registered (the caller's flag says
// so: nothing is guessed). On Windows it talks to the Service Control
// Manager directly (golang.org/x/sys/windows/svc), which kardianos/service
// does only when svc.IsWindowsService's heuristic, false under Wine, says
// so; elsewhere it is Run under the service manager. The results are Run's.
func (m *Manager) RunService(ctx context.Context, prog Program) error {
	m.log.Info("running under the service manager", zap.String("manager", service.Platform()))
	return m.runAsService(ctx, prog)
}

// runForeground runs prog with a context cancelled by ctx or a shutdown
// signal.
func (m *Manager) runForeground(ctx context.Context, prog Program) error {
	sigCtx, stopSignals := signal.NotifyContext(ctx, shutdownSignals...)
	defer stopSignals()
	p := newProgram(sigCtx, prog, m.cfg.StopTimeout)
	// After the first signal restore the default action, so that a
	// second Ctrl-C kills a daemon that is stuck stopping.
	context.AfterFunc(sigCtx, stopSignals)
	p.start()
	select {
	case <-p.exited:
	case <-sigCtx.Done():
		m.log.Info("stop requested", zap.Error(context.Cause(sigCtx)))
		if err := p.stop(); err != nil {
			return fmt.Errorf("run %s: %w", m.cfg.Name, err)
		}
	}
	return p.result(m.cfg.Name)
}

// runService hands prog to kardianos's Run, which calls program.Start and,
// when the service manager asks, program.Stop.
func (m *Manager) runService(ctx context.Context, prog Program) error {
	p := newProgram(ctx, prog, m.cfg.StopTimeout)
	// Catch the signals before the program starts, so that a stop request
	// arriving while kardianos is still calling Start is not lost (the
	// default action would kill the process).
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, shutdownSignals...)
	defer signal.Stop(sig)
	p.runWait = func() { p.waitStopRequest(ctx, sig) }
	s, err := m.newService(p)
	if err != nil {
		return fmt.Errorf("run service %q: %w", m.cfg.Name, err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run() }()
	select {
	case err := <-runErr:
		if err != nil {
			return fmt.Errorf("run service %q with %s: %w", m.cfg.Name, service.Platform(), err)
		}
	case <-p.exited:
		// The program ended by itself (or because ctx ended).
		if err := m.afterProgramExit(s, p, runErr); err != nil {
			return err
		}
	}
	return p.result(m.cfg.Name)
}

// program adapts a Program to kardianos's Interface: Start launches it in a
// goroutine and returns at once; Stop cancels it and waits, bounded by the
// stop timeout, and never exits the process.
type program struct {
	run         Program
	parent      context.Context
	ctx         context.Context
	cancel      context.CancelFunc
	stopTimeout time.Duration
	exited      chan struct{}
	err         error // prog's result; read only after exited is closed

	startOnce sync.Once
	mu        sync.Mutex
	stopped   bool // stop was requested

	// runWait, when set, replaces kardianos's own signal wait on Unix.
	runWait func()
}

func newProgram(parent context.Context, run Program, stopTimeout time.Duration) *program {
	ctx, cancel := context.WithCancel(parent)
	return &program{run: run, parent: parent, ctx: ctx, cancel: cancel, stopTimeout: stopTimeout, exited: make(chan struct{})}
}

// Start implements service.Interface. It must not block.
func (p *program) Start(service.Service) error {
	p.start()
	return nil
}

// Stop implements service.Interface: it cancels the program and waits for
// it to return, at most the stop timeout. It never exits the process.
func (p *program) Stop(service.Service) error {
	return p.stop()
}

func (p *program) start() {
	p.startOnce.Do(func() {
		go func() {
			defer close(p.exited)
			p.err = p.run(p.ctx)
		}()
	})
}

func (p *program) stop() error {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	p.cancel()
	t := time.NewTimer(p.stopTimeout)
	defer t.Stop()
	select {
	case <-p.exited:
		return nil
	case <-t.C:
		return fmt.Errorf("%w: still running %s after being asked to stop", ErrStopTimeout, p.stopTimeout)
	}
}

// waitStopRequest blocks until the service should stop: a shutdown signal
// on sig, the program ending by itself, or ctx ending.
func (p *program) waitStopRequest(ctx context.Context, sig <-chan os.Signal) {
	select {
	case <-sig:
	case <-p.exited:
	case <-ctx.Done():
	}
}

// cancelled reports whether the program was asked to stop, by Stop or by
// its parent context ending.
func (p *program) cancelled() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopped || p.parent.Err() != nil
}

// result waits for the program to exit and returns its outcome: nil when it
// returned nil, or returned its context's error after being asked to stop;
// its error otherwise.
func (p *program) result(name string) error {
	<-p.exited
	err := p.err
	if err == nil {
		return nil
	}
	if p.cancelled() && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return nil
	}
	return fmt.Errorf("run %s: %w", name, err)
}
