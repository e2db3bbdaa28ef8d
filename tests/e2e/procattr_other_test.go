//go:build unix && !linux

package e2e

import "syscall"

// procAttr puts chatd in its own process group; Pdeathsig is Linux only, so
// elsewhere a killed test binary may leave a chatd behind.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
