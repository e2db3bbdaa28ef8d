package websocket

import (
	"net"
	"sync"
)

// inbound is a session's connection as gorilla reads it. It reads ahead
// from the socket into a pooled buffer, held only while it has bytes, and
// hands gorilla no byte past the end of the frame being read. So, once a
// message has been read, every byte of the client's that the process holds
// is in this buffer, none in gorilla's: when it is empty the session can
// stop reading and wait for the socket to become readable again without a
// goroutine (park.go), and the ping and pong frames that a parked session
// wakes up for can be taken here, whole, without gorilla reading on into
// the next frame.
//
// It follows the client's frames by their headers (RFC 6455, 5.2), which
// is all the parsing it does; gorilla checks everything else.
type inbound struct {
	net.Conn

	buf  *[]byte // read-ahead, from inboundBuffers; nil while empty
	r, w int     // the unread bytes are (*buf)[r:w]

	// The frame being handed to gorilla: its header, as far as handed,
	// and then how many payload bytes are still to hand.
	header      [maxFrameHeader]byte
	headerLen   int
	headerNeed  int // the header's length, 2 until its second byte is known
	payloadLeft uint64
	inPayload   bool
}

// maxFrameHeader is the longest frame header: two bytes, a 64-bit length
// and a masking key.
const maxFrameHeader = 14

// inboundBufferSize holds a chat frame and the frames a client sends right
// behind it in one read; a longer payload goes straight into gorilla's
// buffer instead (Read).
const inboundBufferSize = 4096

var inboundBuffers = sync.Pool{New: func() any {
	b := make([]byte, inboundBufferSize)
	return &b
}}

func newInbound(c net.Conn) *inbound { return &inbound{Conn: c, headerNeed: 2} }

// Read hands gorilla the next bytes of the frame being read, reading from
// the socket when none is buffered.
func (in *inbound) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if in.r == in.w {
		if in.inPayload && uint64(len(p)) >= inboundBufferSize {
			// A long payload is read where gorilla wants it, not copied.
			n, err := in.Conn.Read(p[:min(uint64(len(p)), in.payloadLeft)])
			in.handed(p[:n])
			return n, err
		}
		if err := in.fill(); err != nil {
			return 0, err
		}
	}
	n := min(len(p), in.w-in.r)
	if in.inPayload {
		n = int(min(uint64(n), in.payloadLeft))
	} else {
		n = min(n, in.headerNeed-in.headerLen)
	}
	buffered := (*in.buf)[in.r : in.r+n]
	copy(p, buffered)
	in.handed(buffered)
	in.r += n
	in.releaseIfEmpty()
	return n, nil
}

// fill reads what the socket has, waiting for it under the connection's
// read deadline.
func (in *inbound) fill() error {
	if in.buf == nil {
		in.buf = inboundBuffers.Get().(*[]byte)
	}
	n, err := in.Conn.Read(*in.buf)
	in.r, in.w = 0, n
	in.releaseIfEmpty()
	if n > 0 {
		return nil
	}
	return err
}

func (in *inbound) releaseIfEmpty() {
	if in.r == in.w && in.buf != nil {
		inboundBuffers.Put(in.buf)
		in.buf, in.r, in.w = nil, 0, 0
	}
}

// handed follows the frames through the bytes b handed to gorilla.
func (in *inbound) handed(b []byte) {
	if in.inPayload {
		in.payloadLeft -= uint64(len(b))
		if in.payloadLeft == 0 {
			in.frameDone()
		}
		return
	}
	in.headerLen += copy(in.header[in.headerLen:], b)
	if in.headerLen >= 2 && in.headerNeed == 2 {
		in.headerNeed = frameHeaderLen(in.header[1])
	}
	if in.headerLen == in.headerNeed {
		in.payloadLeft = framePayloadLen(in.header[:in.headerLen])
		in.inPayload = in.payloadLeft > 0
		if !in.inPayload {
			in.frameDone()
		}
	}
}

func (in *inbound) frameDone() {
	in.headerLen, in.headerNeed, in.payloadLeft, in.inPayload = 0, 2, 0, false
}

// idle tells whether gorilla has read every byte the process holds and is
// between frames: the socket is then the only place the next frame can
// come from.
func (in *inbound) idle() bool {
	return in.r == in.w && in.headerLen == 0 && !in.inPayload
}

// takeControl takes a whole ping or pong frame buffered between frames,
// unmasked, so that gorilla does not read on past it. ok is false when the
// next frame is anything else, or not all buffered: gorilla reads it then.
func (in *inbound) takeControl() (opcode int, payload []byte, ok bool) {
	if in.headerLen != 0 || in.inPayload || in.w-in.r < 2 {
		return 0, nil, false
	}
	b := (*in.buf)[in.r:in.w]
	const fin, masked = 0x80, 0x80
	opcode = int(b[0] & 0x0f)
	if b[0]&^0x0f != fin || (opcode != pingOpcode && opcode != pongOpcode) || b[1]&masked == 0 {
		return 0, nil, false
	}
	size := int(b[1] & 0x7f)
	if size > maxControlPayload || len(b) < 6+size {
		return 0, nil, false
	}
	key := b[2:6]
	payload = make([]byte, size)
	for i := range payload {
		payload[i] = b[6+i] ^ key[i%4]
	}
	in.r += 6 + size
	in.releaseIfEmpty()
	return opcode, payload, true
}

// The control frames takeControl takes (RFC 6455, 5.5).
const (
	pingOpcode        = 0x9
	pongOpcode        = 0xa
	maxControlPayload = 125
)

// frameHeaderLen is a frame header's length from its second byte: the
// length code and the mask bit.
func frameHeaderLen(second byte) int {
	n := 2
	switch second & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if second&0x80 != 0 {
		n += 4
	}
	return n
}

// framePayloadLen reads the payload length of a complete header.
func framePayloadLen(h []byte) uint64 {
	switch size := h[1] & 0x7f; size {
	case 126:
		return uint64(h[2])<<8 | uint64(h[3])
	case 127:
		var n uint64
		for _, b := range h[2:10] {
			n = n<<8 | uint64(b)
		}
		return n
	default:
		return uint64(size)
	}
}
