package process

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"
)

func (s *SystemService) open() (*mgr.Mgr, *mgr.Service, error) {
	m, err := mgr.Connect()
	if err != nil {
		return nil, nil, fmt.Errorf("connect to the service control manager: %w", err)
	}
	sv, err := m.OpenService(s.Name)
	if err != nil {
		m.Disconnect()
		return nil, nil, err
	}
	return m, sv, nil
}

func (s *SystemService) start(ctx context.Context) error {
	m, sv, err := s.open()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer sv.Close()
	st, err := sv.Query()
	if err != nil {
		return err
	}
	if st.State != svc.Running && st.State != svc.StartPending {
		if err := sv.Start(); err != nil && !errors.Is(err, windows.ERROR_SERVICE_ALREADY_RUNNING) {
			return err
		}
	}
	return waitState(ctx, sv, svc.Running)
}

func (s *SystemService) stop(ctx context.Context) error {
	m, sv, err := s.open()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer sv.Close()
	st, err := sv.Query()
	if err != nil {
		return err
	}
	if st.State == svc.Stopped {
		return nil
	}
	if st.State != svc.StopPending {
		if _, err := sv.Control(svc.Stop); err != nil && !errors.Is(err, windows.ERROR_SERVICE_NOT_ACTIVE) {
			return err
		}
	}
	return waitState(ctx, sv, svc.Stopped)
}

func (s *SystemService) running(context.Context) (bool, error) {
	m, sv, err := s.open()
	if err != nil {
		return false, err
	}
	defer m.Disconnect()
	defer sv.Close()
	st, err := sv.Query()
	if err != nil {
		return false, err
	}
	return st.State == svc.Running, nil
}

func waitState(ctx context.Context, sv *mgr.Service, want svc.State) error {
	for {
		st, err := sv.Query()
		if err != nil {
			return err
		}
		if st.State == want {
			return nil
		}
		if want == svc.Running && st.State == svc.Stopped {
			return errors.New("service stopped while starting (see the Windows event log)")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("still in state %d: %w", st.State, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// restarts: the Service Control Manager keeps no restart count.
func (s *SystemService) restarts(context.Context) (int, error) { return 0, ErrUnsupported }
