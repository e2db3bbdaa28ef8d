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

// record applies a new event and keeps it for the next commit.
func (s *stream) record(e Event, apply func(Event)) {
	apply(e)
	s.uncommitted = append(s.uncommitted, e)
}

// replay applies one stored commit's events and counts the commit.
func (s *stream) replay(events []Event, apply func(Event)) {
	for _, e := range events {
		apply(e)
	}
	s.version++
}
