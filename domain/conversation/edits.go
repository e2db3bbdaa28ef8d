package conversation

import (
	"time"

	"github.com/evchat/chatd/domain"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
)

// ErrUnknownMessage answers an edit or recall of a seq the conversation has
// no message at.
var ErrUnknownMessage = domain.Errorf(domain.NotFound, "no such message")

// Rev is the number of edits and recalls recorded, and the rev of the
// latest: each one is numbered one more than the one before.
func (c *Conversation) Rev() uint64 { return c.rev }

// Message returns the message posted as p in its current state, its edits
// and recall applied.
func (c *Conversation) Message(p MessagePosted) *message.Message {
	m := message.Posted(p.MessageID, p.Seq, p.From, p.To, p.Body, p.SentAt)
	ch, ok := c.changed[p.Seq]
	if !ok {
		return m
	}
	if !ch.editedAt.IsZero() {
		m.ApplyEdit(ch.body, ch.editedAt)
	}
	if !ch.recalledAt.IsZero() {
		m.ApplyRecall(ch.recalledAt)
	}
	return m
}

// Edit records by's edit of the message posted as p (nil when the store has
// no message at the seq asked) with the next rev. A non-member finds no
// conversation; the message's own rules (message.Message.Edit) decide the
// rest, with the edit window the caller configures.
func (c *Conversation) Edit(p *MessagePosted, by user.ID, body message.Body, at time.Time, window time.Duration) (MessageEdited, error) {
	m, err := c.changeable(p, by)
	if err != nil {
		return MessageEdited{}, err
	}
	at = stamp(at)
	if err := m.Edit(by, body, at, window); err != nil {
		return MessageEdited{}, err
	}
	edited := MessageEdited{Conversation: c.id, Seq: m.Seq, Rev: c.rev + 1, Body: body, EditedAt: at}
	c.recordChange(edited)
	return edited, nil
}

// Recall records by's recall of the message posted as p with the next rev,
// under the same rules as Edit.
func (c *Conversation) Recall(p *MessagePosted, by user.ID, at time.Time, window time.Duration) (MessageRecalled, error) {
	m, err := c.changeable(p, by)
	if err != nil {
		return MessageRecalled{}, err
	}
	at = stamp(at)
	if err := m.Recall(by, at, window); err != nil {
		return MessageRecalled{}, err
	}
	recalled := MessageRecalled{Conversation: c.id, Seq: m.Seq, Rev: c.rev + 1, RecalledAt: at}
	c.recordChange(recalled)
	return recalled, nil
}

// changeable returns the message by asks to change, in its current state,
// once by may see the conversation and the message is one of its own.
func (c *Conversation) changeable(p *MessagePosted, by user.ID) (*message.Message, error) {
	if err := c.CanRead(by); err != nil {
		return nil, err
	}
	if p == nil || p.Conversation != c.id || p.Seq == 0 || p.Seq > c.lastSeq {
		return nil, ErrUnknownMessage
	}
	return c.Message(*p), nil
}
