package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evchat/chatd/tests/eventually"
	"github.com/evchat/chatd/tests/infra"
)

// testSecret is the HS256 secret every node gets unless a test overrides
// it: fixed, so that the tests can mint tokens (expired, forged) and so
// that the nodes of a future cluster test accept each other's tokens.
const testSecret = "e2e-secret-0123456789abcdef0123456789abcdef"

// Timeouts of the harness. They are generous for a loaded CI machine and
// only ever reached when something is wrong.
const (
	startTimeout = 15 * time.Second // from exec to /healthz answering 200
	stopTimeout  = 10 * time.Second // from SIGTERM to exit, before SIGKILL
	httpTimeout  = 10 * time.Second
)

// Node is one chatd process. Env is what it was started with (on top of
// baseEnv); Restart starts it again with the same Env and address, so a
// test can change Env between a Stop and a Restart.
type Node struct {
	t    testing.TB
	Name string
	Env  map[string]string
	addr string

	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *logBuffer
	done chan struct{} // closed when the current process has been reaped
	err  error         // cmd.Wait's result, valid once done is closed
}

// baseEnv is the environment a node starts with; env given to StartNode
// overrides it. The shutdown timeout is short so a drain that hangs shows
// up well inside the test's time.
func baseEnv(name string) map[string]string {
	env := map[string]string{
		"CHAT_AUTH_MODE":        "dev",
		"CHAT_AUTH_SECRET":      testSecret,
		"CHAT_NODE_ID":          name,
		"CHAT_SHUTDOWN_TIMEOUT": "5s",
		"CHAT_LOG_LEVEL":        "info",
	}
	if mode, set := infra.DeliveryMode(); set {
		env["CHAT_DELIVERY_MODE"] = mode
	}
	return env
}

// StartNode starts chatd on a free 127.0.0.1 port and waits until /healthz
// answers. The process is stopped when the test ends, pass or fail, and its
// output goes to the test log when the test failed.
func StartNode(t testing.TB, env map[string]string) *Node {
	t.Helper()
	name := fmt.Sprintf("e2e-%d", nodeSeq.next())
	n := &Node{t: t, Name: name, Env: baseEnv(name)}
	maps.Copy(n.Env, env)
	t.Cleanup(func() {
		n.Stop()
		if t.Failed() {
			t.Logf("chatd %s (%s) output:\n%s", n.Name, n.addr, n.Logs())
		}
	})
	// A port picked free can be taken by someone else before chatd binds
	// it; a few fresh ports make that race harmless.
	var err error
	for range 3 {
		n.addr = freeAddr(t)
		if err = n.start(); err == nil {
			return n
		}
		if !strings.Contains(n.Logs(), "address already in use") {
			break
		}
	}
	t.Fatalf("starting chatd %s: %v\noutput:\n%s", n.Name, err, n.Logs())
	return nil
}

// nodeSeq numbers the nodes of the test binary so their logs and node ids differ.
var nodeSeq counter

type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) next() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return c.n
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start runs the process and waits for /healthz; on failure the process is
// gone when it returns.
func (n *Node) start() error {
	// CHAT_* variables of the developer's shell are left out: a stray
	// CHAT_MONGO_URI must not turn an in-memory test node into a Mongo one.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHAT_") {
			env = append(env, kv)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(n.Env)) {
		env = append(env, k+"="+n.Env[k])
	}
	env = append(env, "CHAT_HTTP_ADDR="+n.addr)
	out := &logBuffer{}
	cmd := exec.Command(chatdBinary)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	n.mu.Lock()
	n.cmd, n.out, n.done = cmd, out, done
	n.mu.Unlock()
	go func() {
		err := cmd.Wait()
		n.mu.Lock()
		n.err = err
		n.mu.Unlock()
		close(done)
	}()

	client := &http.Client{Timeout: time.Second}
	err := eventually.Poll(startTimeout, func() (bool, error) {
		select {
		case <-done:
			return false, fmt.Errorf("chatd exited before it was healthy: %v", n.exitErr())
		default:
		}
		resp, err := client.Get(n.URL() + "/healthz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if errors.Is(err, eventually.ErrTimeout) {
		n.Kill()
		return fmt.Errorf("/healthz did not answer 200 within %v", startTimeout)
	}
	return err
}

// URL is the node's HTTP base URL, such as http://127.0.0.1:41234.
func (n *Node) URL() string { return "http://" + n.addr }

// WSURL is the node's WebSocket endpoint without a token.
func (n *Node) WSURL() string { return "ws://" + n.addr + "/ws" }

// Logs is everything the current process wrote to stdout and stderr.
func (n *Node) Logs() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.out == nil {
		return ""
	}
	return n.out.String()
}

// Signal sends sig to the running process.
func (n *Node) Signal(sig os.Signal) {
	n.t.Helper()
	n.mu.Lock()
	cmd := n.cmd
	n.mu.Unlock()
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		n.t.Errorf("signalling chatd %s: %v", n.Name, err)
	}
}

// Wait waits up to timeout for the process to exit and returns its exit
// code; ok is false when it was still running.
func (n *Node) Wait(timeout time.Duration) (code int, ok bool) {
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	select {
	case <-done:
		return n.exitCode(), true
	case <-time.After(timeout):
		return 0, false
	}
}

// Stop drains the node with SIGTERM and kills it if it has not exited
// within stopTimeout. It returns the exit code, -1 when it had to be
// killed. Stopping a node that has exited already returns its exit code.
func (n *Node) Stop() int {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return -1
	}
	select {
	case <-done:
		return n.exitCode()
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if code, ok := n.Wait(stopTimeout); ok {
		return code
	}
	n.t.Errorf("chatd %s did not exit within %v of SIGTERM; killing it", n.Name, stopTimeout)
	n.Kill()
	return -1
}

// Kill ends the process at once, as a crash would, and waits for it.
func (n *Node) Kill() {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart stops the node (SIGTERM) and starts it again on the same address
// with the current Env.
func (n *Node) Restart() {
	n.t.Helper()
	n.Stop()
	if err := n.start(); err != nil {
		n.t.Fatalf("restarting chatd %s: %v\noutput:\n%s", n.Name, err, n.Logs())
	}
}

func (n *Node) exitErr() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

// exitCode is the reaped process's exit code, -1 when a signal ended it.
func (n *Node) exitCode() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd.ProcessState.ExitCode()
}

// logBuffer collects a process's output; the process's two pipes write to
// it from their own goroutines while a test may read it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
