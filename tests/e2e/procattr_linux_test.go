package e2e

import "syscall"

// procAttr puts chatd in its own process group, so a Ctrl-C in the terminal
// reaches only the test binary, which then stops it in order, and has the
// kernel kill it if the test binary dies first, so no chatd outlives a
// crashed or killed test run.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
