package websocket

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// The writer encodes what it takes from the queue into one buffer and
// writes it with one write: one syscall where there was one per frame, and
// the syscall was a quarter of a busy node's CPU. Frames are framed here
// rather than by gorilla/websocket, whose writers make one write per
// message; a server's frame is a fixed header and the unmasked payload
// (RFC 6455, 5.2), and the upgrader negotiates no compression. gorilla
// still reads every frame, and writes the close frames.

// maxCoalesced bounds one write, so that a long queue of large frames is
// written, and counted as written, in parts instead of after all of it.
const maxCoalesced = 64 << 10

// maxPooledBuffer keeps a buffer that grew for a large sync page out of
// the pool, so that the pool does not hold it for every later small write.
const maxPooledBuffer = 4 * maxCoalesced

// controlWait bounds a pong or a close echo, as gorilla's own handlers do.
const controlWait = time.Second

var outBuffers = sync.Pool{New: func() any { return new([]byte) }}

// appendFrame appends one final, unmasked, uncompressed frame.
func appendFrame(buf []byte, opcode int, payload []byte) []byte {
	buf = append(buf, 0x80|byte(opcode))
	switch n := len(payload); {
	case n <= 125:
		buf = append(buf, byte(n))
	case n <= 0xffff:
		buf = append(buf, 126)
		buf = binary.BigEndian.AppendUint16(buf, uint16(n))
	default:
		buf = append(buf, 127)
		buf = binary.BigEndian.AppendUint64(buf, uint64(n))
	}
	return append(buf, payload...)
}

// appendOutbound appends the frame of o: a ping, or a JSON text frame.
func appendOutbound(buf []byte, o outbound) ([]byte, error) {
	if o.control != 0 {
		return appendFrame(buf, o.control, nil), nil
	}
	data, err := json.Marshal(o.frame)
	if err != nil {
		return buf, err
	}
	return appendFrame(buf, websocket.TextMessage, data), nil
}

// writeRaw writes encoded frames to the connection under the session's
// write lock, with the write timeout as the deadline.
func (s *session) writeRaw(buf []byte) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	conn := s.conn.NetConn()
	if err := conn.SetWriteDeadline(time.Now().Add(s.srv.cfg.WriteTimeout)); err != nil {
		return err
	}
	_, err := conn.Write(buf)
	return err
}

// writeControl writes a control frame through gorilla under the session's
// write lock, which keeps its deadline from moving the deadline of a
// write of the writer's under way. A reader answering a ping may wait here
// for such a write, at most the write timeout, as it waits for room in
// the queue when the client reads slowly.
func (s *session) writeControl(messageType int, data []byte, deadline time.Time) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.conn.WriteControl(messageType, data, deadline)
}

// answerControlFrames makes the reader answer a client's ping and close
// through the session's write lock, as gorilla's default handlers answer
// them.
func (s *session) answerControlFrames() {
	s.conn.SetPingHandler(func(data string) error {
		err := s.writeControl(websocket.PongMessage, []byte(data), time.Now().Add(controlWait))
		var netErr net.Error
		if errors.Is(err, websocket.ErrCloseSent) || (errors.As(err, &netErr) && netErr.Timeout()) {
			return nil
		}
		return err
	})
	s.conn.SetCloseHandler(func(code int, _ string) error {
		_ = s.writeControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(controlWait))
		return nil
	})
}
