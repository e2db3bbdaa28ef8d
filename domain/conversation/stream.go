package conversation

// stream is what each aggregate of this package keeps of its event stream,
// embedded so both count commits the same way: how many commits it has
// applied, and the events recorded since the last one.
type stream struct {
	version     uint64
	uncommitted []Event
}

// Version is the number of commits the aggregate has applied.
func (s *stream) Version() uint64 { return s.version }

// Uncommitted returns the events recorded since the last commit.
func (s *stream) Uncommitted() []Event { return s.uncommitted }

// Committed marks the recorded events as stored.
func (s *stream) Committed() {
	s.uncommitted = nil
	s.version++
}

// recorded keeps an applied event for the next commit.
func (s *stream) recorded(e Event) { s.uncommitted = append(s.uncommitted, e) }

// replayed counts one stored commit whose events were applied.
func (s *stream) replayed() { s.version++ }
