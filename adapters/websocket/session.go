package websocket

import (
	"crypto/rand"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/evchat/chatd/adapters/auth"
	"github.com/evchat/chatd/adapters/wire"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// closeTokenExpired closes a session whose token's exp has passed, a code of
// the range RFC 6455 leaves to applications.
const closeTokenExpired = 4001

// closeGrace bounds the close handshake: how long a closing session waits
// to write its close frame and to read what the client still sends.
const closeGrace = time.Second

var (
	errTooLarge = errors.New("frame too large")
	errClosing  = errors.New("session closing")
)

// session is one connection. Its lifecycle (lifecycle.go) says what it
// still does; the reader goroutine (run) owns the teardown. Writing needs
// a goroutine only while there is something to write: the first frame
// queued on an idle session starts a writer, which exits when the queue
// is empty, so an idle session costs its reader and nothing more.
//
// The queue holds two kinds of frames. Pushes (messages, receipts, presence,
// typing, pings) come from elsewhere and must never wait, so a client that
// lets SendQueue of them pile up is disconnected. Replies answer the
// client's own frames; they never disconnect it, however many one request
// makes, and instead the reader reads the client's next frame only once the
// queue has room again: a client that does not read its answers stops
// being read, and is still bounded.
type session struct {
	srv  *Server
	id   string
	user user.ID
	// conn is set once, by connect, under mu; the reader and the writer
	// start after it is set and read it without the lock.
	conn *websocket.Conn
	// writeMu serialises the writes to conn and their deadlines: the
	// writer's, and the answers to the client's pings and close that the
	// reader writes.
	writeMu sync.Mutex

	mu    sync.Mutex
	state lifecycle
	// The queue is a slice rather than a buffered channel so that an idle
	// session holds no queue memory.
	queue   []outbound
	replies int  // how many of the queued frames are replies
	writing bool // a writer goroutine runs
	// wake is closed when the writer takes the queue or exits, for the
	// reader waiting for room or for the writer to finish; nil while no
	// one waits, so an idle session holds no channel.
	wake chan struct{}
	// kickCode and kickText are the close frame of a kick.
	kickCode int
	kickText string

	// expiresAt is the session's token's exp, when the server's expiries
	// close it; an `auth` frame moves it. Once the session runs, both fields
	// belong to expiries and are touched only under its lock; expiryIndex
	// is the session's place in its heap, -1 while not scheduled.
	expiresAt   time.Time
	expiryIndex int
}

var _ ports.Session = (*session)(nil)

func newSession(srv *Server, identity auth.Identity) *session {
	return &session{srv: srv, id: rand.Text(), user: identity.User, expiresAt: identity.ExpiresAt, expiryIndex: -1}
}

// ID implements ports.Session; delivery uses it to spare a sender's own session.
func (s *session) ID() string { return s.id }

// User implements ports.Session.
func (s *session) User() user.ID { return s.user }

// PushMessage queues a message frame; false when the session is full or
// closing. The message counts as delivered only once the writer has
// written it to the connection.
func (s *session) PushMessage(m ports.MessageView) bool {
	return s.push(typeMessage, messageFrame{Type: typeMessage, Message: wire.MessageOf(m)})
}

// PushReceipt queues a receipt frame; false when the session is full or closing.
func (s *session) PushReceipt(r ports.Receipt) bool {
	return s.push(typeReceipt, receiptOf(r))
}

func (s *session) push(typ string, frame any) bool {
	if !s.enqueue(outbound{typ: typ, frame: frame}, false) {
		return false
	}
	s.srv.metrics.FrameOut(typ)
	return true
}

// reply queues an answer to the client's own frame; see session.
func (s *session) reply(typ string, frame any) {
	if s.enqueue(outbound{typ: typ, frame: frame}, true) {
		s.srv.metrics.FrameOut(typ)
	}
}

func (s *session) replyError(id, code, msg string) {
	s.reply(typeError, errorFrame{Type: typeError, ID: id, Code: code, Message: msg})
}

// connect hands the session the connection the upgrade made, and starts
// writing what was queued before it (or the close of a kick that came
// meanwhile).
func (s *session) connect(conn *websocket.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conn = conn
	s.state = s.state.on(connected)
	if len(s.queue) > 0 || s.state == kicked {
		s.startWriterLocked()
	}
}

// interrupt makes a blocked read return at once, so the reader sees that
// the server drains; the frame being handled, if any, finishes first.
func (s *session) interrupt() { _ = s.conn.NetConn().SetReadDeadline(time.Now()) }

// run serves the session until it ends, then tears it down.
func (s *session) run(unregister func()) {
	s.srv.expiries.schedule(s, s.expiresAt)
	err := s.readLoop()
	s.srv.expiries.cancel(s)
	// Out of the registry first, so that delivery stops pushing to a
	// session that will write nothing more.
	unregister()
	switch {
	case errors.Is(err, errTooLarge):
		limit := strconv.Itoa(s.srv.cfg.MaxFrameBytes)
		s.replyError("", wire.CodeTooLarge, "frame larger than "+limit+" bytes")
		s.closeWith(websocket.CloseMessageTooBig, "frame larger than "+limit+" bytes")
		s.waitWriter()
		s.drain()
	case s.srv.draining.Load():
		s.closeWith(websocket.CloseGoingAway, "server shutting down")
		s.waitWriter()
	}
	// Ended refuses pushes from deliveries already under way, which would
	// sit in a queue no one writes, and stops a writer still running.
	s.mu.Lock()
	s.state = s.state.on(tornDown)
	s.mu.Unlock()
	s.conn.Close()
	s.waitWriter()
}
