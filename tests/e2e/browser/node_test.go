package browser

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evchat/chatd/tests/infra"

	"github.com/evchat/chatd/tests/eventually"
)

// testSecret is shared by every node this test starts, so that a token one
// node issues is good on another, as in a cluster.
const testSecret = "browser-e2e-secret-0123456789abcdef0123456789"

// repoRoot is the main module's directory: three levels up from this
// package, checked by its go.mod so that a moved test fails clearly.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !bytes.Contains(gomod, []byte("module github.com/evchat/chatd\n")) {
		t.Fatalf("%s is not the chatd module root (go.mod: %v)", root, err)
	}
	return root
}

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// chatdBinary builds ./bootstrap/chatd once per test binary into a
// temporary directory: a fresh build, so the page under test is the one in
// the work tree, and no clash with a bin/chatd that a developer runs.
func chatdBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "chatd-browser-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "chatd")
		cmd := exec.Command("go", "build", "-o", binary, "./bootstrap/chatd")
		cmd.Dir = repoRoot(t)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as `make build`: one build cache for all
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./bootstrap/chatd: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// startNode starts chatd on a free loopback port with env added to a dev
// mode base, waits for /healthz and returns its base URL. The process is
// stopped (SIGTERM, then SIGKILL after 10 s) when the test ends; its output
// is logged when the test failed.
func startNode(t *testing.T, name string, env map[string]string) string {
	t.Helper()
	bin := chatdBinary(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	full := map[string]string{
		"CHAT_AUTH_MODE":        "dev",
		"CHAT_AUTH_SECRET":      testSecret,
		"CHAT_NODE_ID":          name,
		"CHAT_SHUTDOWN_TIMEOUT": "3s",
		"CHAT_HTTP_ADDR":        addr,
	}
	maps.Copy(full, env)
	// CHAT_* of the developer's shell must not leak into the node.
	var environ []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHAT_") {
			environ = append(environ, kv)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(full)) {
		environ = append(environ, k+"="+full[k])
	}
	out := &syncBuffer{}
	cmd := exec.Command(bin)
	cmd.Env = environ
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting chatd: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		// Stopped by its own pid only.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("chatd %s output:\n%s", name, out.String())
		}
	})

	url := "http://" + addr
	client := &http.Client{Timeout: time.Second}
	errExited := errors.New("exited at start")
	err = eventually.Poll(90*time.Second, func() (bool, error) {
		select {
		case <-done:
			return false, errExited
		default:
		}
		resp, err := client.Get(url + "/healthz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("chatd %s: /healthz did not answer within 90s (%v):\n%s", name, err, out.String())
	}
	return url
}

// devTokenTTL is how long the nodes' dev tokens live.
const devTokenTTL = 12 * time.Second

// nodeURLs starts a cluster of two nodes on a MongoDB-wire store and a
// RocketMQ broker, as production runs, and returns the base URLs of the node
// user A talks to and of the other one, which user B talks to.
func nodeURLs(t *testing.T) (a, b string) {
	mongo := infra.StartMongoServer(t)
	broker := infra.StartRocketMQ(t)
	suffix := strings.ToLower(rand.Text()[:8])
	env := map[string]string{
		"CHAT_MONGO_URI":        mongo.URI(),
		"CHAT_MONGO_DB":         "browser_" + suffix,
		"CHAT_ROCKETMQ_NAMESRV": broker.NamesrvAddr(),
		"CHAT_ROCKETMQ_TOPIC":   "browser_" + suffix,
		// Tokens shorter than the test: the page must renew its token and
		// hand it to its live session (the auth frame), or the server
		// closes the session with 4001 and the page signs out mid-test.
		"CHAT_DEV_TOKEN_TTL": devTokenTTL.String(),
		// Broadcast offsets are files; keep them with the test.
		"rocketmq.client.localOffsetStoreDir": t.TempDir(),
	}
	if mode, set := infra.DeliveryMode(); set {
		env["CHAT_DELIVERY_MODE"] = mode
	}
	return startNode(t, "browser-1", env), startNode(t, "browser-2", env)
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// errChromiumMissing is why the test fails on a machine without chromium.
var errChromiumMissing = errors.New("chromium not found: run tests/e2e/browser/install.sh (make browser-deps)")

// chromiumPath finds Debian's chromium; CHROMIUM overrides it.
func chromiumPath() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errChromiumMissing
}

// proxy is a TCP relay in front of a node, so that the test can cut one
// browser's connections (as a lost network would) without touching the
// node or the other browser. While down it accepts and closes at once, so
// the page's reconnect attempts fail fast, as they do offline.
type proxy struct {
	t      *testing.T
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
}

func startProxy(t *testing.T, targetURL string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, ln: ln, target: strings.TrimPrefix(targetURL, "http://"), conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.Down()
	})
	return p
}

// URL is the proxy's base URL.
func (p *proxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		go p.relay(c)
	}
}

func (p *proxy) relay(c net.Conn) {
	defer p.forget(c)
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	defer p.forget(up)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}

func (p *proxy) forget(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// Down cuts every open connection and refuses new ones until Up.
func (p *proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
}

// Up lets connections through again.
func (p *proxy) Up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}
