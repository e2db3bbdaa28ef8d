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

// Message is a message in its current state; Status is set on history
// pages only, Rev on a sync's updates only. A body is never empty, so a
// recalled message, which has none, omits it.
type Message struct {
	MessageID    string  `json:"messageId"`
	Conversation string  `json:"conversation"`
	Seq          uint64  `json:"seq"`
	From         user.ID `json:"from"`
	To           user.ID `json:"to,omitempty"` // none in a group's message
	Body         string  `json:"body,omitempty"`
	SentAt       string  `json:"sentAt"`
	Status       string  `json:"status,omitempty"`
	EditedAt     string  `json:"editedAt,omitempty"`
	Recalled     bool    `json:"recalled,omitempty"`
	RecalledAt   string  `json:"recalledAt,omitempty"`
	Rev          uint64  `json:"rev,omitempty"`
}

// MessageOf shapes a message view.
func MessageOf(m ports.MessageView) Message {
	out := Message{MessageID: m.MessageID, Conversation: m.Conversation, Seq: m.Seq, From: m.From, To: m.To,
		Body: m.Body, SentAt: FormatTime(m.SentAt), Status: m.Status, Rev: m.Rev}
	if !m.RecalledAt.IsZero() {
		out.Body, out.EditedAt = "", ""
		out.Recalled, out.RecalledAt = true, FormatTime(m.RecalledAt)
	} else if !m.EditedAt.IsZero() {
		out.EditedAt = FormatTime(m.EditedAt)
	}
	return out
}

// Update tells of an edit (Body and EditedAt) or a recall (Recalled and
// RecalledAt) of message Seq.
type Update struct {
	Conversation string `json:"conversation"`
	Seq          uint64 `json:"seq"`
	Rev          uint64 `json:"rev"`
	Body         string `json:"body,omitempty"`
	EditedAt     string `json:"editedAt,omitempty"`
	Recalled     bool   `json:"recalled,omitempty"`
	RecalledAt   string `json:"recalledAt,omitempty"`
}

// UpdateOf shapes an update view.
func UpdateOf(u ports.UpdateView) Update {
	out := Update{Conversation: u.Conversation, Seq: u.Seq, Rev: u.Rev}
	if !u.RecalledAt.IsZero() {
		out.Recalled, out.RecalledAt = true, FormatTime(u.RecalledAt)
		return out
	}
	out.Body, out.EditedAt = u.Body, FormatTime(u.EditedAt)
	return out
}

// Changed confirms an edit or a recall.
type Changed struct {
	ID           string `json:"id"`
	Conversation string `json:"conversation"`
	Seq          uint64 `json:"seq"`
	Rev          uint64 `json:"rev"`
}

// ChangedOf shapes the application's answer to an edit or a recall.
func ChangedOf(c application.Changed) Changed {
	return Changed{ID: c.ClientID, Conversation: string(c.Conversation), Seq: c.Seq, Rev: c.Rev}
}

// MessagesOf shapes a page's messages, an empty array rather than null.
func MessagesOf(views []ports.MessageView) []Message {
	out := make([]Message, len(views))
	for i, m := range views {
		out[i] = MessageOf(m)
	}
	return out
}
