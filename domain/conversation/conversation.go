// Package conversation holds the Conversation aggregate, of a direct
// conversation between two users or of a group, and its Receipts aggregate.
//
// The design card puts membership, the gapless seq and both participants'
// markers into one event stream. We split the markers into a second stream
// (ReceiptsStream) on purpose: a marker moves on almost every delivery, and in
// one stream it would race every concurrent send for the next version. Split,
// the message stream's version equals the message seq exactly (the
// ConversationStarted event of a direct conversation rides in the first
// message's commit), so filling a delivery gap, a sync and a history page are
// plain range reads of the store.
//
// Everything else a conversation records goes to a third stream
// (ChangesStream): a group's creation, renames and membership, and the edits
// and recalls of messages of either kind. Out of the message stream, they take
// no seq and leave version equal to seq; in one stream of their own, a removal
// and the removed member's edit cannot both commit from the same state. The
// rev of PROTOCOL v1.3 counts edits and recalls only (a session must see it
// grow by exactly one per update, and membership changes carry no rev), so it
// is not the changes stream's version: each edit and recall carries its rev,
// one more than the aggregate's, and commits at the stream's next version, so
// the store's unique (stream, version) refuses a second change made from the
// same state exactly as it refuses a second message with the same seq.
//
// One Conversation replays both its streams (Replay and ReplayChanges), each
// with its own version. A post and a concurrent removal of its sender are on
// different streams, so the post may still commit: it reads as sent just
// before the removal.
package conversation

import (
	"crypto/sha256"
	"encoding/base64"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/evchat/chatd/domain"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
)

// ID is a conversation's opaque, URL-safe id. A direct conversation's is
// derived from its sorted pair of participants so that both sides and every
// node name it alike; a group's is made by the server (NewGroupID).
type ID string

// Kind tells a direct conversation from a group; the id says which.
type Kind string

// The kinds of conversation, named as PROTOCOL names them.
const (
	Direct Kind = "direct"
	Group  Kind = "group"
)

// Kind is the kind of conversation the id names.
func (id ID) Kind() Kind {
	if strings.HasPrefix(string(id), groupPrefix) {
		return Group
	}
	return Direct
}

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

const (
	idPrefix    = "c_"
	groupPrefix = "g_"
)

// NewGroupID makes a group's id from 16 random bytes the caller draws, so
// the domain stays free of a source of randomness.
func NewGroupID(random [16]byte) ID {
	return ID(groupPrefix + base64.RawURLEncoding.EncodeToString(random[:]))
}

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

// ParseID validates s as a conversation id, of either kind.
func ParseID(s string) (ID, error) {
	if len(s) != len(idPrefix)+22 || (s[:len(idPrefix)] != idPrefix && s[:len(groupPrefix)] != groupPrefix) {
		return "", ErrInvalidID
	}
	if _, err := base64.RawURLEncoding.DecodeString(s[len(idPrefix):]); err != nil {
		return "", ErrInvalidID
	}
	return ID(s), nil
}

// MessagesStream names the event stream of the conversation's messages.
func MessagesStream(id ID) string { return string(id) }

// The suffixes cannot occur in an id, so a conversation's streams never
// collide with each other or with another conversation's.
const (
	receiptsSuffix = ".receipts"
	changesSuffix  = ".changes"
)

// ReceiptsStream names the event stream of the conversation's markers.
func ReceiptsStream(id ID) string { return string(id) + receiptsSuffix }

// ChangesStream names the event stream of the conversation's membership,
// renames, edits and recalls.
func ChangesStream(id ID) string { return string(id) + changesSuffix }

// StreamKind says which of a conversation's streams a stream is.
type StreamKind int

// A conversation's streams.
const (
	StreamMessages StreamKind = iota + 1
	StreamReceipts
	StreamChanges
)

// StreamOf returns the conversation a stream belongs to and which of its
// streams it is.
func StreamOf(stream string) (ID, StreamKind) {
	if id, ok := strings.CutSuffix(stream, receiptsSuffix); ok && id != "" {
		return ID(id), StreamReceipts
	}
	if id, ok := strings.CutSuffix(stream, changesSuffix); ok && id != "" {
		return ID(id), StreamChanges
	}
	return ID(stream), StreamMessages
}

// Conversation is the aggregate of one conversation: its kind, its members
// (a direct conversation's pair, or a group's members with their owner and
// title), the gapless seq of its messages and the rev of their edits and
// recalls. Version counts the commits of its messages stream, which equals
// the last seq because every commit of that stream posts exactly one message;
// ChangesVersion counts those of its changes stream.
type Conversation struct {
	id           ID
	participants [2]user.ID
	started      bool
	lastSeq      uint64
	stream
	group   groupState
	rev     uint64
	changed map[uint64]messageChange
	changes stream
}

// groupState is what a group's changes stream says of it so far.
type groupState struct {
	created   bool
	createdAt time.Time
	title     Title
	owner     user.ID
	members   []user.ID // in the order they joined
}

// messageChange is the latest edit and recall of one message.
type messageChange struct {
	body       message.Body
	editedAt   time.Time
	recalledAt time.Time
}

// New returns the empty aggregate of conversation id, before any event.
func New(id ID) *Conversation { return &Conversation{id: id} }

