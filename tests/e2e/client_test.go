package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/evchat/chatd/tests/asyncapi"
)

// Timeouts of the client side: every read and write has one, so a missing
// frame fails the test with what did arrive instead of hanging it.
const (
	frameTimeout = 5 * time.Second        // waiting for a frame that must come
	quietPeriod  = 300 * time.Millisecond // watching for a frame that must not come
	writeTimeout = 5 * time.Second
)

// httpClient makes every REST call of the suite, and checks each answer
// against openapi.yaml.
var httpClient = &http.Client{Timeout: httpTimeout, Transport: openAPIChecked{http.DefaultTransport}}

// Token gets a dev-mode token for user from POST /api/dev/token and checks
// the answer's shape.
func (n *Node) Token(t testing.TB, user string) string {
	t.Helper()
	status, body := n.Do(t, http.MethodPost, "/api/dev/token", "", map[string]string{"userId": user})
	if status != http.StatusOK && status != http.StatusCreated {
		t.Fatalf("POST /api/dev/token for %q: status %d, body %s", user, status, body)
	}
	var tok struct {
		Token     string `json:"token"`
		UserID    string `json:"userId"`
		ExpiresAt string `json:"expiresAt"`
	}
	mustUnmarshal(t, body, &tok)
	if tok.Token == "" || tok.UserID != user {
		t.Fatalf("POST /api/dev/token for %q: got %s", user, body)
	}
	if _, err := time.Parse(time.RFC3339, tok.ExpiresAt); err != nil {
		t.Fatalf("POST /api/dev/token: expiresAt %q is not RFC3339: %v", tok.ExpiresAt, err)
	}
	return tok.Token
}

// Do makes a REST call with a bearer token (none when token is empty) and a
// JSON body (none when body is nil; a []byte is sent as it is), and returns
// the status and the body.
func (n *Node) Do(t testing.TB, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, n.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp.StatusCode, data
}

