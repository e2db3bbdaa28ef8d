//go:build !linux

package infra

import "syscall"

// sysProcAttr has no Pdeathsig outside Linux: there a test binary that dies
// without running its cleanups leaves its servers behind.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Credential: cred}
}

// StopWithParent does nothing outside Linux, which has no parent-death signal.
func StopWithParent() error { return nil }
