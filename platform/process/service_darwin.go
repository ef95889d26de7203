package process

import (
	"context"
	"regexp"
	"strconv"
	"strings"
)

func (s *SystemService) target() string { return "system/" + s.Name }

func (s *SystemService) plist() string {
	if s.Plist != "" {
		return s.Plist
	}
	return "/Library/LaunchDaemons/" + s.Name + ".plist"
}

// start bootstraps the daemon if launchd does not know it (Stop booted it
// out, which also keeps KeepAlive from restarting it), then kickstarts it.
func (s *SystemService) start(ctx context.Context) error {
	if _, err := run(ctx, "launchctl", "print", s.target()); err != nil {
		if _, err := run(ctx, "launchctl", "bootstrap", "system", s.plist()); err != nil {
			return err
		}
	}
	_, err := run(ctx, "launchctl", "kickstart", s.target())
	return err
}

func (s *SystemService) stop(ctx context.Context) error {
	if _, err := run(ctx, "launchctl", "print", s.target()); err != nil {
		return nil // not loaded: stopped
	}
	_, err := run(ctx, "launchctl", "bootout", s.target())
	return err
}

func (s *SystemService) running(ctx context.Context) (bool, error) {
	out, err := run(ctx, "launchctl", "print", s.target())
	if err != nil {
		return false, nil
	}
	return strings.Contains(out, "state = running"), nil
}

var runsRE = regexp.MustCompile(`(?m)^\s*runs = (\d+)`)

// restarts reads launchd's run count: every start after the first is a
// restart (KeepAlive).
func (s *SystemService) restarts(ctx context.Context) (int, error) {
	out, err := run(ctx, "launchctl", "print", s.target())
	if err != nil {
		return 0, err
	}
	m := runsRE.FindStringSubmatch(out)
	if m == nil {
		return 0, ErrUnsupported
	}
	n, _ := strconv.Atoi(m[1])
	return max(n-1, 0), nil
}
