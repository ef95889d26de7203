package process

import (
	"context"
	"fmt"
	"time"
)

// SystemService controls a service of the host's service manager: a
// systemd unit on Linux, a service of the Service Control Manager on
// Windows, a launchd daemon on macOS.
type SystemService struct {
	// Name is the unit name ("okta-ad-agent.service"), the Windows
	// service name, or the launchd label.
	Name string
	// Plist is the launchd property list (macOS only); default
	// /Library/LaunchDaemons/<Name>.plist.
	Plist string
	// Timeout bounds each operation. Default 60 s.
	Timeout time.Duration
}

// NewSystemService returns a SystemService for name.
func NewSystemService(name string) *SystemService { return &SystemService{Name: name} }

// Start starts the service; a running service is left alone.
func (s *SystemService) Start(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return wrap("start", s.Name, s.start(ctx))
}

// Stop stops the service and returns once it is stopped.
func (s *SystemService) Stop(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return wrap("stop", s.Name, s.stop(ctx))
}

// Running reports whether the service is running.
func (s *SystemService) Running(ctx context.Context) (bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	up, err := s.running(ctx)
	return up, wrap("query", s.Name, err)
}

func (s *SystemService) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	t := s.Timeout
	if t <= 0 {
		t = 60 * time.Second
	}
	return context.WithTimeout(ctx, t)
}

func wrap(op, name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s service %s: %w", op, name, err)
}

// Logs returns the last lines (at most lines) the service logged since
// since (the zero time: no bound): `journalctl -u NAME` on Linux; "" where
// there is no journal to read.
func (s *SystemService) Logs(ctx context.Context, since time.Time, lines int) (string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var at int64
	if !since.IsZero() {
		at = since.Unix()
	}
	return s.logs(ctx, at, lines)
}

// Restarts returns how many times the service manager restarted the
// service on its own (a crash and its Restart= policy): systemd's NRestarts
// on Linux, launchd's runs minus one on macOS. It returns ErrUnsupported
// where the service manager does not tell (Windows).
func (s *SystemService) Restarts(ctx context.Context) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	n, err := s.restarts(ctx)
	return n, wrap("query", s.Name, err)
}
