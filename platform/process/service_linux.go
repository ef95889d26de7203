package process

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

func (s *SystemService) start(ctx context.Context) error {
	_, err := run(ctx, "systemctl", "start", s.Name)
	return err
}

// stop uses systemctl stop, which waits for the unit to be inactive.
func (s *SystemService) stop(ctx context.Context) error {
	_, err := run(ctx, "systemctl", "stop", s.Name)
	return err
}

func (s *SystemService) running(ctx context.Context) (bool, error) {
	err := exec.CommandContext(ctx, "systemctl", "is-active", "--quiet", s.Name).Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ee):
		// is-active exits non-zero for inactive, failed and unknown units.
		return false, nil
	}
	return false, err
}

func (s *SystemService) restarts(ctx context.Context) (int, error) {
	out, err := run(ctx, "systemctl", "show", "--property=NRestarts", "--value", s.Name)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		return 0, fmt.Errorf("systemctl show NRestarts: %q is not a count (systemd before 235 does not keep one): %w", strings.TrimSpace(out), ErrUnsupported)
	}
	return n, nil
}
