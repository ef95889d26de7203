package daemon

import (
	"fmt"

	"github.com/kardianos/service"
	"go.uber.org/zap"
)

// afterProgramExit is called when the program ended by itself under the
// Service Control Manager, which is still waiting for a stop request.
//
// After a failure Run returns at once, so main exits while the service is
// still reported as running: the SCM counts that as a crash and applies the
// recovery actions set at install (restart after Config.RestartDelay). A
// clean exit asks the SCM to stop the service instead, so that it is
// reported stopped and not restarted.
func (m *Manager) afterProgramExit(s service.Service, p *program, runErr <-chan error) error {
	if err := p.result(m.cfg.Name); err != nil {
		m.log.Error("program failed; exiting so that the service manager restarts it", zap.Error(err))
		return err
	}
	go func() {
		// kardianos's Stop waits for the service to stop, i.e. for this
		// process to go away; it is not waited for.
		if err := s.Stop(); err != nil {
			m.log.Warn("could not ask the service manager to stop the service", zap.Error(err))
		}
	}()
	if err := <-runErr; err != nil {
		return fmt.Errorf("run service %q with %s: %w", m.cfg.Name, service.Platform(), err)
	}
	return nil
}
