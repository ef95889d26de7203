//go:build !linux

package process

import "context"

// logs: only systemd's journal is read; elsewhere a service's log is
// wherever the program writes it.
func (s *SystemService) logs(context.Context, int64, int) (string, error) { return "", nil }
