package process

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
)

// logs returns the unit's journal since since (at most lines lines),
// or "" where journalctl is not installed.
func (s *SystemService) logs(ctx context.Context, since int64, lines int) (string, error) {
	if _, err := exec.LookPath("journalctl"); err != nil {
		return "", nil
	}
	args := []string{"--no-pager", "--quiet", "--output=short-iso", "-u", s.Name, "-n", strconv.Itoa(lines)}
	if since > 0 {
		args = append(args, "--since=@"+strconv.FormatInt(since, 10))
	}
	out, err := exec.CommandContext(ctx, "journalctl", args...).Output()
	if err != nil {
		return "", fmt.Errorf("journalctl -u %s: %w", s.Name, err)
	}
	return string(out), nil
}
