package updater

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"time"
)

// Service starts and stops a managed program. It is declared here, where
// it is used; platform/process implements it for supervised child
// processes and for the host's service manager.
type Service interface {
	// Start starts the program; starting a running program is not an error.
	Start(ctx context.Context) error
	// Stop stops the program and returns once it has exited; stopping a
	// stopped program is not an error.
	Stop(ctx context.Context) error
	// Running reports whether the program is up.
	Running(ctx context.Context) (bool, error)
}

func (h HealthCheck) withDefaults() HealthCheck {
	if h.Grace <= 0 {
		h.Grace = 5 * time.Second
	}
	if h.Timeout <= 0 {
		h.Timeout = 30 * time.Second
	}
	if h.Interval <= 0 {
		h.Interval = 200 * time.Millisecond
	}
	return h
}

// check runs after svc started the new version. The error says what an
// operator should look at; it wraps ErrHealthCheck.
func (u *Updater) healthCheck(ctx context.Context, svc Service, h HealthCheck) error {
	h = h.withDefaults()
	if svc != nil {
		// The process must stay up for the whole grace period: a binary
		// that crashes on start often lives for a few hundred ms.
		deadline := time.Now().Add(h.Grace)
		for {
			up, err := svc.Running(ctx)
			if err != nil {
				return fmt.Errorf("%w: query service: %w", ErrHealthCheck, err)
			}
			if !up {
				return fmt.Errorf("%w: process exited during the %s grace period (see the program's own log)", ErrHealthCheck, h.Grace)
			}
			left := time.Until(deadline)
			if left <= 0 {
				break
			}
			if err := sleep(ctx, min(left, h.Interval)); err != nil {
				return err
			}
		}
	}
	return u.probe(ctx, svc, h)
}

// CheckHealth runs a target's health check on the version that runs now:
// the check after a swap without its grace period (the service must be
// running, URL answer 2xx and Command exit 0, each polled every Interval
// until Timeout). poolagent's watch runs it every watch_interval after an
// install. The error says what an operator should look at; it wraps
// ErrHealthCheck.
func (u *Updater) CheckHealth(ctx context.Context, svc Service, h HealthCheck) error {
	h = h.withDefaults()
	if svc != nil {
		up, err := svc.Running(ctx)
		if err != nil {
			return fmt.Errorf("%w: query service: %w", ErrHealthCheck, err)
		}
		if !up {
			return fmt.Errorf("%w: the process is not running (see the program's own log)", ErrHealthCheck)
		}
	}
	return u.probe(ctx, svc, h)
}

// probe runs the URL and command checks and looks at the process once
// more; h has its defaults.
func (u *Updater) probe(ctx context.Context, svc Service, h HealthCheck) error {
	if h.URL != "" {
		if err := u.poll(ctx, h, func(ctx context.Context) error { return u.probeURL(ctx, h.URL) }); err != nil {
			return fmt.Errorf("%w: GET %s: %w", ErrHealthCheck, redact(h.URL), err)
		}
	}
	if len(h.Command) > 0 {
		if err := u.poll(ctx, h, func(ctx context.Context) error { return probeCommand(ctx, h.Command) }); err != nil {
			return fmt.Errorf("%w: command %q: %w", ErrHealthCheck, h.Command[0], err)
		}
	}
	if svc != nil {
		if up, err := svc.Running(ctx); err != nil || !up {
			return fmt.Errorf("%w: process exited during the health check", ErrHealthCheck)
		}
	}
	return nil
}

// poll retries probe every Interval until it succeeds or Timeout passes,
// and returns the last failure.
func (u *Updater) poll(ctx context.Context, h HealthCheck, probe func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	var last error
	for {
		err := probe(ctx)
		if err == nil {
			return nil
		}
		// A probe cut off by the deadline says less than the answer
		// before it (a 503, a refused connection): keep that one.
		if last == nil || ctx.Err() == nil {
			last = err
		}
		if sleep(ctx, h.Interval) != nil {
			return fmt.Errorf("no success within %s: last error: %w", h.Timeout, last)
		}
	}
}

func (u *Updater) probeURL(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	// Health URLs are local; no proxy, no redirects to elsewhere.
	c := &http.Client{
		Transport:     &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("HTTP %s", resp.Status)
	}
	return nil
}

func probeCommand(ctx context.Context, argv []string) error {
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		if len(out) > 512 {
			out = out[len(out)-512:]
		}
		return fmt.Errorf("%w; output: %q", err, out)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
