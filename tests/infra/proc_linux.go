package infra

import (
	"errors"
	"os"
	"strconv"
	"syscall"
)

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

// renice sets the niceness of every thread of the process: Linux keeps it
// per thread, and the threads started so far took it from their creator.
func (p *process) renice(nice int) error {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(p.pid()) + "/task")
	if err != nil {
		return err
	}
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			continue
		}
		// A thread that ended meanwhile is no longer there to renice.
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
	}
	return nil
}
