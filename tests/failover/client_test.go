package failover

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

var httpClient = &http.Client{Timeout: 10 * time.Second}

// frame is the union of the server frames this suite reads.
type frame struct {
	Type         string          `json:"type"`
	ID           string          `json:"id"`
	MessageID    string          `json:"messageId"`
	Conversation string          `json:"conversation"`
	Seq          uint64          `json:"seq"`
	Code         string          `json:"code"`
	RawMessage   json.RawMessage `json:"message"`
	Messages     []message       `json:"messages"`
	More         bool            `json:"more"`
}

type message struct {
	MessageID    string `json:"messageId"`
	Conversation string `json:"conversation"`
	Seq          uint64 `json:"seq"`
	From         string `json:"from"`
	Body         string `json:"body"`
}

// delivery is a message frame as a session got it.
type delivery struct {
	message
	at time.Time
}

// session is one WebSocket connection: replies to sends and syncs go to
// whoever waits for them, pushed messages are kept with their arrival time.
type session struct {
	user string
	conn *websocket.Conn

	writeMu sync.Mutex

	mu         sync.Mutex
	waiting    map[string]chan frame // by send id
	syncReply  chan frame
	deliveries []delivery
	closed     bool
	// gone is closed with closed set, for whoever waits on a reply.
	gone chan struct{}
}

func token(node, user string) (string, error) {
	b, _ := json.Marshal(map[string]string{"userId": user})
	resp, err := httpClient.Post("http://"+node+"/api/dev/token", "application/json", bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.Token == "" {
		return "", fmt.Errorf("dev token for %s on %s: status %d, %v", user, node, resp.StatusCode, err)
	}
	return tok.Token, nil
}

func dial(node, user string) (*session, error) {
	tok, err := token(node, user)
	if err != nil {
		return nil, err
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, resp, err := d.Dial("ws://"+node+"/ws?token="+url.QueryEscape(tok), nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s as %s: %w", node, user, err)
	}
	s := &session{user: user, conn: conn, waiting: map[string]chan frame{}, syncReply: make(chan frame, 16), gone: make(chan struct{})}
	go s.readLoop()
	// The upgrade's answer can come before the session is registered for
	// delivery; a pong proves it is.
	if err := s.write(map[string]string{"type": "ping"}); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *session) readLoop() {
	for {
		_, data, err := s.conn.ReadMessage()
		if err != nil {
			s.mu.Lock()
			s.closed = true
			close(s.gone)
			for _, ch := range s.waiting {
				close(ch)
			}
			s.waiting = map[string]chan frame{}
			s.mu.Unlock()
			return
		}
		at := time.Now()
		var f frame
		if json.Unmarshal(data, &f) != nil {
			continue
		}
		s.mu.Lock()
		switch f.Type {
		case "ack", "error":
			if ch, ok := s.waiting[f.ID]; ok {
				delete(s.waiting, f.ID)
				ch <- f
			} else if f.Type == "error" && f.ID == "" {
				// Only sync goes without an id here.
				select {
				case s.syncReply <- f:
				default:
				}
			}
		case "message":
			var m message
			if json.Unmarshal(f.RawMessage, &m) == nil {
				s.deliveries = append(s.deliveries, delivery{message: m, at: at})
			}
		case "messages":
			select {
			case s.syncReply <- f:
			default:
			}
		}
		s.mu.Unlock()
	}
}

func (s *session) write(v any) error {
	b, _ := json.Marshal(v)
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	_ = s.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return s.conn.WriteMessage(websocket.TextMessage, b)
}

// send sends one message and waits up to timeout for its ack or error.
func (s *session) send(id, to, body string, timeout time.Duration) (frame, error) {
	ch := make(chan frame, 1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return frame{}, io.ErrClosedPipe
	}
	s.waiting[id] = ch
	s.mu.Unlock()
	if err := s.write(map[string]string{"type": "send", "id": id, "to": to, "body": body}); err != nil {
		return frame{}, err
	}
	select {
	case f, ok := <-ch:
		if !ok {
			return frame{}, io.ErrClosedPipe
		}
		return f, nil
	case <-time.After(timeout):
		s.mu.Lock()
		delete(s.waiting, id)
		s.mu.Unlock()
		return frame{}, fmt.Errorf("no answer to send %s within %v", id, timeout)
	}
}

// syncAll reads a conversation's messages after seq from the session with
// `sync`, page by page. A page refused as unavailable (the store is slow or
// just back) is asked for again, backing off as a client would, until
// syncPatience has passed. A sync carries no id, so a page is taken as the answer only if it
// continues from after: one that came after its asker gave up is skipped.
func (s *session) syncAll(conv string, after uint64) ([]message, error) {
	var all []message
	giveUp := time.Now().Add(syncPatience)
	retryIn := firstSyncRetry
	for {
		if err := s.write(map[string]any{"type": "sync", "conversation": conv, "after": after, "limit": 500}); err != nil {
			return all, err
		}
		f, err := s.syncAnswer(conv, after, time.Until(giveUp))
		switch {
		case err != nil:
			return all, err
		case f.Type == "error" && f.Code == "unavailable" && time.Now().Before(giveUp):
			time.Sleep(retryIn + rand.N(retryIn/2))
			retryIn = min(2*retryIn, lastSyncRetry)
			continue
		case f.Type == "error":
			return all, fmt.Errorf("sync of %s after %d: %s", conv, after, f.Code)
		}
		all = append(all, f.Messages...)
		if !f.More || len(f.Messages) == 0 {
			return all, nil
		}
		after = f.Messages[len(f.Messages)-1].Seq
	}
}

var (
	errSessionGone = errors.New("the node closed the session")
	errNoAnswer    = errors.New("no answer")
)

// syncAnswer waits up to wait for the answer to a sync of conv after seq.
func (s *session) syncAnswer(conv string, after uint64, wait time.Duration) (frame, error) {
	timeout := time.After(wait)
	for {
		select {
		case f := <-s.syncReply:
			// Each session syncs one conversation: the seq tells its pages apart.
			if f.Type == "error" || len(f.Messages) == 0 || f.Messages[0].Seq == after+1 {
				return f, nil
			}
		case <-s.gone:
			return frame{}, fmt.Errorf("sync of %s after %d: %w", conv, after, errSessionGone)
		case <-timeout:
			return frame{}, fmt.Errorf("sync of %s after %d: %w within %v", conv, after, errNoAnswer, wait)
		}
	}
}

// A sync refused as unavailable is asked again after firstSyncRetry,
// doubling up to lastSyncRetry, with jitter, as a client should: a store
// that refuses because it is overloaded is not helped by twenty sessions
// asking again, in step, every 500 ms.
const (
	firstSyncRetry = 500 * time.Millisecond
	lastSyncRetry  = 4 * time.Second
)

// syncPatience bounds how long syncAll waits for a page, asking again while
// it is refused as unavailable: on a loaded machine, twenty sessions syncing
// at once from a store that has just restarted took over 10 s.
const syncPatience = 45 * time.Second

func (s *session) received() []delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]delivery(nil), s.deliveries...)
}

