package websocket

// lifecycle is where a session stands between its registration and its
// teardown. It moves only forward, on the events below, each sent by one
// owner; an event that comes too late for the state (a kick after the
// close is written, a second close) changes nothing.
type lifecycle uint8

const (
	// opening: registered before the upgrade completes, so that nothing
	// pushed meanwhile is lost; frames wait in the queue for the connection.
	opening lifecycle = iota
	// open: the connection is up; frames are written as they are queued.
	open
	// closing: a close frame is queued behind the frames already queued;
	// nothing more is accepted.
	closing
	// kicked: the session closes at once, skipping what is queued.
	kicked
	// closed: the close frame is written; the client has closeGrace to
	// answer it before the reader gives up.
	closed
	// ended: the reader tore the session down; a writer still running stops.
	ended
)

// event moves a session's lifecycle. Each has one owner.
type event uint8

const (
	// connected: the upgrade gave the session its connection (connect,
	// called by ServeHTTP).
	connected event = iota
	// closeQueued: a close was queued behind the frames already queued
	// (closeWith).
	closeQueued
	// kickedOut: the session must close at once (kick).
	kickedOut
	// closeWritten: the writer wrote the close frame (writeClose).
	closeWritten
	// tornDown: the reader is done and tears the session down (run).
	tornDown
)

// on is the state after e.
func (l lifecycle) on(e event) lifecycle {
	switch {
	case e == tornDown:
		return ended
	case e == connected && l == opening:
		return open
	case e == closeQueued && l <= open:
		return closing
	case e == kickedOut && l <= closing:
		return kicked
	case e == closeWritten && (l == closing || l == kicked):
		return closed
	}
	return l
}

// accepts tells whether frames may still be queued: not once a close is
// on its way.
func (l lifecycle) accepts() bool { return l <= open }

func (l lifecycle) String() string {
	switch l {
	case opening:
		return "opening"
	case open:
		return "open"
	case closing:
		return "closing"
	case kicked:
		return "kicked"
	case closed:
		return "closed"
	case ended:
		return "ended"
	}
	return "unknown"
}
