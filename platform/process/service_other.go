//go:build !linux && !darwin && !windows

package process

import "context"

func (s *SystemService) start(context.Context) error { return ErrUnsupported }

func (s *SystemService) stop(context.Context) error { return ErrUnsupported }

func (s *SystemService) running(context.Context) (bool, error) { return false, ErrUnsupported }

func (s *SystemService) restarts(context.Context) (int, error) { return 0, ErrUnsupported }
