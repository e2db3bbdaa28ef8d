//go:build linux

package websocket

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/tests/eventually"
)

// parked tells whether u's session is parked: no reader goroutine of its own.
func (h *harness) parked(u string) bool {
	s := h.sessionOf(user.ID(u))
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.parked
}

func TestIdleSessionsHoldNoGoroutine(t *testing.T) {
	h := newHarness(t, Config{})
	const sessions = 40
	before := runtime.NumGoroutine()
	users := make([]string, sessions)
	for i := range users {
		users[i] = fmt.Sprintf("idle-%d", i)
		h.dial(users[i])
	}
	eventually.True(t, "every session parked", func() bool {
		for _, u := range users {
			if !h.parked(u) {
				return false
			}
		}
		return true
	})
	// The dialer's side holds no goroutine per connection either, so a
	// reader per session would show as sessions more.
	if grown := runtime.NumGoroutine() - before; grown >= sessions/2 {
		t.Fatalf("%d idle sessions grew the goroutines by %d", sessions, grown)
	}
}

func TestParkedSessionsServeAsBefore(t *testing.T) {
	// Alice reads nothing between some steps: her read deadline, twice the
	// interval, must outlast a loaded machine's pauses.
	const interval = 300 * time.Millisecond
	h := newHarness(t, Config{PingInterval: interval, ParkAfter: 20 * time.Millisecond})
	alice, bob := h.dial("alice"), h.dial("bob")
	pings := &pingCounter{answer: true}
	bob.readAll(pings)
	eventually.True(t, "alice's session parked", func() bool { return h.parked("alice") })

	// Woken by a frame, it answers, then parks again.
	alice.sendRaw(`{"type":"ping"}`)
	alice.next(typePong)
	eventually.True(t, "parked again after its frame", func() bool { return h.parked("alice") })

	// A WebSocket ping, taken whole while parked, is answered.
	pong := make(chan string, 1)
	alice.conn.SetPongHandler(func(data string) error {
		select {
		case pong <- data:
		default:
		}
		return nil
	})
	if err := alice.conn.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// Reading, alice also answers the server's pings from now on.
	go func() {
		for {
			if _, _, err := alice.conn.ReadMessage(); err != nil {
				return
			}
		}
	}()
	select {
	case data := <-pong:
		if data != "are you there" {
			t.Fatalf("pong %q", data)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pong to a ping sent to a parked session")
	}

	// Bob answers the server's pings: his session outlives many read
	// deadlines (twice the interval), parking between pongs.
	time.Sleep(10 * interval)
	if pings.Load() < 5 || h.app.Sessions.Count() != 2 {
		t.Fatalf("after 10 intervals: bob pinged %d times, %d sessions", pings.Load(), h.app.Sessions.Count())
	}
	eventually.True(t, "bob's session parked between pongs", func() bool { return h.parked("bob") })
}

func TestAParkedSessionThatAnswersNoPingIsDropped(t *testing.T) {
	h := newHarness(t, Config{PingInterval: 100 * time.Millisecond})
	h.dial("carol") // reads nothing, so answers no ping
	eventually.True(t, "carol's session parked", func() bool { return h.parked("carol") })
	eventually.True(t, "carol's session dropped", func() bool { return h.app.Sessions.Count() == 0 })
}

func TestStopClosesParkedSessionsWith1001(t *testing.T) {
	h := newHarness(t, Config{})
	dave := h.dial("dave")
	eventually.True(t, "dave's session parked", func() bool { return h.parked("dave") })
	go h.shutdown()
	if code := dave.closeCode(); code != websocket.CloseGoingAway {
		t.Fatalf("close code %d, want 1001", code)
	}
}

// TestFramesAtTheEndOfALingerAreRead: a client whose frames keep arriving
// as its session's linger ends is read, not dropped. The linger's
// deadline used to pass between the socket's readiness and the read, which
// then failed with the frame waiting.
func TestFramesAtTheEndOfALingerAreRead(t *testing.T) {
	// A linger of 2 ms, frames every 0-4 ms, and a read deadline (twice
	// the ping interval) no scheduling delay reaches.
	h := newHarness(t, Config{PingInterval: 5 * time.Second, ParkAfter: 2 * time.Millisecond})
	erin := h.dial("erin")
	done := make(chan error, 1)
	go func() {
		for {
			if _, _, err := erin.conn.ReadMessage(); err != nil {
				done <- err
				return
			}
		}
	}()
	for i := range 400 {
		if err := erin.conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`)); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		time.Sleep(time.Duration(i%5) * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("erin's session ended while she kept sending: %v", err)
	default:
	}
	if got := h.app.Sessions.Count(); got != 1 {
		t.Fatalf("%d sessions, want erin's", got)
	}
}
