package websocket

import "time"

// Config tunes the transport; a zero field takes its DefaultConfig value.
type Config struct {
	// MaxFrameBytes bounds a client frame (CHAT_MAX_FRAME_BYTES); a larger
	// one is answered with `too_large` and the connection closed with 1009.
	MaxFrameBytes int
	// SendQueue bounds the frames waiting to be written to one client; a
	// session whose queue is full is disconnected with 1008.
	SendQueue int
	// PingInterval is how often every session is pinged; a session that sends
	// nothing, not even a pong, for twice as long is dropped.
	PingInterval time.Duration
	// WriteTimeout bounds writing one frame to a client.
	WriteTimeout time.Duration
	// RequestTimeout bounds the use case a frame runs (a send, a sync).
	RequestTimeout time.Duration
	// HandshakeTimeout bounds the upgrade.
	HandshakeTimeout time.Duration
	// ReadBufferSize sizes gorilla's read buffer, which lives as long as
	// the session. It holds at most one frame's header or control frame:
	// the session reads ahead into a pooled buffer instead (inbound.go),
	// so 125 bytes, the largest control frame's payload and gorilla's
	// least, do. Writes need no buffer of the session's: the writer
	// encodes into a pooled one (outframes.go).
	ReadBufferSize int
	// ParkAfter is how long a session whose client sends nothing keeps its
	// reader goroutine before it parks (park.go); at most half the ping
	// interval, so that a session parks between pongs.
	ParkAfter time.Duration
	// MaxSessionsPerUser bounds one user's sessions on this node
	// (CHAT_MAX_SESSIONS_PER_USER); the next upgrade is refused with 429.
	MaxSessionsPerUser int
	// AllowedOrigins lists the browser origins (such as
	// "https://chat.example.com") allowed besides the server's own host; "*"
	// allows any. Requests without an Origin header, which browsers always
	// send, are not cross-site and are allowed.
	AllowedOrigins []string
}

// DefaultConfig is what PROTOCOL.md promises when nothing is configured.
func DefaultConfig() Config {
	return Config{
		MaxFrameBytes:    65536,
		SendQueue:        256,
		PingInterval:     30 * time.Second,
		WriteTimeout:     10 * time.Second,
		RequestTimeout:   10 * time.Second,
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   125,
		ParkAfter:        time.Second,

		MaxSessionsPerUser: 20,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	for _, f := range []struct{ v, def *int }{
		{&c.MaxFrameBytes, &d.MaxFrameBytes}, {&c.SendQueue, &d.SendQueue},
		{&c.ReadBufferSize, &d.ReadBufferSize}, {&c.MaxSessionsPerUser, &d.MaxSessionsPerUser},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	for _, f := range []struct{ v, def *time.Duration }{
		{&c.PingInterval, &d.PingInterval}, {&c.WriteTimeout, &d.WriteTimeout},
		{&c.RequestTimeout, &d.RequestTimeout}, {&c.HandshakeTimeout, &d.HandshakeTimeout},
		{&c.ParkAfter, &d.ParkAfter},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return c
}

// idle is how long a session may send nothing, not even a pong, before it
// is dropped: twice the ping interval.
func (c Config) idle() time.Duration { return 2 * c.PingInterval }
