package ports

import (
	"time"

	"github.com/evchat/chatd/domain/user"
)

// MessageView is a message as clients see it, in pushes and in pages.
type MessageView struct {
	MessageID    string
	Conversation string
	Seq          uint64
	From         user.ID
	To           user.ID
	Body         string
	SentAt       time.Time
	// Status is set on history pages only: sent, delivered or read.
	Status string
	// EditedAt is when the body was last replaced, zero if never; a
	// recalled message has RecalledAt set and no Body.
	EditedAt   time.Time
	RecalledAt time.Time
	// Rev is set on the updates of a sync only: the message's latest change.
	Rev uint64
}

// UpdateView is one edit or recall of a message as clients are told of it:
// an edit carries the new Body and EditedAt, a recall RecalledAt alone.
type UpdateView struct {
	Conversation string
	Seq          uint64
	Rev          uint64
	Body         string
	EditedAt     time.Time
	RecalledAt   time.Time
}

// Receipt says a participant's marker moved; a zero field did not move.
type Receipt struct {
	Conversation  string
	User          user.ID
	DeliveredUpTo uint64
	ReadUpTo      uint64
}

// Session is one client connection on this node, as the inbound transport
// holds it. Pushes never block: a session whose queue is full reports false
// and the transport disconnects it, so a slow client never holds up others.
// A pushed message is only queued; it counts as delivered once the transport
// has written it to the connection and says so (application.Delivery.Written).
type Session interface {
	ID() string
	User() user.ID
	PushMessage(m MessageView) bool
	PushReceipt(r Receipt) bool
	PushUpdate(u UpdateView) bool
	PushPresence(p PresenceView) bool
	PushTyping(t TypingView) bool
	PushMember(m MemberChange) bool
}

// The changes a MemberChange tells of, as PROTOCOL names them.
const (
	MemberJoined = "added"
	MemberLeft   = "removed"
)

// MemberChange says User was added to or removed from a group By someone
// (themself, when they left) At a time.
type MemberChange struct {
	Conversation string
	User         user.ID
	Change       string // MemberJoined or MemberLeft
	By           user.ID
	At           time.Time
}

// PresenceView is a user's presence as a client sees it; LastSeen is zero
// when the user is online or the time is not known.
type PresenceView struct {
	User     user.ID
	Online   bool
	LastSeen time.Time
}

// TypingView says User is typing in Conversation.
type TypingView struct {
	Conversation string
	User         user.ID
}