// expectError checks a REST error answer: the status and a JSON
// {"code","message"} body with the given code.
func expectError(t testing.TB, what string, status int, body []byte, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("%s: status %d, want %d (body %s)", what, status, wantStatus, body)
		return
	}
	var e struct {
		Code    *string `json:"code"`
		Message *string `json:"message"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Code == nil || e.Message == nil {
		t.Errorf("%s: body %s is not a JSON {\"code\",\"message\"}", what, body)
		return
	}
	if *e.Code != wantCode {
		t.Errorf("%s: code %q, want %q (body %s)", what, *e.Code, wantCode, body)
	}
}

func mustUnmarshal(t testing.TB, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
}

// Message is a message object as frames and the history API carry it;
// Status is only set by the history API.
type Message struct {
	MessageID    string `json:"messageId"`
	Conversation string `json:"conversation"`
	Seq          uint64 `json:"seq"`
	From         string `json:"from"`
	To           string `json:"to"`
	Body         string `json:"body"`
	SentAt       string `json:"sentAt"`
	Status       string `json:"status"`
	// EditedAt, Recalled and RecalledAt show a message's current state
	// (v1.3); Rev is set in a sync's updates only.
	EditedAt   string `json:"editedAt"`
	Recalled   bool   `json:"recalled"`
	RecalledAt string `json:"recalledAt"`
	Rev        uint64 `json:"rev"`
}

// Frame is a server frame. The union of every frame's fields is decoded;
// "message" is an object in a `message` frame and a string in an `error`
// frame, so it stays raw (see Msg and ErrText). Fields keeps every field as
// sent, for the checks of presence and shape.
type Frame struct {
	Type          string          `json:"type"`
	ID            string          `json:"id"`
	MessageID     string          `json:"messageId"`
	Conversation  string          `json:"conversation"`
	Seq           uint64          `json:"seq"`
	SentAt        string          `json:"sentAt"`
	RawMessage    json.RawMessage `json:"message"`
	User          string          `json:"user"`
	DeliveredUpTo uint64          `json:"deliveredUpTo"`
	ReadUpTo      uint64          `json:"readUpTo"`
	Messages      []Message       `json:"messages"`
	More          bool            `json:"more"`
	Code          string          `json:"code"`
	// The fields of `changed` and `update` (v1.3) besides the above; an
	// update's body is its own field, "message" being taken.
	Rev      uint64    `json:"rev"`
	Body     string    `json:"body"`
	Recalled bool      `json:"recalled"`
	Updates  []Message `json:"updates"`

	Fields map[string]json.RawMessage `json:"-"`
	Raw    string                     `json:"-"`
}

// Msg is the message object of a `message` frame.
func (f Frame) Msg() (Message, error) {
	var m Message
	err := json.Unmarshal(f.RawMessage, &m)
	return m, err
}

// ErrText is the text of an `error` frame.
func (f Frame) ErrText() string {
	var s string
	_ = json.Unmarshal(f.RawMessage, &s)
	return s
}

func (f Frame) String() string { return f.Raw }

// Client is one WebSocket session. A goroutine reads every frame into a
// buffer, so a test can wait for the frame it cares about (Next) while
// others (receipts, messages of another check) wait their turn, and can
// assert that a frame did not come (None).
type Client struct {
	t    testing.TB
	User string
	Name string // user#n, to tell a user's sessions apart in failures
	conn *websocket.Conn

	writeMu sync.Mutex

	mu       sync.Mutex
	buf      []Frame
	arrived  chan struct{} // closed and replaced on every new frame and at the end
	closed   bool
	closeErr error // why the read loop ended
}

// Dial opens a session for user with a fresh dev token and fails the test
// when the upgrade is refused.
func (n *Node) Dial(t testing.TB, user string) *Client {
	t.Helper()
	return n.DialToken(t, user, n.Token(t, user))
}

// DialToken opens a session with the given token in the query string and
// waits until the server serves it.
func (n *Node) DialToken(t testing.TB, user, token string) *Client {
	t.Helper()
	conn, resp, err := n.DialWS(token, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dialing /ws as %s: %v (HTTP status %d)", user, err, status)
	}
	c := newClient(t, user, conn)
	// The upgrade's answer can reach the client before the server has
	// registered the session for delivery; a pong proves it has, so that the
	// tests built on Dial check what they are about and not that race, which
	// TestDeliveryRightAfterUpgrade checks on its own.
	c.Ping()
	return c
}

// DialWS dials /ws with the token in the query string (none when empty) and
// the given headers, returning gorilla's results as they are so that tests
// can check a refused upgrade.
func (n *Node) DialWS(token string, header http.Header) (*websocket.Conn, *http.Response, error) {
	u := n.WSURL()
	if token != "" {
		u += "?token=" + url.QueryEscape(token)
	}
	d := websocket.Dialer{HandshakeTimeout: httpTimeout}
	conn, resp, err := d.Dial(u, header)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	return conn, resp, err
}

// sessionSeq numbers the sessions of the test binary for their names.
var sessionSeq counter

func newClient(t testing.TB, user string, conn *websocket.Conn) *Client {
	c := &Client{t: t, User: user, Name: fmt.Sprintf("%s#%d", user, sessionSeq.next()),
		conn: conn, arrived: make(chan struct{})}
	go c.readLoop()
	t.Cleanup(func() { c.Close() })
	return c
}

func (c *Client) readLoop() {
	for {
		typ, data, err := c.conn.ReadMessage()
		if err != nil {
			wireLog.addClose(c.Name, err)
			c.mu.Lock()
			c.closed, c.closeErr = true, err
			close(c.arrived)
			c.mu.Unlock()
			return
		}
		wireLog.add(asyncapi.FromServer, c.Name, typ, data)
		f := Frame{Raw: string(data)}
		if typ != websocket.TextMessage {
			f.Type = fmt.Sprintf("<non-text frame %d>", typ)
		} else if err := json.Unmarshal(data, &f); err != nil {
			f.Type = "<not JSON>"
		} else {
			_ = json.Unmarshal(data, &f.Fields)
		}
		c.mu.Lock()
		c.buf = append(c.buf, f)
		close(c.arrived)
		c.arrived = make(chan struct{})
		c.mu.Unlock()
	}
}

// Send writes v as a JSON text frame.
func (c *Client) Send(v any) {
	c.t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.SendRaw(websocket.TextMessage, data)
}

// SendRaw writes data as it is, in a frame of the given type.
func (c *Client) SendRaw(messageType int, data []byte) {
	c.t.Helper()
	if err := c.write(messageType, data); err != nil {
		c.t.Fatalf("%s: writing a frame: %v", c.Name, err)
	}
}

// SendInvalid writes a frame the test means to break the protocol: v as it
// is when it is a []byte, else v as JSON. It is left out of the frames
// held to the AsyncAPI document (asyncapi_test.go), which describes only
// the protocol's.
func (c *Client) SendInvalid(v any) {
	c.t.Helper()
	data, ok := v.([]byte)
	if !ok {
		var err error
		if data, err = json.Marshal(v); err != nil {
			c.t.Fatal(err)
		}
	}
	if err := c.writeUnlogged(websocket.TextMessage, data); err != nil {
		c.t.Fatalf("%s: writing a frame: %v", c.Name, err)
	}
}

// write is SendRaw returning its error, for goroutines that may not call
// t.Fatal.
func (c *Client) write(messageType int, data []byte) error {
	if err := c.writeUnlogged(messageType, data); err != nil {
		return err
	}
	wireLog.add(asyncapi.FromClient, c.Name, messageType, data)
	return nil
}

func (c *Client) writeUnlogged(messageType int, data []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.conn.WriteMessage(messageType, data)
}

// Await removes and returns the first buffered or arriving frame of type
// typ for which match (nil matches all) is true, or an error once timeout
// has passed or the connection has ended.
func (c *Client) Await(timeout time.Duration, typ string, match func(Frame) bool) (Frame, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		for i, f := range c.buf {
			if f.Type == typ && (match == nil || match(f)) {
				c.buf = append(c.buf[:i:i], c.buf[i+1:]...)
				c.mu.Unlock()
				return f, nil
			}
		}
		arrived, closed, closeErr := c.arrived, c.closed, c.closeErr
		pending := c.pendingLocked()
		c.mu.Unlock()
		if closed {
			return Frame{}, fmt.Errorf("%s: no %q frame before the connection ended (%v); unmatched frames: %s", c.Name, typ, closeErr, pending)
		}
		select {
		case <-arrived:
		case <-deadline.C:
			return Frame{}, fmt.Errorf("%s: no %q frame within %v; unmatched frames: %s", c.Name, typ, timeout, pending)
		}
	}
}

// Next is Await with frameTimeout that fails the test on error.
func (c *Client) Next(typ string, match func(Frame) bool) Frame {
	c.t.Helper()
	f, err := c.Await(frameTimeout, typ, match)
	if err != nil {
		c.t.Fatal(err)
	}
	return f
}

// None fails the test if a frame of type typ matching match is buffered or
// arrives within quietPeriod.
func (c *Client) None(typ string, match func(Frame) bool) {
	c.t.Helper()
	if f, err := c.Await(quietPeriod, typ, match); err == nil {
		c.t.Errorf("%s: got an unexpected frame %s", c.Name, f)
	}
}

// Ping sends `ping` and waits for `pong`: the proof that the session is
// open and that the server has handled every frame sent before it.
func (c *Client) Ping() {
	c.t.Helper()
	c.Send(map[string]string{"type": "ping"})
	c.Next("pong", nil)
}

// SendMessage sends a `send` frame and returns its ack, checking its shape.
func (c *Client) SendMessage(id, to, body string) Frame {
	c.t.Helper()
	c.Send(map[string]string{"type": "send", "id": id, "to": to, "body": body})
	f, err := c.Await(frameTimeout, "ack", byID(id))
	if err != nil {
		// An error frame for this id says why; show it rather than a bare timeout.
		if e, err2 := c.Await(0, "error", byID(id)); err2 == nil {
			c.t.Fatalf("%s: send %q to %s: got %s, want an ack", c.Name, id, to, e)
		}
		c.t.Fatal(err)
	}
	checkAck(c.t, f, id)
	return f
}

// WaitClose waits for the server to close the connection and returns the
// close code, 0 when it ended without a close frame.
func (c *Client) WaitClose(timeout time.Duration) int {
	c.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		arrived, closed, closeErr := c.arrived, c.closed, c.closeErr
		c.mu.Unlock()
		if closed {
			var ce *websocket.CloseError
			if errors.As(closeErr, &ce) {
				return ce.Code
			}
			c.t.Logf("%s: connection ended without a close frame: %v", c.Name, closeErr)
			return 0
		}
		select {
		case <-arrived:
		case <-deadline.C:
			c.t.Fatalf("%s: the server did not close the connection within %v", c.Name, timeout)
		}
	}
}

// Close closes the connection; the test's cleanup calls it too.
func (c *Client) Close() { c.conn.Close() }

// pendingLocked lists the unmatched frames for an error message; c.mu is held.
func (c *Client) pendingLocked() string {
	if len(c.buf) == 0 {
		return "none"
	}
	parts := make([]string, len(c.buf))
	for i, f := range c.buf {
		parts[i] = f.Raw
	}
	return strings.Join(parts, " ")
}

// byID matches frames whose id is id.
func byID(id string) func(Frame) bool {
	return func(f Frame) bool { return f.ID == id }
}

// msgWithBody matches `message` frames whose message has the given body.
func msgWithBody(body string) func(Frame) bool {
	return func(f Frame) bool {
		m, err := f.Msg()
		return err == nil && m.Body == body
	}
}

// checkAck checks an ack frame has every field of PROTOCOL.md, well formed.
func checkAck(t testing.TB, f Frame, id string) {
	t.Helper()
	for _, k := range []string{"id", "messageId", "conversation", "seq", "sentAt"} {
		if _, ok := f.Fields[k]; !ok {
			t.Errorf("ack %s lacks field %q", f, k)
		}
	}
	if id != "" && f.ID != id {
		t.Errorf("ack %s: id %q, want %q", f, f.ID, id)
	}
	if f.MessageID == "" || f.Seq == 0 {
		t.Errorf("ack %s: empty messageId or zero seq", f)
	}
	checkConversationID(t, f.Conversation)
	checkTime(t, "ack sentAt", f.SentAt)
}

// checkMessage checks a message object has every field of PROTOCOL.md and
// that it is the one ack acknowledged.
func checkMessage(t testing.TB, m Message, ack Frame, from, to, body string) {
	t.Helper()
	want := Message{MessageID: ack.MessageID, Conversation: ack.Conversation, Seq: ack.Seq,
		From: from, To: to, Body: body, SentAt: ack.SentAt, Status: m.Status}
	if m != want {
		t.Errorf("message %+v, want %+v", m, want)
	}
}

// checkConversationID checks the id is non-empty and URL-safe, as the
// protocol promises: it goes into /api/conversations/{id}/messages as it is.
func checkConversationID(t testing.TB, id string) {
	t.Helper()
	if id == "" || url.PathEscape(id) != id || url.QueryEscape(id) != id {
		t.Errorf("conversation id %q is empty or not URL-safe", id)
	}
}

func checkTime(t testing.TB, what, s string) {
	t.Helper()
	if _, err := time.Parse(time.RFC3339, s); err != nil {
		t.Errorf("%s %q is not RFC3339: %v", what, s, err)
	}
}
