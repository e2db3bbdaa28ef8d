package websocket

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/evchat/chatd/adapters/auth"
	"github.com/evchat/chatd/adapters/metrics"
	"github.com/evchat/chatd/adapters/wire"
	"github.com/evchat/chatd/application"
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

// outbound is one item of a session's write queue: a frame to encode, or a
// control message (ping or close) when control is set.
type outbound struct {
	typ       string
	frame     any
	control   int
	closeCode int
	closeText string
}

// session is one connection. The reader goroutine (run) owns the teardown.
// Writing needs a goroutine only while there is something to write: the
// first frame queued on an idle session starts a writer, which exits when
// the queue is empty, so an idle session costs its reader and nothing more.
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
	conn *websocket.Conn
	id   string
	user user.ID

	// The queue is a slice rather than a buffered channel so that an idle
	// session holds no queue memory.
	mu      sync.Mutex
	queue   []outbound
	replies int  // how many of the queued frames are replies
	closing bool // a close is queued; nothing may follow it
	writing bool // a writer goroutine runs
	live    bool // the connection is up: frames queued before wait for it
	// changed is signalled when the writer takes the queue or exits, for a
	// reader waiting for room and a teardown waiting for the writer.
	changed sync.Cond

	// expiresAt is the session's token's exp, when the server's expiries
	// close it; an `auth` frame moves it. Once the session runs, both fields
	// belong to expiries and are touched only under its lock; expiryIndex
	// is the session's place in its heap, -1 while not scheduled.
	expiresAt   time.Time
	expiryIndex int

	// stopped asks the writer to close at once with stopCode, skipping the
	// queue: the way out when the queue is full.
	stopped   atomic.Bool
	stopCode  int
	stopText  string
	closeSent atomic.Bool
	// ended: the reader tore the session down; a writer still running stops.
	ended atomic.Bool
}

var _ ports.Session = (*session)(nil)

func newSession(srv *Server, identity auth.Identity) *session {
	s := &session{srv: srv, id: rand.Text(), user: identity.User, expiresAt: identity.ExpiresAt, expiryIndex: -1}
	s.changed.L = &s.mu
	return s
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

// enqueue never blocks. A push finding SendQueue pushes queued means the
// client reads slower than it is written to; it is disconnected so that it
// holds up no one else.
func (s *session) enqueue(o outbound, reply bool) bool {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return false
	}
	if !reply && len(s.queue)-s.replies >= s.srv.cfg.SendQueue {
		s.mu.Unlock()
		s.tooSlow()
		return false
	}
	s.queue = append(s.queue, o)
	if reply {
		s.replies++
	}
	s.startWriterLocked()
	s.mu.Unlock()
	return true
}

func (s *session) tooSlow() {
	s.srv.metrics.SlowConsumer()
	s.kick(websocket.ClosePolicyViolation, "send queue full: client too slow")
}

// awaitRoom holds the reader until the queue has room, or kicks the
// session when it has none within the write timeout: the backpressure
// that bounds the replies of a client that does not read them.
func (s *session) awaitRoom() {
	s.mu.Lock()
	if s.hasRoomLocked() {
		s.mu.Unlock()
		return
	}
	timedOut := false
	timer := time.AfterFunc(s.srv.cfg.WriteTimeout, func() {
		s.mu.Lock()
		timedOut = true
		s.changed.Broadcast()
		s.mu.Unlock()
	})
	for !s.hasRoomLocked() && !timedOut {
		s.changed.Wait()
	}
	full := !s.hasRoomLocked()
	s.mu.Unlock()
	timer.Stop()
	if full {
		s.tooSlow()
	}
}

// hasRoomLocked: the queue is below SendQueue, or no writer will ever take
// it (the connection failed or the session closes), so waiting is pointless.
func (s *session) hasRoomLocked() bool {
	return len(s.queue) < s.srv.cfg.SendQueue || !s.writing || s.closing
}

// closeWith queues a close after the frames already queued, or closes at
// once, with the same code, when there is no room left.
func (s *session) closeWith(code int, text string) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	if len(s.queue) >= s.srv.cfg.SendQueue {
		s.mu.Unlock()
		s.kick(code, text)
		return
	}
	s.queue = append(s.queue, outbound{control: websocket.CloseMessage, closeCode: code, closeText: text})
	s.closing = true
	s.startWriterLocked()
	s.mu.Unlock()
}

