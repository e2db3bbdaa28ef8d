package websocket

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/evchat/chatd/adapters/auth"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/tests/embedded"
	"github.com/evchat/chatd/tests/eventually"
)

var testSecret = []byte("websocket-test-secret-of-32-bytes!")

type harness struct {
	t      *testing.T
	node   *embedded.Node
	app    *application.Application
	srv    *Server
	hs     *httptest.Server // nil when served over pipes
	url    string
	dialer *websocket.Dialer
	issuer *auth.Issuer
	reg    *prometheus.Registry
}

// newHarness runs the transport over the application built on the
// in-memory adapters, as the embedded default wires it, on a loopback port.
func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := newUnservedHarness(t, cfg)
	hs := httptest.NewServer(h.mux())
	t.Cleanup(func() {
		h.shutdown()
		hs.Close()
	})
	h.hs, h.url, h.dialer = hs, "ws"+strings.TrimPrefix(hs.URL, "http")+"/ws", websocket.DefaultDialer
	return h
}

// newUnservedHarness builds the node and the transport, which a caller
// then serves.
func newUnservedHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	n := embedded.New(t, application.Config{}, testSecret)
	srv, err := New(cfg, n.App, n.Verifier, n.Metrics, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, node: n, app: n.App, srv: srv, issuer: n.Issuer, reg: n.Registry}
}

func (h *harness) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /ws", h.srv)
	return mux
}

func (h *harness) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = h.srv.Stop(ctx)
}

func (h *harness) token(u string) string {
	h.t.Helper()
	tok, _, err := h.issuer.Issue(user.ID(u))
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

func (h *harness) wsURL() string { return h.url }

type client struct {
	t    *testing.T
	conn *websocket.Conn
}

func (h *harness) dial(u string) *client {
	h.t.Helper()
	return h.dialWith(h.token(u))
}

// dialWith opens a session with token, however it was made.
func (h *harness) dialWith(token string) *client {
	h.t.Helper()
	conn, resp, err := h.dialer.Dial(h.url+"?token="+token, nil)
	if err != nil {
		h.t.Fatalf("dial: %v (%v)", err, resp)
	}
	h.t.Cleanup(func() { conn.Close() })
	return &client{t: h.t, conn: conn}
}

func (c *client) sendRaw(data string) {
	c.t.Helper()
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(data)); err != nil {
		c.t.Fatal(err)
	}
}

type frame map[string]any

// next returns the next frame of one of the given types, skipping frames
// that arrive asynchronously (messages, receipts, and the presence pushed
// to peers by the node's presence, which runs as in `make run`) unless
// asked for.
func (c *client) next(types ...string) frame {
	c.t.Helper()
	for {
		_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			c.t.Fatalf("waiting for %v: %v", types, err)
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			c.t.Fatalf("frame %q: %v", data, err)
		}
		for _, typ := range types {
			if f["type"] == typ {
				return f
			}
		}
		if f["type"] != typeReceipt && f["type"] != typeMessage && f["type"] != typePresence {
			c.t.Fatalf("got %s while waiting for %v", data, types)
		}
	}
}

// closeCode reads until the server closes and returns the close code.
func (c *client) closeCode() int {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := c.conn.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		if err != nil {
			c.t.Fatalf("connection ended without a close frame: %v", err)
		}
	}
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// counter reads one series of a gathered counter by a label value.
func (h *harness) counter(t *testing.T, name, label, value string) float64 {
	t.Helper()
	families, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if f.GetName() == name && l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", name, label, value)
	return 0
}

// send stores a message as the application would for a client of from's.
func (h *harness) send(from, key, to, body string) application.Ack {
	h.t.Helper()
	ack, err := h.app.Send.Handle(context.Background(), application.SendMessageCommand{
		Sender: user.ID(from), ClientID: message.ClientID(key), To: user.ID(to), Body: message.Body(body)})
	if err != nil {
		h.t.Fatal(err)
	}
	return ack
}

// sessionOf waits for u's session to be served and returns it.
func (h *harness) sessionOf(u user.ID) *session {
	h.t.Helper()
	var found *session
	eventually.True(h.t, string(u)+"'s session", func() bool {
		h.srv.mu.Lock()
		defer h.srv.mu.Unlock()
		for s := range h.srv.sessions {
			if s.user == u {
				found = s
			}
		}
		return found != nil
	})
	return found
}

// smallBuffersDialer dials with a small receive buffer, so that a client
// that does not read holds few frames in its socket.
var smallBuffersDialer = websocket.Dialer{
	NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			err = conn.(*net.TCPConn).SetReadBuffer(4096)
		}
		return conn, err
	},
}
