package infra

import "syscall"

// sysProcAttr puts the child in its own process group and has the kernel kill
// it if the test binary dies without running its cleanups (a panic in another
// goroutine, go test's -timeout, kill -9). Go sets Pdeathsig after switching
// credentials, so it survives the setuid that commit_creds would otherwise
// clear it on.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
}

// StopWithParent asks the kernel to send this process SIGTERM when its
// parent dies, so that a stack run under make drains its servers even when
// make itself is the one that was signalled.
func StopWithParent() error {
	_, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0)
	if errno != 0 {
		return errno
	}
	return nil
}
