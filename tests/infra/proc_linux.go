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
