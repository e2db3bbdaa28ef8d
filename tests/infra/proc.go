package infra

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/evchat/chatd/tests/eventually"
)

// process is one server child. It gets its own process group so that a stop
// reaches anything it forked, and its output goes to a log file that readiness
// checks scan and failures quote.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}

	mu      sync.Mutex
	waitErr error
}

type procSpec struct {
	name    string
	argv    []string
	dir     string
	env     []string
	logPath string
	// cred, when set, runs the child as another user: PostgreSQL refuses to
	// run as root, and setting credentials in the fork keeps the server's own
	// pid as ours, unlike a runuser/su wrapper in between.
	cred *syscall.Credential
}

func startProcess(s procSpec) (*process, error) {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), s.env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr(s.cred)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", s.name, err)
	}
	p := &process{name: s.name, cmd: cmd, logPath: s.logPath, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

// stop sends sig to the process group and waits up to grace before killing the
// group; it returns once the process has been reaped. A nil process or one
// already gone is fine, so cleanups can call it unconditionally.
func (p *process) stop(sig syscall.Signal, grace time.Duration) {
	if p == nil || p.exited() {
		return
	}
	_ = syscall.Kill(-p.pid(), sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
}

func (p *process) kill() { p.stop(syscall.SIGKILL, 10*time.Second) }

// logTail returns the last lines of the process's output, for error messages.
func (p *process) logTail(lines int) string {
	if p == nil {
		return ""
	}
	return fileTail(p.logPath, lines)
}

func fileTail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

func logContains(path, needle string) bool {
	b, err := os.ReadFile(path)
	return err == nil && bytes.Contains(b, []byte(needle))
}

// errExited is returned by waitFor when the server died while we waited for
// it, which otherwise shows up only as a time-out much later.
var errExited = errors.New("exited during start-up")

// waitFor polls ready until it reports true, the process exits or timeout
// passes; the error carries the tail of the process's log.
func waitFor(p *process, timeout time.Duration, ready func() bool) error {
	err := eventually.Poll(timeout, func() (bool, error) {
		if ready() {
			return true, nil
		}
		if p.exited() {
			return false, fmt.Errorf("%s %w (%v); last output:\n%s", p.name, errExited, p.exitErr(), p.logTail(30))
		}
		return false, nil
	})
	if errors.Is(err, eventually.ErrTimeout) {
		return fmt.Errorf("%s not ready after %v; last output:\n%s", p.name, timeout, p.logTail(30))
	}
	return err
}
