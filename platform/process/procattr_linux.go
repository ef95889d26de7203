package process

import "syscall"

// sysProcAttr puts the child in its own process group and has the kernel
// kill it when poolagent dies, so no stray copy survives a crash.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
