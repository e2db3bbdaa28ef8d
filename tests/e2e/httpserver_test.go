package e2e

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestEveryHTTPErrorIsJSON checks the errors that net/http would answer in
// plain text: unknown routes, wrong methods (with their Allow header) and
// the web page's missing assets.
func TestEveryHTTPErrorIsJSON(t *testing.T) {
	t.Parallel()
	n := StartNode(t, nil)
	for _, tt := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{http.MethodGet, "/no/such/route", http.StatusNotFound, "not_found", ""},
		{http.MethodGet, "/assets/no-such-file.js", http.StatusNotFound, "not_found", ""},
		{http.MethodDelete, "/api/conversations", http.StatusMethodNotAllowed, "bad_request", "GET, HEAD"},
		{http.MethodPut, "/api/messages", http.StatusMethodNotAllowed, "bad_request", "POST"},
		{http.MethodPost, "/", http.StatusMethodNotAllowed, "bad_request", "GET, HEAD"},
	} {
		req, err := http.NewRequest(tt.method, n.URL()+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.method, tt.path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		what := tt.method + " " + tt.path
		expectError(t, what, resp.StatusCode, body, tt.status, tt.code)
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q, want application/json", what, ct)
		}
		if got := resp.Header.Get("Allow"); got != tt.allow {
			t.Errorf("%s: Allow %q, want %q", what, got, tt.allow)
		}
	}
}

// TestSlowRequestsAreCut checks CHAT_HTTP_READ_TIMEOUT: a request whose
// headers or body trickle in slower than it allows loses its connection
// long before it would have been complete.
func TestSlowRequestsAreCut(t *testing.T) {
	t.Parallel()
	const readTimeout = time.Second
	n := StartNode(t, map[string]string{"CHAT_HTTP_READ_TIMEOUT": readTimeout.String()})
	token := n.Token(t, "alice")
	body := `{"id":"slow-1","to":"bob","body":"` + strings.Repeat("x", 40) + `"}`
	for _, tt := range []struct {
		name            string
		prompt, trickle string
	}{
		{"headers", "POST /api/messages HTTP/1.1\r\n", "Host: chat\r\nAuthorization: Bearer " + token + "\r\n\r\n"},
		{"body", "POST /api/messages HTTP/1.1\r\nHost: chat\r\nAuthorization: Bearer " + token +
			"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n", body},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conn, err := net.Dial("tcp", strings.TrimPrefix(n.URL(), "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			if _, err := io.WriteString(conn, tt.prompt); err != nil {
				t.Fatal(err)
			}
			// One byte every 100 ms: the whole request would take several
			// read timeouts.
			go func() {
				for i := range len(tt.trickle) {
					time.Sleep(100 * time.Millisecond)
					if _, err := conn.Write([]byte{tt.trickle[i]}); err != nil {
						return
					}
				}
			}()
			full := time.Duration(len(tt.trickle)) * 100 * time.Millisecond
			if full < 4*readTimeout {
				t.Fatalf("the trickle takes only %v", full)
			}
			_ = conn.SetReadDeadline(time.Now().Add(full))
			answer, err := io.ReadAll(conn)
			elapsed := time.Since(start)
			var netErr net.Error
			if errors.As(err, &netErr) && netErr.Timeout() {
				t.Fatalf("the connection was still open after %v (read %q)", elapsed, answer)
			}
			if elapsed < readTimeout-100*time.Millisecond || elapsed > 3*readTimeout {
				t.Fatalf("the connection ended after %v, want about the read timeout %v (read %q)", elapsed, readTimeout, answer)
			}
			if strings.Contains(string(answer), " 202 ") || strings.Contains(string(answer), " 200 ") {
				t.Fatalf("the slow request was served: %q", answer)
			}
		})
	}
}

// TestIdleKeepAliveIsClosed checks CHAT_HTTP_IDLE_TIMEOUT: a keep-alive
// connection with no next request is closed once it has been idle that long.
func TestIdleKeepAliveIsClosed(t *testing.T) {
	t.Parallel()
	const idleTimeout = time.Second
	n := StartNode(t, map[string]string{"CHAT_HTTP_IDLE_TIMEOUT": idleTimeout.String()})
	conn, err := net.Dial("tcp", strings.TrimPrefix(n.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: chat\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("GET /healthz: %s, close %v; want 200 kept alive", resp.Status, resp.Close)
	}
	idleSince := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(5 * idleTimeout))
	_, err = r.ReadByte()
	idle := time.Since(idleSince)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("after %v idle: %v, want the server to close the connection", idle, err)
	}
	if idle < idleTimeout-100*time.Millisecond || idle > 3*idleTimeout {
		t.Fatalf("closed after %v idle, want about %v", idle, idleTimeout)
	}
}

// TestWebSocketOutlivesTheReadTimeout checks that the server's read timeout
// bounds only the upgrade request: a session idle for several read timeouts,
// answering the server's pings, stays open.
func TestWebSocketOutlivesTheReadTimeout(t *testing.T) {
	t.Parallel()
	const readTimeout = 500 * time.Millisecond
	n := StartNode(t, map[string]string{"CHAT_HTTP_READ_TIMEOUT": readTimeout.String(), "CHAT_PING_INTERVAL": "200ms"})
	c := n.Dial(t, "alice")
	time.Sleep(4 * readTimeout)
	c.Ping()
}

// TestDevModeListensOnLoopbackByDefault starts a dev node with no
// CHAT_HTTP_ADDR, as `make run` does: it must bind 127.0.0.1:8080, where
// nobody beyond this machine can mint tokens, and so must not warn. Should
// another process hold 8080, the node's refusal names the same address.
func TestDevModeListensOnLoopbackByDefault(t *testing.T) {
	t.Parallel()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHAT_") {
			env = append(env, kv)
		}
	}
	env = append(env, "CHAT_AUTH_MODE=dev", "CHAT_NODE_ID=e2e-default-addr", "CHAT_SHUTDOWN_TIMEOUT=5s")
	out := &logBuffer{}
	cmd := exec.Command(chatdBinary)
	cmd.Env, cmd.Stdout, cmd.Stderr, cmd.SysProcAttr = env, out, out, procAttr()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			t.Logf("chatd stopped: %v", err)
		case <-time.After(stopTimeout):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.Logf("chatd killed after %v: %v", stopTimeout, <-exited)
		}
	})

	const want = "127.0.0.1:8080"
	deadline := time.Now().Add(startTimeout)
	for {
		logs := out.String()
		switch {
		case strings.Contains(logs, "msg=\"chatd listening\" addr="+want):
			if strings.Contains(logs, "level=WARN") && strings.Contains(logs, "sign in as anyone") {
				t.Errorf("a dev node on loopback warned that anyone may sign in:\n%s", logs)
			}
			return
		case strings.Contains(logs, "CHAT_HTTP_ADDR "+want) && strings.Contains(logs, "address already in use"):
			return // 8080 is taken here; the node still chose loopback
		case time.Now().After(deadline):
			t.Fatalf("no sign of the node listening on %s within %v:\n%s", want, startTimeout, logs)
		}
		select {
		case err := <-exited:
			exited <- err
			if !strings.Contains(out.String(), "CHAT_HTTP_ADDR "+want) {
				t.Fatalf("chatd exited (%v) without naming %s:\n%s", err, want, out.String())
			}
		case <-time.After(20 * time.Millisecond):
		}
	}
}
