package e2e

import (
	"os/exec"
	"strconv"
	"syscall"
)

// ownProcessGroup starts cmd in a new process group, so a console
// Ctrl+Break aimed at the test does not reach it.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

// killGroup ends cmd and every process it started (taskkill /T walks the
// process tree), as a power loss would; Windows has no process-group kill.
func killGroup(cmd *exec.Cmd) {
	if err := exec.Command("taskkill", "/F", "/T", "/PID", strconv.Itoa(cmd.Process.Pid)).Run(); err != nil {
		_ = cmd.Process.Kill()
	}
}

// signalStop stops the process. Windows has no SIGTERM to deliver to
// another process: both a stop and a kill terminate it.
func signalStop(cmd *exec.Cmd, _ bool) error {
	return cmd.Process.Kill()
}
