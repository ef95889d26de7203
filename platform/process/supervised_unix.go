//go:build !windows

package process

import (
	"errors"
	"os"
	"syscall"
)

// terminate sends SIGTERM to the child's process group, so a wrapper
// script's children stop with it.
func terminate(p *os.Process) error { return signalGroup(p, syscall.SIGTERM) }

func kill(p *os.Process) error { return signalGroup(p, syscall.SIGKILL) }

func signalGroup(p *os.Process, sig syscall.Signal) error {
	err := syscall.Kill(-p.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		// Not a group leader after all, or already gone.
		err = p.Signal(sig)
		if errors.Is(err, os.ErrProcessDone) {
			return nil
		}
	}
	return err
}
