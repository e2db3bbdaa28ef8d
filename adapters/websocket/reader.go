package websocket

import (
	"context"
	"io"
	"time"

	"github.com/gorilla/websocket"

	"github.com/evchat/chatd/adapters/wire"
	"github.com/evchat/chatd/application"
)

// readLoop reads and handles frames until the connection fails, the client
// closes, a frame is too large or the session is closing (or parks: see
// park.go). The client must send something, a pong at least, within idle of
// its last frame. A session lingers before it parks after a frame of its
// client's, but a new one, parkAtOnce, parks without: at an opening burst,
// thousands of sessions would otherwise each hold a goroutine for a second.
// A ping or pong does not make a parked session linger either.
func (s *session) readLoop(parkAtOnce bool) error {
	idle := s.srv.cfg.idle()
	// A frame is read through a limit one byte past the maximum: gorilla's
	// own read limit would close the connection before the protocol's error
	// frame could be sent, and reading this way never buffers more than the
	// limit whatever the frame's declared length.
	max := int64(s.srv.cfg.MaxFrameBytes)
	s.readBy = time.Now().Add(idle)
	lingered := parkAtOnce
	for {
		if err := s.extendDeadline(s.readBy); err != nil {
			return err
		}
		took, err := s.answerBufferedControl()
		if err != nil {
			return err
		}
		if took {
			// A pong says the client lives, not that it is busy: the
			// sessions of an opening burst are pinged together, and
			// lingering then would give each its goroutine together.
			s.readBy = time.Now().Add(idle)
			continue
		}
		if s.parkable() {
			if lingered {
				if s.park(s.readBy) {
					return errParked
				}
			} else {
				lingered = true
				if err := s.linger(); err != nil {
					return err
				}
				continue
			}
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
		s.readBy, lingered = time.Now().Add(idle), false
	}
}

// extendDeadline moves the read deadline, then checks for a close in
// progress: Shutdown and the writer mark it before they cut the deadline
// short, so either they see the new deadline or this sees the mark.
func (s *session) extendDeadline(deadline time.Time) error {
	if err := s.conn.SetReadDeadline(deadline); err != nil {
		return err
	}
	s.mu.Lock()
	state := s.state
	s.mu.Unlock()
	if s.srv.draining.Load() || state == closed {
		return errClosing
	}
	return nil
}

// answerBufferedControl answers the pings and takes the pongs buffered
// whole between frames, as gorilla would, but without gorilla then reading
// on to the next frame: a session woken by a pong parks again at once.
func (s *session) answerBufferedControl() (took bool, err error) {
	for {
		opcode, payload, ok := s.in.takeControl()
		if !ok {
			return took, nil
		}
		took = true
		if opcode == pingOpcode {
			if err := s.conn.PingHandler()(string(payload)); err != nil {
				return took, err
			}
		}
	}
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
		err = s.srv.app.MarkReceipts.Handle(ctx, application.MarkReadCommand{Reader: s.user, Conversation: f.Conversation, UpTo: f.UpTo})
	case typeSync:
		var page application.Page
		page, err = s.srv.app.Sync.Handle(ctx, application.SyncQuery{Reader: s.user, Conversation: f.Conversation, After: f.After, Limit: f.Limit,
			ChangesAfter: f.ChangesAfter, WithChanges: f.WithChanges})
		if err == nil {
			s.reply(typeMessages, messagesOf(page))
		}
	case typeEdit:
		err = s.handleChange(s.srv.app.Edit.Handle(ctx, application.EditMessageCommand{
			Author: s.user, ClientID: f.Key, Conversation: f.Conversation, Seq: f.Seq, Body: f.Body, Origin: s.id}))
	case typeRecall:
		err = s.handleChange(s.srv.app.Recall.Handle(ctx, application.RecallMessageCommand{
			Author: s.user, ClientID: f.Key, Conversation: f.Conversation, Seq: f.Seq, Origin: s.id}))
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
	ack, err := s.srv.send.Handle(ctx, application.SendMessageCommand{
		Sender: s.user, ClientID: f.Key, To: f.To, Conversation: f.Conversation, Body: f.Body, Origin: s.id,
	})
	if err != nil {
		return err
	}
	s.reply(typeAck, ackOf(ack))
	return nil
}

// handleChange answers an edit or a recall with `changed`.
func (s *session) handleChange(changed application.Changed, err error) error {
	if err != nil {
		return err
	}
	s.reply(typeChanged, changedOf(changed))
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
	s.srv.tokenExpiries.schedule(s, identity.ExpiresAt)
	s.reply(typeAuthed, authedOf(f.ID, identity.ExpiresAt))
}