func (s *session) close() { s.conn.Close() }

// recipient is one user's connection through the run: a session, then,
// after its node dies, the session it reopens on the other node. What it
// got live is what all its sessions got.
type recipient struct {
	user string
	mu   sync.Mutex
	// sessions in the order they were opened; the last one is current.
	sessions []*session
}

func dialRecipient(node, user string) (*recipient, error) {
	s, err := dial(node, user)
	if err != nil {
		return nil, err
	}
	return &recipient{user: user, sessions: []*session{s}}, nil
}

// open is the current session, or, if the node closed it, a new one on
// node.
func (r *recipient) open(node string) (*session, error) {
	s := r.current()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if !closed {
		return s, nil
	}
	if err := r.reconnect(node, ""); err != nil {
		return nil, err
	}
	return r.current(), nil
}

func (r *recipient) current() *session {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sessions[len(r.sessions)-1]
}

// reconnect opens a session on node, as a client whose node went away
// does, and syncs conv from the last message it got live: what it reads
// there it got by sync.
func (r *recipient) reconnect(node, conv string) error {
	s, err := dial(node, r.user)
	if err != nil {
		return err
	}
	var last uint64
	for _, d := range r.received() {
		if d.Conversation == conv {
			last = max(last, d.Seq)
		}
	}
	r.mu.Lock()
	r.sessions = append(r.sessions, s)
	r.mu.Unlock()
	if conv == "" {
		return nil
	}
	_, err = s.syncAll(conv, last)
	return err
}

// received is what every session of the recipient got live, session by
// session.
func (r *recipient) received() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []delivery
	for _, s := range r.sessions {
		all = append(all, s.received()...)
	}
	return all
}

func (r *recipient) perSession() [][]delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([][]delivery, len(r.sessions))
	for i, s := range r.sessions {
		out[i] = s.received()
	}
	return out
}

func (r *recipient) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.sessions {
		s.close()
	}
}
