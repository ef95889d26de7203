//go:build unix

package e2e

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup puts cmd in its own process group, so a kill reaches the
// agent poolagent supervises only when the test means it to (killGroup).
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killGroup sends SIGKILL to cmd's whole process group: poolagent and the
// agent it supervises die together, as on a power loss.
func killGroup(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

// signalStop asks the process to stop (SIGTERM, or SIGKILL when hard).
func signalStop(cmd *exec.Cmd, hard bool) error {
	if hard {
		return cmd.Process.Signal(syscall.SIGKILL)
	}
	return cmd.Process.Signal(syscall.SIGTERM)
}
