// Package conversation holds the Conversation aggregate of a direct
// conversation between two users and its Receipts aggregate.
//
// The design card puts membership, the gapless seq and both participants'
// markers into one event stream. We split the markers into a second stream
// (ReceiptsStream) on purpose: a marker moves on almost every delivery, and in
// one stream it would race every concurrent send for the next version. Split,
// the message stream's version equals the message seq exactly (the
// ConversationStarted event rides in the first message's commit), so filling a
// delivery gap, a sync and a history page are plain range reads of the store.
package conversation

import (
	"crypto/sha256"
	"encoding/base64"
	"time"

	"github.com/evchat/chatd/domain"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
)

// ID is a conversation's opaque, URL-safe id, derived from its sorted pair of
// participants so that both sides and every node name it alike.
type ID string

var (
	// ErrInvalidID rejects a string that cannot be a conversation id.
	ErrInvalidID = domain.Errorf(domain.Invalid, "conversation id is malformed")
	// ErrSelf rejects a conversation of a user with themselves.
	ErrSelf = domain.Errorf(domain.Invalid, "cannot send a message to oneself")
	// ErrNotParticipant rejects a post whose sender and recipient are not
	// the conversation's pair.
	ErrNotParticipant = domain.Errorf(domain.Forbidden, "not a participant of this conversation")
	// ErrNotFound answers both a conversation with no message yet and one
	// the caller is outside of, alike: its id is a public function of the
	// pair, so any difference would tell anyone who talks to whom.
	ErrNotFound = domain.Errorf(domain.NotFound, "no such conversation")
	// ErrBeyondLastMessage rejects a marker past the conversation's last seq.
	ErrBeyondLastMessage = domain.Errorf(domain.Invalid, "upTo is beyond the last message")
)

const idPrefix = "c_"

// IDFor derives the id of the conversation between a and b, in either order.
func IDFor(a, b user.ID) ID {
	lo, hi := Pair(a, b)
	sum := sha256.Sum256([]byte("conversation\x00" + string(lo) + "\x00" + string(hi)))
	return ID(idPrefix + base64.RawURLEncoding.EncodeToString(sum[:16]))
}

// Pair returns a and b sorted, the canonical order of participants.
func Pair(a, b user.ID) (user.ID, user.ID) {
	if b < a {
		return b, a
	}
	return a, b
}

// ParseID validates s as a conversation id.
func ParseID(s string) (ID, error) {
	if len(s) != len(idPrefix)+22 || s[:len(idPrefix)] != idPrefix {
		return "", ErrInvalidID
	}
	if _, err := base64.RawURLEncoding.DecodeString(s[len(idPrefix):]); err != nil {
		return "", ErrInvalidID
	}
	return ID(s), nil
}

// MessagesStream names the event stream of the conversation's messages.
func MessagesStream(id ID) string { return string(id) }

// ReceiptsStream names the event stream of the conversation's markers. The
// suffix cannot occur in an id, so the two streams never collide.
func ReceiptsStream(id ID) string { return string(id) + ".receipts" }

// StreamConversation returns the conversation a stream belongs to and whether
// it is the receipts stream.
func StreamConversation(stream string) (ID, bool) {
	const suffix = ".receipts"
	if len(stream) > len(suffix) && stream[len(stream)-len(suffix):] == suffix {
		return ID(stream[:len(stream)-len(suffix)]), true
	}
	return ID(stream), false
}

// Conversation is the aggregate of one pair's messages: membership and the
// gapless seq. Its version is the number of commits applied, which equals the
// last seq because every commit of this stream posts exactly one message.
type Conversation struct {
	id           ID
	participants [2]user.ID
	started      bool
	lastSeq      uint64
	stream
}

// New returns the empty aggregate of conversation id, before any event.
func New(id ID) *Conversation { return &Conversation{id: id} }

// ID returns the conversation's id.
func (c *Conversation) ID() ID { return c.id }

// Started reports whether any message has been posted.
func (c *Conversation) Started() bool { return c.started }

// Participants returns the pair in canonical order.
func (c *Conversation) Participants() [2]user.ID { return c.participants }

// LastSeq is the seq of the latest message, 0 before the first.
func (c *Conversation) LastSeq() uint64 { return c.lastSeq }

// IsParticipant reports whether u is one of the pair.
func (c *Conversation) IsParticipant(u user.ID) bool {
	return c.started && (c.participants[0] == u || c.participants[1] == u)
}

// Peer returns the other participant of u.
func (c *Conversation) Peer(u user.ID) user.ID {
	if c.participants[0] == u {
		return c.participants[1]
	}
	return c.participants[0]
}

// CanRead checks that reader may see the conversation. To anyone outside
// the pair it does not exist, exactly as one never started (ErrNotFound).
func (c *Conversation) CanRead(reader user.ID) error {
	if !c.IsParticipant(reader) {
		return ErrNotFound
	}
	return nil
}

// Post records a message from one participant to the other with the next seq.
// The first post also records ConversationStarted, in the same commit.
func (c *Conversation) Post(id message.ID, from, to user.ID, body message.Body, sentAt time.Time) (MessagePosted, error) {
	if from == to {
		return MessagePosted{}, ErrSelf
	}
	if IDFor(from, to) != c.id {
		return MessagePosted{}, ErrNotParticipant
	}
	if !c.started {
		lo, hi := Pair(from, to)
		c.record(ConversationStarted{Conversation: c.id, Participants: [2]user.ID{lo, hi}})
	}
	posted := MessagePosted{
		Conversation: c.id, Seq: c.lastSeq + 1, MessageID: id,
		From: from, To: to, Body: body, SentAt: sentAt.UTC().Truncate(time.Millisecond),
	}
	c.record(posted)
	return posted, nil
}

func (c *Conversation) record(e Event) { c.stream.record(e, c.apply) }

// Replay applies one stored commit's events, as loaded from the store.
func (c *Conversation) Replay(events []Event) { c.replay(events, c.apply) }

// Clone returns an independent copy, so a cached aggregate can be tried on
// without being spoiled by a command that fails to commit.
func (c *Conversation) Clone() *Conversation {
	cp := *c
	cp.uncommitted = nil
	return &cp
}

func (c *Conversation) apply(e Event) {
	switch e := e.(type) {
	case ConversationStarted:
		c.started = true
		c.participants = e.Participants
	case MessagePosted:
		c.lastSeq = e.Seq
	}
}
