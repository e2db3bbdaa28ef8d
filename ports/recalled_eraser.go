package ports

import (
	"context"

	"github.com/evchat/chatd/domain/conversation"
)

// RecalledEraser removes from the event store the bodies of recalled
// messages: the body a MessagePosted carried and every earlier edit's. A
// recall hides the body from every API at once; the store keeps it until
// an operator runs this (`chatd erase-recalled`), which answers a privacy
// request for what was recalled. The events stay, bodiless, so replay
// rebuilds the same views: a recalled message shows no body either way.
type RecalledEraser interface {
	// EraseRecalled erases what is left of recalled bodies and returns how
	// many commits it rewrote; run again, it finds nothing left and
	// returns 0.
	EraseRecalled(ctx context.Context) (int, error)
}

// RecalledSeqs returns the seqs that a conversation's changes-stream
// commits recall.
func RecalledSeqs(changes []Commit) map[uint64]bool {
	recalled := map[uint64]bool{}
	for _, c := range changes {
		for _, ev := range c.Events {
			if r, ok := ev.(conversation.MessageRecalled); ok {
				recalled[r.Seq] = true
			}
		}
	}
	return recalled
}

// WithoutRecalledBodies returns c's events with the body of every post and
// edit of a recalled seq emptied, and whether any was not empty yet; it
// never changes c's own events, which a store may share with readers.
func WithoutRecalledBodies(c Commit, recalled map[uint64]bool) ([]conversation.Event, bool) {
	events := make([]conversation.Event, len(c.Events))
	erased := false
	for i, ev := range c.Events {
		switch e := ev.(type) {
		case conversation.MessagePosted:
			if recalled[e.Seq] && e.Body != "" {
				e.Body, erased = "", true
			}
			ev = e
		case conversation.MessageEdited:
			if recalled[e.Seq] && e.Body != "" {
				e.Body, erased = "", true
			}
			ev = e
		}
		events[i] = ev
	}
	return events, erased
}
