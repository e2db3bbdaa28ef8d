package websocket

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
)

// Tests whose subject is time (keep-alive, a token's exp) run the
// transport inside a testing/synctest bubble, where timers, tickers and
// connection deadlines move on the bubble's clock: they take no wall time,
// and a loaded machine cannot make them late. A loopback socket would stall
// that clock (a goroutine blocked on the network is not durably blocked),
// so the harness is served over in-memory pipes instead. net.Pipe is
// unbuffered: a client that stops reading holds up the server's next write
// to it, where a socket's buffer would have taken it.

// newPipeHarness is newHarness served over in-memory pipes; call it inside
// the bubble.
func newPipeHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := newUnservedHarness(t, cfg)
	l := &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
	hs := &http.Server{Handler: h.mux()}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = hs.Serve(l)
	}()
	t.Cleanup(func() {
		h.shutdown()
		_ = hs.Close()
		<-served
	})
	h.url, h.dialer = "ws://pipe/ws", &websocket.Dialer{NetDialContext: l.dial}
	return h
}

// pipeListener accepts the server's ends of the pipes its dial makes.
type pipeListener struct {
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	server, client := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
