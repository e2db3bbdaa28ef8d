package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Client-side time limits: every request, handshake and write has one, so a
// server that stops answering ends a run with an error instead of hanging it.
const (
	httpTimeout      = 10 * time.Second
	handshakeTimeout = 10 * time.Second
	writeTimeout     = 5 * time.Second
)

// node is one chatd's base URL, checked to be on loopback.
type node struct {
	base *url.URL
	http *http.Client
}

// newNode accepts only http://HOST:PORT with a loopback HOST: the load client
// must never be pointed at a machine other than the one it runs on.
func newNode(raw string, conns int) (*node, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("node URL %q: %w", raw, err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("node URL %q: want http://host:port", raw)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("node URL %q: only loopback addresses are allowed", raw)
	}
	// Token requests come in bursts of up to conns at a time; keeping that
	// many idle connections avoids a new TCP connection per token.
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: 30 * time.Second}
	return &node{base: u, http: &http.Client{Timeout: httpTimeout, Transport: tr}}, nil
}

func (n *node) close() { n.http.CloseIdleConnections() }

// token gets a dev-mode token for user from POST /api/dev/token.
func (n *node) token(ctx context.Context, user string) (string, error) {
	var tok struct {
		Token string `json:"token"`
	}
	if err := n.post(ctx, "/api/dev/token", "", map[string]string{"userId": user}, &tok); err != nil {
		return "", err
	}
	if tok.Token == "" {
		return "", errors.New("POST /api/dev/token: no token in the answer")
	}
	return tok.Token, nil
}

// post sends in as JSON to path, with token as the bearer when set, and
// decodes a 200 or 201 answer into out.
func (n *node) post(ctx context.Context, path, token string, in, out any) error {
	body, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.base.String()+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := n.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST %s: status %d: %s", path, resp.StatusCode, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("POST %s: unexpected answer %s", path, data)
	}
	return nil
}

// dial opens a session with token. bufSize sizes the client's own read and
// write buffers; it does not change what the server allocates.
func (n *node) dial(ctx context.Context, token string, bufSize int) (*websocket.Conn, error) {
	u := *n.base
	u.Scheme = "ws"
	u.Path = "/ws"
	u.RawQuery = "token=" + url.QueryEscape(token)
	d := websocket.Dialer{HandshakeTimeout: handshakeTimeout, ReadBufferSize: bufSize, WriteBufferSize: bufSize}
	conn, resp, err := d.DialContext(ctx, u.String(), nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial /ws: %w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial /ws: %w", err)
	}
	return conn, nil
}

// session is one WebSocket connection whose writes may come from several
// goroutines (gorilla allows one writer at a time).
type session struct {
	conn *websocket.Conn
	wmu  sync.Mutex
	// closing is set before the client closes the connection itself, so that
	// the read loop's error is not reported as a disconnect.
	closing atomic.Bool
}

func (s *session) write(data []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return s.conn.WriteMessage(websocket.TextMessage, data)
}

// close sends a normal close frame and closes the connection without
// waiting for the server's answer: the run is over for this session.
func (s *session) close() {
	s.closing.Store(true)
	s.wmu.Lock()
	_ = s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	s.wmu.Unlock()
	_ = s.conn.Close()
}

var pingFrame = []byte(`{"type":"ping"}`)

// frameType returns the value of a server frame's first "type" key without
// decoding the frame. Most frames a load run receives are receipts and
// presence pushes it ignores, and on a two-core machine every cycle the
// client spends decoding them is taken from the server it measures. The
// first "type" key is the frame's own: nested message objects have none and
// the bodies the client sends never contain one.
func frameType(data []byte) string {
	const key = `"type":"`
	i := bytes.Index(data, []byte(key))
	if i < 0 {
		return ""
	}
	rest := data[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// closeReason names how a connection ended for the error tally: the close
// code when the server sent one (1008 is the slow-consumer kick), else the
// kind of failure.
func closeReason(err error) (key, detail string) {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return fmt.Sprintf("close %d", ce.Code), ce.Error()
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "timeout"):
		return "read timeout", msg
	case strings.Contains(msg, "reset"), strings.Contains(msg, "EOF"), strings.Contains(msg, "closed"):
		return "connection dropped", msg
	}
	return "read error", msg
}

// forEach runs f(i) for i in [0, n) on at most workers goroutines and
// returns the first error; the others are counted in failed.
func forEach(ctx context.Context, n, workers int, f func(ctx context.Context, i int) error) (failed int, first error) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		next int
	)
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(ctx, i); err != nil {
					mu.Lock()
					failed++
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return failed, first
}
