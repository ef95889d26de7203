package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/kardianos/service"
	"go.uber.org/zap"
	"golang.org/x/sys/windows/svc"
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

// runAsService runs prog under the Service Control Manager through
// svc.Run, whatever svc.IsWindowsService says. Exits mirror runService's:
// after a failure of prog Run returns while the service is still reported
// running, so that the SCM applies the recovery actions; after a clean exit
// the service is reported stopped first.
func (m *Manager) runAsService(ctx context.Context, prog Program) error {
	p := newProgram(ctx, prog, m.cfg.StopTimeout)
	h := &scmHandler{p: p}
	runErr := make(chan error, 1)
	go func() { runErr <- svc.Run(m.cfg.Name, h) }()
	select {
	case err := <-runErr:
		if err != nil {
			p.cancel()
			return fmt.Errorf("run service %q: talk to the Service Control Manager (was poolagent started by it? `run` without --service runs in the foreground): %w", m.cfg.Name, err)
		}
		if h.stopErr != nil {
			return fmt.Errorf("run %s: %w", m.cfg.Name, h.stopErr)
		}
	case <-p.exited:
		if err := p.result(m.cfg.Name); err != nil {
			m.log.Error("program failed; exiting so that the service manager restarts it", zap.Error(err))
			return err
		}
		// Execute sees the exit and reports the service stopped.
		if err := <-runErr; err != nil {
			return fmt.Errorf("run service %q: %w", m.cfg.Name, err)
		}
	}
	return p.result(m.cfg.Name)
}

// scmHandler is the svc.Handler of runAsService.
type scmHandler struct {
	p       *program
	stopErr error // set before Execute returns
}

// Execute implements svc.Handler.
func (h *scmHandler) Execute(_ []string, r <-chan svc.ChangeRequest, changes chan<- svc.Status) (bool, uint32) {
	const accepts = svc.AcceptStop | svc.AcceptShutdown
	changes <- svc.Status{State: svc.StartPending}
	h.p.start()
	changes <- svc.Status{State: svc.Running, Accepts: accepts}
	exited := h.p.exited
	for {
		select {
		case c := <-r:
			switch c.Cmd {
			case svc.Interrogate:
				changes <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				changes <- svc.Status{State: svc.StopPending, WaitHint: uint32(h.p.stopTimeout / time.Millisecond)}
				if err := h.p.stop(); err != nil {
					h.stopErr = err
					return true, 2
				}
				return false, 0
			}
		case <-exited:
			if h.p.result("") != nil {
				// Failed: the service stays running until the process
				// exits under it, a crash for the SCM, which then
				// applies the recovery actions.
				exited = nil
				continue
			}
			changes <- svc.Status{State: svc.StopPending}
			return false, 0
		}
	}
}
