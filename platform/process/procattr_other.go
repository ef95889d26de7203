//go:build !linux && !windows

package process

import "syscall"

// sysProcAttr puts the child in its own process group. There is no
// parent-death signal outside Linux: a child outlives a crashed poolagent.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
