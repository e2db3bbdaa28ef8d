package infra

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Chatd is one chatd node started from a built binary, for `make
// run-cluster` and the load benchmark. Its output goes to a log file that
// Logs returns; tests/e2e has its own harness, tied to *testing.T.
type Chatd struct {
	addr string
	proc *process
}

// LaunchChatd starts bin serving on addr (host:port) with env (KEY=value
// entries added to this process's environment) and waits until /healthz
// answers. logDir receives <name>.log.
func LaunchChatd(bin, name, addr, logDir string, env []string) (*Chatd, error) {
	p, err := startProcess(procSpec{
		name:    "chatd " + name,
		argv:    []string{bin},
		env:     append(env, "CHAT_HTTP_ADDR="+addr, "CHAT_NODE_ID="+name),
		logPath: filepath.Join(logDir, name+".log"),
	})
	if err != nil {
		return nil, err
	}
	c := &Chatd{addr: addr, proc: p}
	client := http.Client{Timeout: time.Second}
	err = waitFor(p, 60*time.Second, func() bool {
		resp, err := client.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if err != nil {
		c.Kill()
		return nil, err
	}
	return c, nil
}

// Addr is the node's host:port.
func (c *Chatd) Addr() string { return c.addr }

// Pid is the node's process id, for reading its RSS.
func (c *Chatd) Pid() int { return c.proc.pid() }

// LogPath is the file the node logs to.
func (c *Chatd) LogPath() string { return c.proc.logPath }

// Stop drains the node with SIGTERM, as an operator would, killing it if the
// drain takes longer than 30 s.
func (c *Chatd) Stop() { c.proc.stop(syscall.SIGTERM, 30*time.Second) }

// Kill ends the node at once.
func (c *Chatd) Kill() { c.proc.kill() }

// DumpGoroutines has the Go runtime write every goroutine's stack to the
// node's log, which ends the node: the post-mortem of a node that stopped
// answering.
func (c *Chatd) DumpGoroutines() {
	c.proc.stop(syscall.SIGQUIT, 10*time.Second)
}

// ChatdBinary is bin/chatd of the repository, checked to exist.
func ChatdBinary() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, "bin", "chatd")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("%s missing (%v): run `make build`", bin, err)
	}
	return bin, nil
}

// BuildChatd builds bin/chatd from the checkout, for test packages that run
// nodes. It builds to a temporary name and renames it into place, so that a
// chatd already running from bin/chatd (another test binary, a developer's
// `make run`) neither breaks the build with "text file busy" nor sees its
// file change under it, and a concurrent build leaves no half-written binary.
func BuildChatd() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	binDir := filepath.Join(root, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(binDir, ".chatd-build-*")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name()) // a no-op once renamed
	cmd := exec.Command("go", "build", "-o", tmp.Name(), "./bootstrap/chatd")
	cmd.Dir = root
	// Static, as `make build` makes it: the suites test the binary the
	// container image ships, and share one build cache with it.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./bootstrap/chatd: %v\n%s", err, out)
	}
	bin := filepath.Join(binDir, "chatd")
	return bin, os.Rename(tmp.Name(), bin)
}
