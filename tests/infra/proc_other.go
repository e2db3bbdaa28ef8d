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

// renice sets the niceness of the process, which outside Linux is one for
// all its threads.
func (p *process) renice(nice int) error {
	return syscall.Setpriority(syscall.PRIO_PROCESS, p.pid(), nice)
}