// startWriterLocked starts a writer unless one runs or the upgrade has not
// given the session its connection yet; s.mu is held.
func (s *session) startWriterLocked() {
	if s.live && !s.writing {
		s.writing = true
		go s.writeLoop()
	}
}

// kick closes the session at once with code, skipping what is queued; a
// writer blocked on the slow client sees it after its current write.
func (s *session) kick(code int, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	if s.stopped.Load() {
		return
	}
	s.stopCode, s.stopText = code, text
	s.stopped.Store(true)
	s.startWriterLocked()
}

// interrupt makes a blocked read return at once, so the reader sees that
// the server drains; the frame being handled, if any, finishes first.
func (s *session) interrupt() { _ = s.conn.NetConn().SetReadDeadline(time.Now()) }

// run serves the session until it ends, then tears it down.
func (s *session) run(unregister func()) {
	s.mu.Lock()
	s.live = true
	if len(s.queue) > 0 || s.stopped.Load() {
		s.startWriterLocked()
	}
	s.mu.Unlock()
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
	// Refuse pushes from deliveries already under way: they would sit in a
	// queue no one writes.
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.ended.Store(true)
	s.conn.Close()
	s.waitWriter()
}

// waitWriter waits until no writer runs, so a queued close has been sent;
// the writes' deadlines bound the wait, and Shutdown's context can cut the
// connection.
func (s *session) waitWriter() {
	s.mu.Lock()
	for s.writing {
		s.changed.Wait()
	}
	s.mu.Unlock()
}

// drain reads, for the close handshake, the rest of an oversized frame and
// whatever the client sends until its close; closing with unread data would
// reset the connection and could lose the error frame on the client's side.
func (s *session) drain() {
	_ = s.conn.SetReadDeadline(time.Now().Add(closeGrace))
	for {
		if _, _, err := s.conn.NextReader(); err != nil {
			return
		}
	}
}

// readLoop reads and handles frames until the connection fails, the client
// closes, a frame is too large or the session is closing.
func (s *session) readLoop() error {
	idle := 2 * s.srv.cfg.PingInterval
	s.conn.SetPongHandler(func(string) error {
		return s.extendDeadline(idle)
	})
	// A frame is read through a limit one byte past the maximum: gorilla's
	// own read limit would close the connection before the protocol's error
	// frame could be sent, and reading this way never buffers more than the
	// limit whatever the frame's declared length.
	max := int64(s.srv.cfg.MaxFrameBytes)
	for {
		if err := s.extendDeadline(idle); err != nil {
			return err
		}
		mt, r, err := s.conn.NextReader()
		if err != nil {
			return err
		}
		data, err := io.ReadAll(io.LimitReader(r, max+1))
		if err != nil {
			return err
		}
		if int64(len(data)) > max {
			s.srv.metrics.FrameIn(typeInvalid)
			return errTooLarge
		}
		if mt != websocket.TextMessage {
			s.srv.metrics.FrameIn(typeInvalid)
			s.replyError("", wire.CodeBadRequest, "frames must be JSON text frames")
		} else {
			s.handle(data)
		}
		s.awaitRoom()
	}
}

// extendDeadline moves the read deadline, then checks for a close in
// progress: Shutdown and the writer set the flag before they cut the
// deadline short, so either they see the new deadline or this sees the flag.
func (s *session) extendDeadline(idle time.Duration) error {
	if err := s.conn.SetReadDeadline(time.Now().Add(idle)); err != nil {
		return err
	}
	if s.srv.draining.Load() || s.closeSent.Load() {
		return errClosing
	}
	return nil
}

func (s *session) handle(data []byte) {
	f, ferr := decodeFrame(data)
	if ferr != nil {
		s.srv.metrics.FrameIn(typeInvalid)
		s.replyError(ferr.ID, ferr.Code, ferr.Message)
		return
	}
	s.srv.metrics.FrameIn(f.Type)
	switch f.Type {
	case typePing:
		s.reply(typePong, pongFrame{Type: typePong})
		return
	case typeAuth:
		s.handleAuth(f)
		return
	}
	// Not the connection's context: a send whose client went away still
	// completes, so that its resend finds the first ack.
	ctx, cancel := context.WithTimeout(context.Background(), s.srv.cfg.RequestTimeout)
	defer cancel()
	var err error
	switch f.Type {
	case typeSend:
		err = s.handleSend(ctx, f)
	case typeRead:
		err = s.srv.app.MarkRead.Handle(ctx, application.MarkReadCommand{Reader: s.user, Conversation: f.Conversation, UpTo: f.UpTo})
	case typeSync:
		var page application.Page
		page, err = s.srv.app.Sync.Handle(ctx, application.SyncQuery{Reader: s.user, Conversation: f.Conversation, After: f.After, Limit: f.Limit})
		if err == nil {
			s.reply(typeMessages, messagesOf(page))
		}
	case typeTyping:
		err = s.handleTyping(ctx, f)
	case typePresence:
		err = s.handlePresence(ctx, f)
	}
	if err != nil {
		code := wire.CodeOf(err)
		s.replyError(f.ID, code, s.srv.publicMessage(code, err, f.Type))
	}
}

