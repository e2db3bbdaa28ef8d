package conversation

import (
	"cmp"
	"slices"

	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
)

// Receipts is the aggregate of both participants' delivered and read markers
// in one conversation. Markers only move forward, so a repeated or late mark
// records nothing, and reading implies delivery.
type Receipts struct {
	id        ID
	delivered map[user.ID]uint64
	read      map[user.ID]uint64
	stream
}

// NewReceipts returns the markers of conversation id before any event.
func NewReceipts(id ID) *Receipts {
	return &Receipts{id: id, delivered: map[user.ID]uint64{}, read: map[user.ID]uint64{}}
}

// DeliveredUpTo is u's delivered marker.
func (r *Receipts) DeliveredUpTo(u user.ID) uint64 { return r.delivered[u] }

// ReadUpTo is u's read marker.
func (r *Receipts) ReadUpTo(u user.ID) uint64 { return r.read[u] }

// MarkDelivered moves u's delivered marker to upTo in conv.
func (r *Receipts) MarkDelivered(conv *Conversation, u user.ID, upTo uint64) error {
	if err := r.check(conv, u, upTo); err != nil {
		return err
	}
	if upTo > r.delivered[u] {
		r.record(DeliveredUpTo{Conversation: r.id, User: u, Seq: upTo})
	}
	return nil
}

// SeqRange is the seqs From through To of one conversation.
type SeqRange struct{ From, To uint64 }

// MarkWritten moves u's delivered marker over the messages that reached one
// of u's connections, given as ranges of seqs in any order. A range counts
// only where it continues the marker: a marker says every message up to it
// was delivered, so messages that never reached u (a session that opened
// at seq 10 never had 1-9) keep it back until they too are written.
func (r *Receipts) MarkWritten(conv *Conversation, u user.ID, written []SeqRange) error {
	ranges := slices.SortedFunc(slices.Values(written), func(a, b SeqRange) int { return cmp.Compare(a.From, b.From) })
	upTo := r.delivered[u]
	for _, w := range ranges {
		if w.From > upTo+1 {
			break
		}
		upTo = max(upTo, w.To)
	}
	return r.MarkDelivered(conv, u, upTo)
}

// MarkRead moves u's read marker to upTo in conv, and the delivered marker
// with it when it lags.
func (r *Receipts) MarkRead(conv *Conversation, u user.ID, upTo uint64) error {
	if err := r.check(conv, u, upTo); err != nil {
		return err
	}
	if upTo > r.delivered[u] {
		r.record(DeliveredUpTo{Conversation: r.id, User: u, Seq: upTo})
	}
	if upTo > r.read[u] {
		r.record(ReadUpTo{Conversation: r.id, User: u, Seq: upTo})
	}
	return nil
}

// MarkMessage moves m, a message of this conversation, through its own
// transitions as far as its recipient's markers reach, and reports whether
// its status moved. A message of another pair is refused.
func (r *Receipts) MarkMessage(m *message.Message) (bool, error) {
	if IDFor(m.From, m.To) != r.id {
		return false, ErrNotParticipant
	}
	switch {
	case r.read[m.To] >= m.Seq:
		return m.MarkRead(m.To)
	case r.delivered[m.To] >= m.Seq:
		return m.MarkDelivered(m.To)
	}
	return false, nil
}

// GroupStatus is the status of m, a message of a group, among the group's
// current members: read once every member but its author has read it,
// delivered once every one of them has it, else sent. A group's message
// has no one recipient to move it (message.Message.MarkRead), so the rule
// is the group's; a member who joins later and lacks it moves it back to
// sent until they have it, as the rule says of every other member.
func (r *Receipts) GroupStatus(m *message.Message, members []user.ID) message.Status {
	status := message.StatusRead
	for _, u := range members {
		switch {
		case u == m.From || r.read[u] >= m.Seq:
		case r.delivered[u] >= m.Seq:
			status = message.StatusDelivered
		default:
			return message.StatusSent
		}
	}
	return status
}

func (r *Receipts) check(conv *Conversation, u user.ID, upTo uint64) error {
	if err := conv.CanRead(u); err != nil {
		return err
	}
	if upTo > conv.LastSeq() {
		return ErrBeyondLastMessage
	}
	return nil
}

func (r *Receipts) record(e Event) { r.stream.record(e, r.apply) }

// Replay applies one stored commit's events, as loaded from the store.
func (r *Receipts) Replay(events []Event) { r.replay(events, r.apply) }

// Clone returns an independent copy for trying a command on.
func (r *Receipts) Clone() *Receipts {
	cp := &Receipts{id: r.id, stream: stream{version: r.version}, delivered: make(map[user.ID]uint64, 2), read: make(map[user.ID]uint64, 2)}
	for k, v := range r.delivered {
		cp.delivered[k] = v
	}
	for k, v := range r.read {
		cp.read[k] = v
	}
	return cp
}

func (r *Receipts) apply(e Event) {
	switch e := e.(type) {
	case DeliveredUpTo:
		if e.Seq > r.delivered[e.User] {
			r.delivered[e.User] = e.Seq
		}
	case ReadUpTo:
		if e.Seq > r.read[e.User] {
			r.read[e.User] = e.Seq
		}
	}
}
