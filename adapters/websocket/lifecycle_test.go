package websocket

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/evchat/chatd/adapters/auth"
)

// TestLifecycle walks every event from every state: the lifecycle moves
// only forward, and an event too late for a state changes nothing.
func TestLifecycle(t *testing.T) {
	events := []event{connected, closeQueued, kickedOut, closeWritten, tornDown}
	tests := []struct {
		from lifecycle
		// want is the state after each of events, in their order.
		want    [5]lifecycle
		accepts bool
	}{
		{opening, [5]lifecycle{open, closing, kicked, opening, ended}, true},
		{open, [5]lifecycle{open, closing, kicked, open, ended}, true},
		{closing, [5]lifecycle{closing, closing, kicked, closed, ended}, false},
		{kicked, [5]lifecycle{kicked, kicked, kicked, closed, ended}, false},
		{closed, [5]lifecycle{closed, closed, closed, closed, ended}, false},
		{ended, [5]lifecycle{ended, ended, ended, ended, ended}, false},
	}
	for _, tt := range tests {
		t.Run(tt.from.String(), func(t *testing.T) {
			if got := tt.from.accepts(); got != tt.accepts {
				t.Errorf("%s accepts frames: %v, want %v", tt.from, got, tt.accepts)
			}
			for i, e := range events {
				if got := tt.from.on(e); got != tt.want[i] {
					t.Errorf("%s on %s = %s, want %s", tt.from, eventName(e), got, tt.want[i])
				}
			}
		})
	}
}

func eventName(e event) string {
	names := []string{"connected", "closeQueued", "kickedOut", "closeWritten", "tornDown"}
	if int(e) < len(names) {
		return names[e]
	}
	return fmt.Sprint(int(e))
}

// TestKickBeforeTheConnection: a session registered before its upgrade
// completes can be kicked already (pushes piled up); the kick's close is
// what it writes once the connection comes, and nothing it queued before.
func TestKickBeforeTheConnection(t *testing.T) {
	srv := &Server{cfg: Config{SendQueue: 2}.withDefaults()}
	sess := newSession(srv, auth.Identity{User: "alice"})
	for i := range 3 {
		if got, want := sess.push(typePong, pongFrame{Type: typePong}), i < 2; got != want {
			t.Fatalf("push %d accepted: %v, want %v", i, got, want)
		}
	}
	if sess.state != kicked {
		t.Fatalf("state %s after the queue overflowed, want kicked", sess.state)
	}
	serverConn := make(chan *websocket.Conn, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		serverConn <- conn
	}))
	defer hs.Close()
	client, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sess.connect(<-serverConn)
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = client.ReadMessage()
	var closeErr *websocket.CloseError
	if !errors.As(err, &closeErr) || closeErr.Code != websocket.ClosePolicyViolation {
		t.Fatalf("first read: %v, want the kick's close %d and no frame before it", err, websocket.ClosePolicyViolation)
	}
	sess.waitWriter()
	if sess.state != closed {
		t.Fatalf("state %s once the close is written, want closed", sess.state)
	}
}