func (s *session) handleSend(ctx context.Context, f clientFrame) error {
	start := time.Now()
	ack, err := s.srv.app.Send.Handle(ctx, application.SendMessageCommand{
		Sender: s.user, ClientID: f.Key, To: f.To, Body: f.Body, Origin: s.id,
	})
	if err != nil {
		s.srv.metrics.Send(metrics.TransportWebSocket, wire.CodeOf(err), start)
		return err
	}
	s.srv.metrics.Send(metrics.TransportWebSocket, metrics.OutcomeOK, start)
	s.reply(typeAck, ackOf(ack))
	return nil
}

// handleAuth hands the session the fresh token of an `auth` frame. A token
// that does not verify, or names another user, changes nothing: the session
// keeps its token and dies at its exp.
func (s *session) handleAuth(f clientFrame) {
	identity, err := s.srv.verifier.Verify(f.Token)
	if err != nil {
		s.replyError(f.ID, wire.CodeUnauthorized, err.Error())
		return
	}
	if identity.User != s.user {
		s.replyError(f.ID, wire.CodeForbidden, "the token is for another user")
		return
	}
	s.srv.expiries.schedule(s, identity.ExpiresAt)
	s.reply(typeAuthed, authedFrame{Type: typeAuthed, ID: f.ID, ExpiresAt: wire.FormatTime(identity.ExpiresAt)})
}

// writeLoop writes queued items in order until the queue is empty (then it
// exits, to be started again by the next item), a close is written, a write
// fails, the session is kicked or the reader is done.
func (s *session) writeLoop() {
	defer func() {
		s.mu.Lock()
		s.writing = false
		s.changed.Broadcast()
		s.mu.Unlock()
	}()
	for {
		s.mu.Lock()
		batch := s.queue
		s.queue, s.replies = nil, 0
		if len(batch) == 0 && !s.stopped.Load() {
			s.mu.Unlock()
			return
		}
		s.changed.Broadcast()
		s.mu.Unlock()
		if s.stopped.Load() {
			s.stop()
			return
		}
		for _, o := range batch {
			if s.ended.Load() {
				return
			}
			if s.stopped.Load() {
				s.stop()
				return
			}
			if o.control == websocket.CloseMessage {
				s.writeClose(o.closeCode, o.closeText)
				return
			}
			if err := s.write(o); err != nil {
				s.conn.Close() // the reader fails now and tears the session down
				return
			}
			switch o.typ {
			case typeMessage:
				m := o.frame.(messageFrame).Message
				s.srv.app.Delivery.Written(s, m.Conversation, m.To, m.Seq)
			case typeMessages:
				if page := o.frame.(messagesFrame); len(page.Messages) > 0 {
					s.srv.app.Delivery.PageWritten(s, page.Conversation, page.Messages[0].Seq, page.Messages[len(page.Messages)-1].Seq)
				}
			}
		}
	}
}

// stop writes the kick's close frame and cuts the connection.
func (s *session) stop() {
	s.writeClose(s.stopCode, s.stopText)
	s.conn.Close()
}

func (s *session) write(o outbound) error {
	deadline := time.Now().Add(s.srv.cfg.WriteTimeout)
	if o.control != 0 {
		return s.conn.WriteControl(o.control, nil, deadline)
	}
	data, err := json.Marshal(o.frame)
	if err != nil {
		return err
	}
	if err := s.conn.SetWriteDeadline(deadline); err != nil {
		return err
	}
	return s.conn.WriteMessage(websocket.TextMessage, data)
}

// writeClose sends the close frame and gives the client closeGrace to
// answer it before the reader gives up.
func (s *session) writeClose(code int, text string) {
	s.closeSent.Store(true)
	_ = s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(closeGrace))
	_ = s.conn.NetConn().SetReadDeadline(time.Now().Add(closeGrace))
}
