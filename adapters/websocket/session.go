package websocket

import (
	"crypto/rand"
	"errors"
	"net"
	"strconv"
	"sync"
	"syscall"
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

	// tokenExpiry is the session's token's exp, when the server's
	// tokenExpiries close it (an `auth` frame moves it); idleExpiry is a
	// parked session's read deadline, when the server's idleExpiries wake
	// it; pingAt is when the server's pings ping it next. Once the session
	// runs, each belongs to its deadlines (deadlines.go).
	tokenExpiry, idleExpiry, pingAt deadline

	// in is the connection as gorilla reads it (inbound.go), and raw and
	// fd its socket for the poller, nil and -1 when the poller cannot
	// watch it; all set by the upgrade.
	in  *inbound
	raw syscall.RawConn
	fd  int
	// parked: no reader runs and the poller watches the socket (park.go);
	// wakePending: a wake came while the reader ran, which must read once
	// more before it may park. Under mu. readBy is the read deadline, the
	// reader's own.
	readBy              time.Time
	parked, wakePending bool
	poller              *poller // the one that watched the socket last
	// unregister takes the session out of the application's registry;
	// finish is what ServeHTTP does once the session is torn down.
	unregister, finish func()
}

var _ ports.Session = (*session)(nil)

func newSession(srv *Server, identity auth.Identity) *session {
	return &session{srv: srv, id: rand.Text(), user: identity.User, tokenExpiry: deadline{at: identity.ExpiresAt, index: -1}, idleExpiry: noDeadline, pingAt: noDeadline, fd: -1}
}

// ID implements ports.Session; delivery uses it to spare a sender's own session.
func (s *session) ID() string { return s.id }

// User implements ports.Session.
func (s *session) User() user.ID { return s.user }

// PushMessage queues a message frame; false when the session is full or
// closing. The message counts as delivered only once the writer has
// written it to the connection.
func (s *session) PushMessage(m ports.MessageView) bool {
	return s.push(typeMessage, messageOf(m))
}

// PushReceipt queues a receipt frame; false when the session is full or closing.
func (s *session) PushReceipt(r ports.Receipt) bool {
	return s.push(typeReceipt, receiptOf(r))
}

// PushUpdate queues an update frame (an edit or a recall); false when the
// session is full or closing.
func (s *session) PushUpdate(u ports.UpdateView) bool {
	return s.push(typeUpdate, updateOf(u))
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
	s.reply(typeError, errorOf(id, code, msg))
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

// adopt wraps the connection the upgrade hijacks, for gorilla to read
// through (inbound.go).
func (s *session) adopt(c net.Conn) net.Conn {
	s.in = newInbound(c)
	s.raw, s.fd = socketOf(c)
	return s.in
}

// interrupt makes a blocked read return at once, so the reader sees that
// the server drains; the frame being handled, if any, finishes first.
func (s *session) interrupt() {
	_ = s.conn.NetConn().SetReadDeadline(time.Now())
	s.wakeReader()
}

// run serves the session until it ends, then tears it down and calls
// finish.
func (s *session) run(unregister, finish func()) {
	s.unregister, s.finish = unregister, finish
	s.srv.tokenExpiries.schedule(s, s.tokenExpiry.at)
	s.answerControlFrames()
	s.conn.SetPongHandler(func(string) error {
		s.readBy = time.Now().Add(s.srv.cfg.idle())
		return s.extendDeadline(s.readBy)
	})
	s.serve(false)
}

// serve reads the session's frames until it parks or ends; resumed, it
// first waits, under the deadline it had, for what the parked reader
// waited for.
func (s *session) serve(resumed bool) {
	var err error
	if resumed {
		err = s.in.fill()
	}
	if err == nil {
		err = s.readLoop(!resumed)
	}
	if errors.Is(err, errParked) {
		return
	}
	s.teardown(err)
}

// teardown ends the session after its reader's last read failed with err.
func (s *session) teardown(err error) {
	s.srv.tokenExpiries.cancel(s)
	s.srv.idleExpiries.cancel(s)
	s.srv.pings.cancel(s)
	// Out of the registry first, so that delivery stops pushing to a
	// session that will write nothing more.
	s.unregister()
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
	p := s.poller
	s.mu.Unlock()
	if p != nil {
		p.forget(s, s.fd)
	}
	s.conn.Close()
	s.waitWriter()
	s.finish()
}
