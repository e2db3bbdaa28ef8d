package e2e

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestHealthReadyMetrics: the probes answer 200 on the embedded default,
// and /metrics is Prometheus text with the chat instruments.
func TestHealthReadyMetrics(t *testing.T) {
	t.Parallel()
	n := StartNode(t, nil)
	for _, path := range []string{"/healthz", "/readyz"} {
		if status, body := n.Do(t, http.MethodGet, path, "", nil); status != http.StatusOK {
			t.Errorf("GET %s: %d %s, want 200", path, status, body)
		}
	}

	// One session open and one send acked, so that every instrument,
	// labelled ones included, has a sample.
	alice := n.Dial(t, "alice")
	alice.SendMessage("m-1", "bob", "measured")

	resp, err := httpClient.Get(n.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d, Content-Type %q, want 200 text/plain", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`(?m)^# TYPE chat_websocket_sessions gauge$`,
		`(?m)^chat_websocket_sessions 1$`,
		`(?m)^# TYPE chat_websocket_frames_in_total counter$`,
		`(?m)^chat_websocket_frames_in_total\{type="send"\} 1$`,
		`(?m)^# TYPE chat_websocket_frames_out_total counter$`,
		`(?m)^chat_websocket_frames_out_total\{type="ack"\} 1$`,
		`(?m)^chat_sends_total\{outcome="ok",transport="websocket"\} 1$`,
		`(?m)^# TYPE chat_send_ack_seconds histogram$`,
		`(?m)^chat_send_ack_seconds_count\{transport="websocket"\} 1$`,
		`(?m)^# TYPE chat_delivery_commits_received_total counter$`,
	} {
		if !regexp.MustCompile(want).MatchString(text) {
			t.Errorf("/metrics has no line matching %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", text)
	}
}

// TestRateLimit: beyond a user's burst, a send gets `rate_limited` with its
// id, the session stays usable, and sends pass again once the rate allows.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	n := StartNode(t, map[string]string{"CHAT_SEND_RATE": "1", "CHAT_SEND_BURST": "3"})
	alice, bob := n.Dial(t, "alice"), n.Dial(t, "bob")

	for i := 1; i <= 4; i++ {
		alice.Send(map[string]string{"type": "send", "id": fmt.Sprintf("rl-%d", i), "to": "bob", "body": "quick"})
	}
	for i := 1; i <= 3; i++ {
		checkAck(t, alice.Next("ack", byID(fmt.Sprintf("rl-%d", i))), fmt.Sprintf("rl-%d", i))
	}
	if e := alice.Next("error", byID("rl-4")); e.Code != "rate_limited" {
		t.Errorf("4th quick send: got %s, want code rate_limited", e)
	}
	alice.None("ack", byID("rl-4"))
	alice.Ping()
	// The limit is the user's, not the session's: a second session of
	// alice is limited too, while bob is not.
	alice2 := n.Dial(t, "alice")
	alice2.Send(map[string]string{"type": "send", "id": "rl-5", "to": "bob", "body": "quick"})
	if f := alice2.Next("error", byID("rl-5")); f.Code != "rate_limited" {
		t.Errorf("send from alice's second session: got %s, want code rate_limited", f)
	}
	bob.SendMessage("rl-b", "alice", "bob is not limited")

	// At one send a second, a token is back after a second.
	time.Sleep(1100 * time.Millisecond)
	if a := alice.SendMessage("rl-4", "bob", "quick"); a.Seq != 5 {
		t.Errorf("send after the limit recovered: seq %d, want 5 (no seq for the refused ones)", a.Seq)
	}
}

// TestSIGTERMDrain: SIGTERM closes the open sessions with 1001, refuses new
// connections and exits 0.
func TestSIGTERMDrain(t *testing.T) {
	t.Parallel()
	n := StartNode(t, nil)
	alice, bob := n.Dial(t, "alice"), n.Dial(t, "bob")
	bob2 := n.Dial(t, "bob")
	alice.SendMessage("d-1", "bob", "before the drain")
	bob.Next("message", msgWithBody("before the drain"))
	bobTok := n.Token(t, "bob")

	n.Signal(syscall.SIGTERM)
	for _, c := range []*Client{alice, bob, bob2} {
		if code := c.WaitClose(stopTimeout); code != websocket.CloseGoingAway {
			t.Errorf("%s: close code %d after SIGTERM, want %d", c.Name, code, websocket.CloseGoingAway)
		}
	}
	// Whether the node is still draining (it must refuse the upgrade) or
	// gone already, a new session must not open.
	if conn, resp, err := n.DialWS(bobTok, nil); err == nil {
		conn.Close()
		t.Errorf("a new session opened after SIGTERM (response %v)", statusOf(resp))
	}
	code, ok := n.Wait(stopTimeout)
	if !ok {
		t.Fatalf("chatd still running %v after SIGTERM", stopTimeout)
	}
	if code != 0 {
		t.Errorf("chatd exit code after SIGTERM: %d, want 0", code)
	}
	if _, err := httpClient.Get(n.URL() + "/healthz"); err == nil {
		t.Errorf("GET /healthz answered after chatd exited")
	}
}
