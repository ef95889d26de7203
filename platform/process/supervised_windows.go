package process

import (
	"errors"
	"os"
	"syscall"
)

func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

// terminate kills the process: Windows has no SIGTERM for a console-less
// child, and a managed agent that needs a clean stop runs as a service.
func terminate(p *os.Process) error { return kill(p) }

func kill(p *os.Process) error {
	err := p.Kill()
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}
