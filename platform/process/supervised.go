package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"time"

	"go.uber.org/zap"
)

// DefaultStopTimeout is how long Stop waits after the polite signal before
// it kills the process.
const DefaultStopTimeout = 10 * time.Second

// Supervised runs a program as a child of poolagent. Stop asks it to exit
// (SIGTERM to its process group; Windows has no such signal, so there it
// is killed) and kills it after StopTimeout. On Linux the child is killed
// if poolagent dies, so a restarted poolagent never finds a stray copy
// holding the binary or its port.
//
// Set the fields before the first Start and do not change them after.
type Supervised struct {
	Path        string
	Args        []string
	Dir         string
	Env         []string // nil: poolagent's environment
	StopTimeout time.Duration
	Stdout      io.Writer
	Stderr      io.Writer
	Logger      *zap.Logger

	op   sync.Mutex // serialises Start and Stop
	mu   sync.Mutex // guards the fields below
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// NewSupervised returns a Supervised for path and args.
func NewSupervised(path string, args ...string) *Supervised {
	return &Supervised{Path: path, Args: args}
}

func (s *Supervised) log() *zap.Logger {
	if s.Logger == nil {
		return zap.NewNop()
	}
	return s.Logger
}

// Start starts the program unless it is running.
func (s *Supervised) Start(ctx context.Context) error {
	s.op.Lock()
	defer s.op.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.running() {
		return nil
	}
	cmd := exec.Command(s.Path, s.Args...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = s.Dir, s.Env, s.Stdout, s.Stderr
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.Path, err)
	}
	done := make(chan struct{})
	s.mu.Lock()
	s.cmd, s.done, s.err = cmd, done, nil
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(done)
		s.log().Info("supervised process exited", zap.String("path", s.Path), zap.Int("pid", cmd.Process.Pid), zap.Error(err))
	}()
	s.log().Info("supervised process started", zap.String("path", s.Path), zap.Int("pid", cmd.Process.Pid))
	return nil
}

// Stop stops the program and waits for it to exit.
func (s *Supervised) Stop(ctx context.Context) error {
	s.op.Lock()
	defer s.op.Unlock()
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil || !s.running() {
		return nil
	}
	timeout := s.StopTimeout
	if timeout <= 0 {
		timeout = DefaultStopTimeout
	}
	if err := terminate(cmd.Process); err != nil {
		s.log().Warn("terminate supervised process", zap.Error(err))
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		s.log().Warn("supervised process ignored the stop request; killing it", zap.String("path", s.Path), zap.Duration("after", timeout))
	case <-ctx.Done():
	}
	if err := kill(cmd.Process); err != nil {
		s.log().Warn("kill supervised process", zap.Error(err))
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop %s: %w", s.Path, ctx.Err())
	}
}

// Running reports whether the program is up.
func (s *Supervised) Running(context.Context) (bool, error) {
	return s.running(), nil
}

func (s *Supervised) running() bool {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Pid returns the process id of the current or last run, or 0.
func (s *Supervised) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// ExitErr returns how the last run ended (nil while running or after a
// clean exit).
func (s *Supervised) ExitErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// ErrUnsupported is returned by SystemService on a platform without a
// supported service manager.
var ErrUnsupported = errors.New("service control not supported on this platform")
