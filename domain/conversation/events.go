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
	To           user.ID      `json:"to"`
	Body         message.Body `json:"body"`
	SentAt       time.Time    `json:"sentAt"`
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

// EventType implements Event.
func (ConversationStarted) EventType() string { return "ConversationStarted" }

// EventType implements Event.
func (MessagePosted) EventType() string { return "MessagePosted" }

// EventType implements Event.
func (DeliveredUpTo) EventType() string { return "DeliveredUpTo" }

// EventType implements Event.
func (ReadUpTo) EventType() string { return "ReadUpTo" }

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