// ID returns the conversation's id.
func (c *Conversation) ID() ID { return c.id }

// Kind is the kind of conversation.
func (c *Conversation) Kind() Kind { return c.id.Kind() }

// Started reports whether any message has been posted.
func (c *Conversation) Started() bool { return c.started }

// Participants returns a direct conversation's pair in canonical order.
func (c *Conversation) Participants() [2]user.ID { return c.participants }

// Members returns who may read and post: a direct conversation's pair once
// started, a group's members in the order they joined.
func (c *Conversation) Members() []user.ID {
	if c.Kind() == Group {
		return slices.Clone(c.group.members)
	}
	if !c.started {
		return nil
	}
	return []user.ID{c.participants[0], c.participants[1]}
}

// LastSeq is the seq of the latest message, 0 before the first.
func (c *Conversation) LastSeq() uint64 { return c.lastSeq }

// IsParticipant reports whether u is one of the pair, or a member of the group.
func (c *Conversation) IsParticipant(u user.ID) bool {
	if c.Kind() == Group {
		return slices.Contains(c.group.members, u)
	}
	return c.started && (c.participants[0] == u || c.participants[1] == u)
}

// Peer returns the other participant of u in a direct conversation.
func (c *Conversation) Peer(u user.ID) user.ID {
	if c.participants[0] == u {
		return c.participants[1]
	}
	return c.participants[0]
}

// CanRead checks that reader may see the conversation. To anyone outside
// the pair or the group it does not exist, exactly as one never started
// (ErrNotFound); so does an ended group to everyone.
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

// PostAsMember records a message of from to the conversation by its id: to
// the peer of a direct conversation already started, or to every other
// member of a group. To a non-member the conversation does not exist.
func (c *Conversation) PostAsMember(id message.ID, from user.ID, body message.Body, sentAt time.Time) (MessagePosted, error) {
	if !c.IsParticipant(from) {
		return MessagePosted{}, ErrNotFound
	}
	var (
		to         user.ID
		membership uint64
	)
	if c.Kind() == Direct {
		to = c.Peer(from)
	} else {
		membership = c.ChangesVersion()
	}
	posted := MessagePosted{
		Conversation: c.id, Seq: c.lastSeq + 1, MessageID: id,
		From: from, To: to, Body: body, SentAt: stamp(sentAt), Membership: membership,
	}
	c.record(posted)
	return posted, nil
}

func (c *Conversation) record(e Event) { c.stream.record(e, c.apply) }

// recordChange records an event of the changes stream.
func (c *Conversation) recordChange(e Event) { c.changes.record(e, c.apply) }

// Replay applies one stored commit of the messages stream, as loaded from
// the store.
func (c *Conversation) Replay(events []Event) { c.replay(events, c.apply) }

// ReplayChanges applies one stored commit of the changes stream.
func (c *Conversation) ReplayChanges(events []Event) { c.changes.replay(events, c.apply) }

// ChangesVersion is the number of commits of the changes stream applied.
func (c *Conversation) ChangesVersion() uint64 { return c.changes.Version() }

// UncommittedChanges returns the changes-stream events recorded since the
// last commit of that stream.
func (c *Conversation) UncommittedChanges() []Event { return c.changes.Uncommitted() }

// ChangesCommitted marks the recorded changes-stream events as stored.
func (c *Conversation) ChangesCommitted() { c.changes.Committed() }

// Clone returns an independent copy, so a cached aggregate can be tried on
// without being spoiled by a command that fails to commit.
func (c *Conversation) Clone() *Conversation {
	cp := *c
	cp.uncommitted = nil
	cp.changes.uncommitted = nil
	cp.group.members = slices.Clone(c.group.members)
	cp.changed = maps.Clone(c.changed)
	return &cp
}

func (c *Conversation) apply(e Event) {
	switch e := e.(type) {
	case ConversationStarted:
		c.started = true
		c.participants = e.Participants
	case MessagePosted:
		c.started = true
		c.lastSeq = e.Seq
	case GroupCreated:
		c.group = groupState{created: true, createdAt: e.At, title: e.Title, owner: e.Owner, members: slices.Clone(e.Members)}
	case GroupRenamed:
		c.group.title = e.Title
	case MemberAdded:
		c.group.members = append(c.group.members, e.User)
	case MemberRemoved:
		c.group.members = slices.DeleteFunc(c.group.members, func(m user.ID) bool { return m == e.User })
		if c.group.owner == e.User {
			c.group.owner = ""
		}
	case OwnerChanged:
		c.group.owner = e.Owner
	case MessageEdited:
		c.rev = e.Rev
		ch := c.changed[e.Seq]
		ch.body, ch.editedAt = e.Body, e.EditedAt
		c.setChanged(e.Seq, ch)
	case MessageRecalled:
		c.rev = e.Rev
		ch := c.changed[e.Seq]
		ch.body, ch.recalledAt = "", e.RecalledAt
		c.setChanged(e.Seq, ch)
	}
}

func (c *Conversation) setChanged(seq uint64, ch messageChange) {
	if c.changed == nil {
		c.changed = map[uint64]messageChange{}
	}
	c.changed[seq] = ch
}
