package websocket

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
)

// maskedFrame encodes a masked client frame of opcode with payload.
func maskedFrame(fin bool, opcode byte, payload []byte) []byte {
	first := opcode
	if fin {
		first |= 0x80
	}
	f := []byte{first}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n <= 0xffff:
		f = append(f, 0x80|126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	key := []byte{0x12, 0x34, 0x56, 0x78}
	f = append(f, key...)
	for i, b := range payload {
		f = append(f, b^key[i%4])
	}
	return f
}

// chunkedConn is a socket whose reads return its bytes chunk by chunk.
type chunkedConn struct {
	net.Conn
	data  []byte
	chunk int
}

func (c *chunkedConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.data[:min(c.chunk, len(c.data))])
	c.data = c.data[n:]
	return n, nil
}

func TestInboundHandsGorillaNoByteBeyondTheFrameItReads(t *testing.T) {
	sizes := []int{0, 5, 125, 126, 300, 5000, 65535, 65536}
	var stream []byte
	var ends []int // where each frame ends in stream
	for i, n := range sizes {
		stream = append(stream, maskedFrame(i%2 == 0, 0x1, bytes.Repeat([]byte{byte('a' + i)}, n))...)
		ends = append(ends, len(stream))
	}
	for _, tc := range []struct {
		name         string
		chunk, asked int
	}{
		{"byte by byte", 1, 256},
		{"small chunks, gorilla's small buffer", 7, 125},
		{"a socket read of a page", 4096, 125},
		{"everything at once, large reads", len(stream), 8192},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := newInbound(&chunkedConn{data: bytes.Clone(stream), chunk: tc.chunk})
			var read []byte
			next := 0 // the next frame end
			for {
				p := make([]byte, tc.asked)
				n, err := in.Read(p)
				if n > 0 {
					before := len(read)
					read = append(read, p[:n]...)
					if before < ends[next] && len(read) > ends[next] {
						t.Fatalf("a read handed bytes %d..%d, past the frame ending at %d", before, len(read), ends[next])
					}
					if len(read) == ends[next] {
						next++
						if !in.idle() && in.r == in.w {
							t.Fatalf("after frame %d, with nothing buffered: not idle", next)
						}
					} else if in.idle() {
						t.Fatalf("idle inside frame %d, at byte %d", next, len(read))
					}
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(read, stream) || next != len(ends) {
				t.Fatalf("read %d bytes, %d frames; want %d and %d", len(read), next, len(stream), len(ends))
			}
			if in.buf != nil {
				t.Fatal("the read-ahead buffer is held while empty")
			}
		})
	}
}

func TestInboundTakesWholeBufferedPingsAndPongsOnly(t *testing.T) {
	ping := maskedFrame(true, pingOpcode, []byte("hi"))
	unmasked := []byte{0x80 | pingOpcode, 0}
	for _, tc := range []struct {
		name     string
		buffered []byte
		want     int // the opcode taken, 0 for none
		payload  string
	}{
		{"a ping", ping, pingOpcode, "hi"},
		{"a pong with nothing", maskedFrame(true, pongOpcode, nil), pongOpcode, ""},
		{"a ping, then a text frame", append(bytes.Clone(ping), maskedFrame(true, 0x1, []byte("x"))...), pingOpcode, "hi"},
		{"part of a ping", ping[:len(ping)-1], 0, ""},
		{"a text frame", maskedFrame(true, 0x1, []byte("x")), 0, ""},
		{"a close", maskedFrame(true, 0x8, nil), 0, ""},
		{"an unmasked ping, which gorilla refuses", unmasked, 0, ""},
		{"a fragmented ping, which gorilla refuses", maskedFrame(false, pingOpcode, nil), 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := newInbound(&chunkedConn{data: bytes.Clone(tc.buffered), chunk: len(tc.buffered)})
			if err := in.fill(); err != nil {
				t.Fatal(err)
			}
			opcode, payload, ok := in.takeControl()
			if ok != (tc.want != 0) || opcode != tc.want || string(payload) != tc.payload {
				t.Fatalf("took %v: opcode %#x payload %q; want opcode %#x payload %q", ok, opcode, payload, tc.want, tc.payload)
			}
			left := in.w - in.r
			if want := len(tc.buffered) - len(ping)*btoi(ok && tc.want == pingOpcode) - 6*btoi(ok && tc.want == pongOpcode); left != want {
				t.Fatalf("%d bytes left buffered, want %d", left, want)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
