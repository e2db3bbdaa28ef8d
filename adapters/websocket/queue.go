package websocket

import (
	"time"

	"github.com/gorilla/websocket"
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

// enqueue never blocks. A push finding SendQueue pushes queued means the
// client reads slower than it is written to; it is disconnected so that it
// holds up no one else.
func (s *session) enqueue(o outbound, reply bool) bool {
	s.mu.Lock()
	if !s.state.accepts() {
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
	s.mu.Unlock()
	timeout := time.NewTimer(s.srv.cfg.WriteTimeout)
	defer timeout.Stop()
	for {
		s.mu.Lock()
		if s.hasRoomLocked() {
			s.mu.Unlock()
			return
		}
		wake := s.wakeLocked()
		s.mu.Unlock()
		select {
		case <-wake:
		case <-timeout.C:
			s.mu.Lock()
			full := !s.hasRoomLocked()
			s.mu.Unlock()
			if full {
				s.tooSlow()
			}
			return
		}
	}
}

// hasRoomLocked: the queue is below SendQueue, or no writer will ever take
// it (the connection failed or the session closes), so waiting is pointless.
func (s *session) hasRoomLocked() bool {
	return len(s.queue) < s.srv.cfg.SendQueue || !s.writing || !s.state.accepts()
}

// closeWith queues a close after the frames already queued, or closes at
// once, with the same code, when there is no room left.
func (s *session) closeWith(code int, text string) {
	s.mu.Lock()
	if !s.state.accepts() {
		s.mu.Unlock()
		return
	}
	if len(s.queue) >= s.srv.cfg.SendQueue {
		s.mu.Unlock()
		s.kick(code, text)
		return
	}
	s.queue = append(s.queue, outbound{control: websocket.CloseMessage, closeCode: code, closeText: text})
	s.state = s.state.on(closeQueued)
	s.startWriterLocked()
	s.mu.Unlock()
}

// kick closes the session at once with code, skipping what is queued; a
// writer blocked on the slow client sees it after its current write.
func (s *session) kick(code int, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.state.on(kickedOut)
	if next == s.state {
		return
	}
	s.state = next
	s.kickCode, s.kickText = code, text
	s.startWriterLocked()
}

// startWriterLocked starts a writer unless one runs or the upgrade has not
// given the session its connection yet; s.mu is held.
func (s *session) startWriterLocked() {
	if s.conn != nil && !s.writing {
		s.writing = true
		go s.writeLoop()
	}
}

// waitWriter waits until no writer runs, so a queued close has been sent;
// the writes' deadlines bound the wait, and Shutdown's context can cut the
// connection.
func (s *session) waitWriter() {
	for {
		s.mu.Lock()
		if !s.writing {
			s.mu.Unlock()
			return
		}
		wake := s.wakeLocked()
		s.mu.Unlock()
		<-wake
	}
}

// wakeLocked is the channel the next wakeWaiterLocked closes; s.mu is held.
func (s *session) wakeLocked() chan struct{} {
	if s.wake == nil {
		s.wake = make(chan struct{})
	}
	return s.wake
}

// wakeWaiterLocked tells a reader waiting for room or for the writer to
// finish to look again; s.mu is held.
func (s *session) wakeWaiterLocked() {
	if s.wake != nil {
		close(s.wake)
		s.wake = nil
	}
}
