package websocket

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/evchat/chatd/ports"
)

func TestAppendFrameIsReadByGorilla(t *testing.T) {
	cases := []struct {
		name    string
		opcode  int
		payload []byte
	}{
		{"empty ping", websocket.PingMessage, nil},
		{"short text", websocket.TextMessage, []byte(`{"type":"pong"}`)},
		{"125 bytes, the longest one-byte length", websocket.TextMessage, bytes.Repeat([]byte("a"), 125)},
		{"126 bytes, the shortest 16-bit length", websocket.TextMessage, bytes.Repeat([]byte("b"), 126)},
		{"65535 bytes, the longest 16-bit length", websocket.TextMessage, bytes.Repeat([]byte("c"), 65535)},
		{"65536 bytes, the shortest 64-bit length", websocket.TextMessage, bytes.Repeat([]byte("d"), 65536)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			client := clientOfFrames(t, appendFrame(nil, c.opcode, c.payload))
			var pinged []byte
			client.SetPingHandler(func(data string) error {
				pinged = []byte(data)
				return errPinged
			})
			mt, got, err := client.ReadMessage()
			if c.opcode == websocket.PingMessage {
				if !errors.Is(err, errPinged) || len(pinged) != 0 {
					t.Fatalf("read = %v with ping data %q, want an empty ping", err, pinged)
				}
				return
			}
			if err != nil || mt != c.opcode || !bytes.Equal(got, c.payload) {
				t.Fatalf("read type %d, %d bytes, %v; want type %d, %d bytes", mt, len(got), err, c.opcode, len(c.payload))
			}
		})
	}
}

var errPinged = errors.New("pinged")

// clientOfFrames is a gorilla client of a server that, once upgraded by
// gorilla, writes frames straight to the connection, as the writer does.
func clientOfFrames(t *testing.T, frames []byte) *websocket.Conn {
	t.Helper()
	upgrader := websocket.Upgrader{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		_, _ = conn.NetConn().Write(frames)
	}))
	t.Cleanup(hs.Close)
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

func TestFramesQueuedDuringAWriteGoOutInOneWrite(t *testing.T) {
	h, conns := newGatedHarness(t, Config{})
	bob := h.dial("bob")
	sess, conn := h.sessionOf("bob"), <-conns

	release := conn.holdNextWrite()
	sess.PushReceipt(ports.Receipt{Conversation: "c", User: "alice", ReadUpTo: 1})
	conn.waitHeld(t)
	const queued = 5
	for i := range queued {
		sess.PushReceipt(ports.Receipt{Conversation: "c", User: "alice", ReadUpTo: uint64(2 + i)})
	}
	before := conn.writes()
	close(release)
	for want := 1; want <= 1+queued; want++ {
		if got := bob.next(typeReceipt)["readUpTo"]; got != float64(want) {
			t.Fatalf("receipt readUpTo %v, want %d: frames out of order", got, want)
		}
	}
	if got := conn.writes() - before; got != 1 {
		t.Fatalf("%d queued frames took %d writes after the held one, want 1", queued, got)
	}
}

func TestClientStillCutOffWhileItsWriteIsHeld(t *testing.T) {
	const sendQueue = 8
	h, conns := newGatedHarness(t, Config{SendQueue: sendQueue})
	bob := h.dial("bob")
	sess, conn := h.sessionOf("bob"), <-conns

	release := conn.holdNextWrite()
	sess.PushReceipt(ports.Receipt{Conversation: "c", User: "alice", ReadUpTo: 1})
	conn.waitHeld(t)
	for i := range sendQueue {
		if !sess.PushReceipt(ports.Receipt{Conversation: "c", User: "alice", ReadUpTo: uint64(2 + i)}) {
			t.Fatalf("push %d of a queue of %d refused", i+1, sendQueue)
		}
	}
	if sess.PushReceipt(ports.Receipt{Conversation: "c", User: "alice", ReadUpTo: 100}) {
		t.Fatal("a push past a full queue was accepted")
	}
	close(release)
	if got := bob.next(typeReceipt)["readUpTo"]; got != float64(1) {
		t.Fatalf("first receipt readUpTo %v, want the held write's 1", got)
	}
	if code := bob.closeCode(); code != websocket.ClosePolicyViolation {
		t.Fatalf("close code %d, want 1008 with none of the queued frames", code)
	}
}

func TestClientPingIsAnswered(t *testing.T) {
	h := newHarness(t, Config{})
	c := h.dial("alice")
	pong := make(chan string, 1)
	c.conn.SetPongHandler(func(data string) error {
		pong <- data
		return nil
	})
	if err := c.conn.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	c.sendRaw(`{"type":"ping"}`)
	c.next(typePong)
	select {
	case got := <-pong:
		if got != "are you there" {
			t.Fatalf("pong data %q", got)
		}
	default:
		t.Fatal("the client's ping was not answered before the pong frame that followed it")
	}
}

// newGatedHarness serves the transport on loopback through connections
// whose writes are counted and can be held, and hands over each server
// side of a connection as it is accepted.
func newGatedHarness(t *testing.T, cfg Config) (*harness, chan *gatedConn) {
	t.Helper()
	h := newUnservedHarness(t, cfg)
	hs := httptest.NewUnstartedServer(h.mux())
	conns := make(chan *gatedConn, 8)
	hs.Listener = &gatedListener{Listener: hs.Listener, conns: conns}
	hs.Start()
	t.Cleanup(func() {
		h.shutdown()
		hs.Close()
	})
	h.hs, h.url, h.dialer = hs, "ws"+strings.TrimPrefix(hs.URL, "http")+"/ws", websocket.DefaultDialer
	return h, conns
}

type gatedListener struct {
	net.Listener
	conns chan *gatedConn
}

func (l *gatedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	g := &gatedConn{Conn: c, held: make(chan struct{}, 1)}
	l.conns <- g
	return g, nil
}

// gatedConn counts its writes; holdNextWrite makes the next one wait, as
// a write to a client that reads slowly does.
type gatedConn struct {
	net.Conn
	mu      sync.Mutex
	count   int
	release chan struct{}
	held    chan struct{}
}

func (c *gatedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.count++
	release := c.release
	c.release = nil
	c.mu.Unlock()
	if release != nil {
		c.held <- struct{}{}
		<-release
	}
	return c.Conn.Write(p)
}

func (c *gatedConn) writes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count
}

// holdNextWrite holds the next write until the returned channel is closed.
func (c *gatedConn) holdNextWrite() chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.release = make(chan struct{})
	return c.release
}

func (c *gatedConn) waitHeld(t *testing.T) {
	t.Helper()
	select {
	case <-c.held:
	case <-time.After(5 * time.Second):
		t.Fatal("no write came to be held")
	}
}
