// Package relay is the embedded node's floor in `make bench-load`: a bare
// gorilla/websocket relay with no store, no bus and no authentication. It
// speaks just enough of PROTOCOL.md for the load client of tests/load to
// drive it unchanged: POST /api/dev/token hands back the user id as the
// token, GET /ws?token=USER opens that user's session, a `send` frame is
// answered with an `ack` and written at once as a `message` frame to the
// recipient's sessions, with the conversation's next seq, and `ping` gets
// `pong`. Whatever latency chatd adds on top of this relay at the same load
// is chatd's own: the store, the bus, the queues and the locks. Sends to a
// user with no session are dropped, and `sync` is not served, since nothing
// is kept.
package relay

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/evchat/chatd/adapters/wire"
	"github.com/evchat/chatd/domain/user"
)

// writeTimeout bounds one frame's write, so that a client that stops
// reading ends its session instead of blocking its senders for ever.
const writeTimeout = 5 * time.Second

// Server is the relay; its zero value is not usable, use New.
type Server struct {
	log      *slog.Logger
	upgrader websocket.Upgrader

	mu       sync.Mutex
	sessions map[string]map[*session]struct{}
	seqs     map[conversationKey]uint64
}

// conversationKey is the sorted pair of users, as chatd's conversation id
// derives from it.
type conversationKey struct{ low, high string }

func keyOf(a, b string) conversationKey {
	if a > b {
		a, b = b, a
	}
	return conversationKey{a, b}
}

// id renders the key as a conversation id made of characters the load
// client's sync frame can carry unescaped.
func (k conversationKey) id() string { return k.low + "~" + k.high }

// New returns a relay that logs its failures to log.
func New(log *slog.Logger) *Server {
	return &Server{
		log:      log,
		upgrader: websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096},
		sessions: map[string]map[*session]struct{}{},
		seqs:     map[conversationKey]uint64{},
	}
}

// Handler serves the relay's routes, and /healthz for a launcher waiting
// for it to be up.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("POST /api/dev/token", s.token)
	mux.HandleFunc("GET /ws", s.serveWS)
	return mux
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	var req struct {
		UserID string `json:"userId"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.UserID == "" {
		http.Error(w, `{"code":"bad_request","message":"userId required"}`, http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"token": req.UserID, "userId": req.UserID})
}

// session is one connection; gorilla allows one writer at a time, and a
// sender's goroutine writes to its recipient's connection.
type session struct {
	user string
	conn *websocket.Conn
	wmu  sync.Mutex
}

func (c *session) write(frame []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.conn.WriteMessage(websocket.TextMessage, frame)
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("token")
	if user == "" {
		http.Error(w, `{"code":"unauthorized","message":"token required"}`, http.StatusUnauthorized)
		return
	}
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered the request
	}
	c := &session{user: user, conn: conn}
	s.register(c)
	defer func() {
		s.unregister(c)
		_ = conn.Close()
	}()
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		if err := s.handle(c, data); err != nil {
			s.log.Warn("relay: session ends", "user", user, "err", err)
			return
		}
	}
}

func (s *Server) register(c *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[c.user] == nil {
		s.sessions[c.user] = map[*session]struct{}{}
	}
	s.sessions[c.user][c] = struct{}{}
}

func (s *Server) unregister(c *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions[c.user], c)
	if len(s.sessions[c.user]) == 0 {
		delete(s.sessions, c.user)
	}
}

type clientFrame struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	To   string `json:"to"`
	Body string `json:"body"`
}

// The frames carry chatd's own shapes (adapters/wire), so that the client
// decodes the same bytes from the relay as from a node.
type ackFrame struct {
	Type string `json:"type"`
	wire.Ack
}

type messageFrame struct {
	Type    string       `json:"type"`
	Message wire.Message `json:"message"`
}

var pongFrame = []byte(`{"type":"pong"}`)

// handle answers one client frame; an error ends the session. A frame the
// relay does not know is ignored: it is a floor, not a validator.
func (s *Server) handle(c *session, data []byte) error {
	var f clientFrame
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	switch f.Type {
	case "ping":
		return c.write(pongFrame)
	case "send":
		return s.relay(c, f)
	}
	return nil
}

// relay numbers the message in its conversation and writes it to the
// recipient's sessions, then acks it. A sender's frames are handled one
// after the other on its read loop, so the seqs of a conversation reach
// the recipient in order as long as one side sends, as the load client's
// pairs do; a relay that also ordered replies would need a lock per
// conversation around the write, which is not the floor's business.
func (s *Server) relay(c *session, f clientFrame) error {
	key := keyOf(c.user, f.To)
	s.mu.Lock()
	s.seqs[key]++
	seq := s.seqs[key]
	recipients := make([]*session, 0, len(s.sessions[f.To]))
	for r := range s.sessions[f.To] {
		recipients = append(recipients, r)
	}
	s.mu.Unlock()

	msg := wire.Message{MessageID: c.user + "-" + f.ID, Conversation: key.id(), Seq: seq,
		From: user.ID(c.user), To: user.ID(f.To), Body: f.Body, SentAt: wire.FormatTime(time.Now())}
	frame, err := json.Marshal(messageFrame{Type: "message", Message: msg})
	if err != nil {
		return err
	}
	for _, r := range recipients {
		if err := r.write(frame); err != nil {
			// The recipient's own read loop sees its connection fail and
			// ends its session; the sender's goes on.
			s.log.Warn("relay: write to recipient failed", "user", r.user, "err", err)
		}
	}
	ack, err := json.Marshal(ackFrame{Type: "ack", Ack: wire.Ack{ID: f.ID, MessageID: msg.MessageID, Conversation: msg.Conversation, Seq: seq, SentAt: msg.SentAt}})
	if err != nil {
		return err
	}
	return c.write(ack)
}
