// Package wire holds the JSON shapes and the error codes that the WebSocket
// frames and the REST API share, named as PROTOCOL.md names them, so that a
// message, an ack, a presence or an error reads the same whichever way a
// client asked for it, and an error of the application maps to one code.
package wire

import (
	"time"

	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// timeFormat is RFC 3339 with milliseconds, always in UTC, which is what
// the stores keep of a time.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// FormatTime writes t as every JSON answer does.
func FormatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

// Ack confirms a stored message.
type Ack struct {
	ID           string `json:"id"`
	MessageID    string `json:"messageId"`
	Conversation string `json:"conversation"`
	Seq          uint64 `json:"seq"`
	SentAt       string `json:"sentAt"`
}

// AckOf shapes the application's ack.
func AckOf(a application.Ack) Ack {
	return Ack{ID: a.ClientID, MessageID: a.MessageID, Conversation: string(a.Conversation), Seq: a.Seq, SentAt: FormatTime(a.SentAt)}
}

// Message is a message; Status is set on history pages only.
type Message struct {
	MessageID    string  `json:"messageId"`
	Conversation string  `json:"conversation"`
	Seq          uint64  `json:"seq"`
	From         user.ID `json:"from"`
	To           user.ID `json:"to"`
	Body         string  `json:"body"`
	SentAt       string  `json:"sentAt"`
	Status       string  `json:"status,omitempty"`
}

// MessageOf shapes a message view.
func MessageOf(m ports.MessageView) Message {
	return Message{MessageID: m.MessageID, Conversation: m.Conversation, Seq: m.Seq, From: m.From, To: m.To,
		Body: m.Body, SentAt: FormatTime(m.SentAt), Status: m.Status}
}

// MessagesOf shapes a page's messages, an empty array rather than null.
func MessagesOf(views []ports.MessageView) []Message {
	out := make([]Message, len(views))
	for i, m := range views {
		out[i] = MessageOf(m)
	}
	return out
}
