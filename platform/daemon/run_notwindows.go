//go:build !windows

package daemon

import (
	"context"
	"fmt"

	"github.com/kardianos/service"
)

// runAsService is runService: kardianos's Run does not depend on its guess
// of the mode outside Windows.
func (m *Manager) runAsService(ctx context.Context, prog Program) error {
	return m.runService(ctx, prog)
}

// afterProgramExit is called when the program ended by itself under the
// service manager. On Unix the RunWait hook has already returned, so
// kardianos calls program.Stop (which returns at once) and its Run returns;
// main then exits and systemd or launchd apply the restart policy to the
// exit code.
func (m *Manager) afterProgramExit(_ service.Service, _ *program, runErr <-chan error) error {
	if err := <-runErr; err != nil {
		return fmt.Errorf("run service %q with %s: %w", m.cfg.Name, service.Platform(), err)
	}
	return nil
}
