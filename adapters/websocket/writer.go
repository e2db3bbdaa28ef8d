package websocket

import (
	"time"

	"github.com/gorilla/websocket"
)

// writeLoop writes queued items in order until the queue is empty (then it
// exits, to be started again by the next item), a close is written, a write
// fails, the session is kicked or the reader is done.
func (s *session) writeLoop() {
	for {
		batch, more := s.takeQueue()
		if !more {
			return
		}
		if !s.writeBatch(batch) {
			s.mu.Lock()
			s.writing = false
			s.wakeWaiterLocked()
			s.mu.Unlock()
			return
		}
	}
}

// takeQueue takes what is queued, which makes room for the reader. With
// nothing to write the writer is gone, under the same lock that found the
// queue empty: a kick or a frame that comes after it starts a new writer,
// none is lost to a writer on its way out.
func (s *session) takeQueue() (batch []outbound, more bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	batch = s.queue
	s.queue, s.replies = nil, 0
	s.wakeWaiterLocked()
	if len(batch) == 0 && s.state != kicked {
		s.writing = false
		return nil, false
	}
	return batch, true
}

// writeBatch writes batch, as few writes as maxCoalesced allows; false
// when the writer must stop. A kick that comes meanwhile is seen before
// each write: the frames encoded but not yet written are dropped with the
// rest of the queue.
func (s *session) writeBatch(batch []outbound) bool {
	bufp := outBuffers.Get().(*[]byte)
	buf := (*bufp)[:0]
	defer func() {
		if cap(buf) <= maxPooledBuffer {
			*bufp = buf[:0]
			outBuffers.Put(bufp)
		}
	}()
	first := 0 // the first frame of batch in buf
	for i, o := range batch {
		if o.control == websocket.CloseMessage {
			if s.flush(buf, batch[first:i]) && s.mayWrite() {
				s.writeClose(o.closeCode, o.closeText)
			}
			return false
		}
		var err error
		if buf, err = appendOutbound(buf, o); err != nil {
			s.cut() // the reader fails now and tears the session down
			return false
		}
		if len(buf) >= maxCoalesced {
			if !s.flush(buf, batch[first:i+1]) {
				return false
			}
			buf, first = buf[:0], i+1
		}
	}
	return s.flush(buf, batch[first:])
}

// flush writes buf, which holds frames, in one write; the frames count as
// written only once it succeeded. False when the writer must stop.
func (s *session) flush(buf []byte, frames []outbound) bool {
	if !s.mayWrite() {
		return false
	}
	if len(buf) == 0 {
		return true
	}
	if err := s.writeRaw(buf); err != nil {
		s.cut() // the reader fails now and tears the session down
		return false
	}
	for _, o := range frames {
		s.written(o)
	}
	return true
}

// mayWrite tells the writer whether to go on: not once the reader has torn
// the session down, nor once it is kicked, which writes the kick's close
// frame and cuts the connection instead.
func (s *session) mayWrite() bool {
	s.mu.Lock()
	state, code, text := s.state, s.kickCode, s.kickText
	s.mu.Unlock()
	switch state {
	case ended:
		return false
	case kicked:
		s.writeClose(code, text)
		s.cut()
		return false
	}
	return true
}

// written tells delivery what reached the connection: a message, or a
// sync page, counts as delivered only now.
func (s *session) written(o outbound) {
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

// writeClose sends the close frame and gives the client closeGrace to
// answer it before the reader gives up. The state moves first, so that a
// reader extending its deadline either sees it or has its deadline cut
// short here.
func (s *session) writeClose(code int, text string) {
	s.mu.Lock()
	s.state = s.state.on(closeWritten)
	s.mu.Unlock()
	_ = s.writeControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(closeGrace))
	_ = s.conn.NetConn().SetReadDeadline(time.Now().Add(closeGrace))
	s.wakeReader()
}
