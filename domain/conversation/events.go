package conversation

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
)

// Event is anything a conversation's streams record. EventType names it in
// the store and on the bus, so the name is part of the stored format.
type Event interface {
	EventType() string
}

// ConversationStarted opens a conversation between a pair of users.
type ConversationStarted struct {
	Conversation ID         `json:"conversation"`
	Participants [2]user.ID `json:"participants"`
}

// MessagePosted is one message, with its place in the conversation.
type MessagePosted struct {
	Conversation ID           `json:"conversation"`
	Seq          uint64       `json:"seq"`
	MessageID    message.ID   `json:"messageId"`
	From         user.ID      `json:"from"`
	To           user.ID      `json:"to,omitempty"` // empty in a group: every other member receives it
	Body         message.Body `json:"body"`
	SentAt       time.Time    `json:"sentAt"`
	// Membership is a group message's changes stream version when it was
	// posted: its members then, or later, receive it, never those of an
	// older version, which a node that has not seen the last removal yet
	// would otherwise push it to.
	Membership uint64 `json:"membership,omitempty"`
}

// DeliveredUpTo moves a participant's delivered marker.
type DeliveredUpTo struct {
	Conversation ID      `json:"conversation"`
	User         user.ID `json:"user"`
	Seq          uint64  `json:"seq"`
}

// ReadUpTo moves a participant's read marker.
type ReadUpTo struct {
	Conversation ID      `json:"conversation"`
	User         user.ID `json:"user"`
	Seq          uint64  `json:"seq"`
}

// GroupCreated opens a group with its first members, the owner first. It
// is the first event of the group's changes stream.
type GroupCreated struct {
	Conversation ID        `json:"conversation"`
	Title        Title     `json:"title"`
	Owner        user.ID   `json:"owner"`
	Members      []user.ID `json:"members"`
	At           time.Time `json:"at"`
}

// GroupRenamed gives a group a new title.
type GroupRenamed struct {
	Conversation ID        `json:"conversation"`
	Title        Title     `json:"title"`
	By           user.ID   `json:"by"`
	At           time.Time `json:"at"`
}

// MemberAdded makes User a member, the latest to join.
type MemberAdded struct {
	Conversation ID        `json:"conversation"`
	User         user.ID   `json:"user"`
	By           user.ID   `json:"by"`
	At           time.Time `json:"at"`
}

// MemberRemoved ends User's membership; By equal to User means they left.
// Removing the last member ends the group.
type MemberRemoved struct {
	Conversation ID        `json:"conversation"`
	User         user.ID   `json:"user"`
	By           user.ID   `json:"by"`
	At           time.Time `json:"at"`
}

// OwnerChanged hands the group to Owner; it follows the removal of the
// previous owner in the same commit.
type OwnerChanged struct {
	Conversation ID        `json:"conversation"`
	Owner        user.ID   `json:"owner"`
	At           time.Time `json:"at"`
}

// MessageEdited replaces the body of message Seq; Rev is its place among
// the conversation's edits and recalls.
type MessageEdited struct {
	Conversation ID           `json:"conversation"`
	Seq          uint64       `json:"seq"`
	Rev          uint64       `json:"rev"`
	Body         message.Body `json:"body"`
	EditedAt     time.Time    `json:"editedAt"`
}

// MessageRecalled withdraws message Seq; Rev is its place among the
// conversation's edits and recalls.
type MessageRecalled struct {
	Conversation ID        `json:"conversation"`
	Seq          uint64    `json:"seq"`
	Rev          uint64    `json:"rev"`
	RecalledAt   time.Time `json:"recalledAt"`
}

// EventType implements Event.
func (ConversationStarted) EventType() string { return "ConversationStarted" }

// EventType implements Event.
func (MessagePosted) EventType() string { return "MessagePosted" }

// EventType implements Event.
func (DeliveredUpTo) EventType() string { return "DeliveredUpTo" }

// EventType implements Event.
func (ReadUpTo) EventType() string { return "ReadUpTo" }

// EventType implements Event.
func (GroupCreated) EventType() string { return "GroupCreated" }

// EventType implements Event.
func (GroupRenamed) EventType() string { return "GroupRenamed" }

// EventType implements Event.
func (MemberAdded) EventType() string { return "MemberAdded" }

// EventType implements Event.
func (MemberRemoved) EventType() string { return "MemberRemoved" }

// EventType implements Event.
func (OwnerChanged) EventType() string { return "OwnerChanged" }

// EventType implements Event.
func (MessageEdited) EventType() string { return "MessageEdited" }

// EventType implements Event.
func (MessageRecalled) EventType() string { return "MessageRecalled" }

// MarshalEvent encodes an event's payload for a store or a bus.
func MarshalEvent(e Event) ([]byte, error) { return json.Marshal(e) }

// UnmarshalEvent decodes a payload stored under the given event type.
func UnmarshalEvent(eventType string, data []byte) (Event, error) {
	switch eventType {
	case "ConversationStarted":
		return unmarshalAs[ConversationStarted](data)
	case "MessagePosted":
		return unmarshalAs[MessagePosted](data)
	case "DeliveredUpTo":
		return unmarshalAs[DeliveredUpTo](data)
	case "ReadUpTo":
		return unmarshalAs[ReadUpTo](data)
	case "GroupCreated":
		return unmarshalAs[GroupCreated](data)
	case "GroupRenamed":
		return unmarshalAs[GroupRenamed](data)
	case "MemberAdded":
		return unmarshalAs[MemberAdded](data)
	case "MemberRemoved":
		return unmarshalAs[MemberRemoved](data)
	case "OwnerChanged":
		return unmarshalAs[OwnerChanged](data)
	case "MessageEdited":
		return unmarshalAs[MessageEdited](data)
	case "MessageRecalled":
		return unmarshalAs[MessageRecalled](data)
	}
	return nil, fmt.Errorf("unknown event type %q", eventType)
}

func unmarshalAs[E Event](data []byte) (Event, error) {
	var e E
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, err
	}
	return e, nil
}
