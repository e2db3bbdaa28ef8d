// Package message holds one message's value objects (its ids and body) and the
// Message aggregate, the life of one message from posted through delivered to
// read, and its edits and recall. The aggregate owns a message's status rules:
// only its recipient moves it, reading implies delivery, it never goes back,
// and every transition is safe to repeat. Markers arrive as "up to seq"
// positions of a conversation (conversation.Receipts), which move each message
// they reach through these transitions to give the per-message status a
// history page shows.
//
// It also owns who may change a message and when: only its author, within an
// edit window counted from its sentAt, and never after a recall. The
// conversation records the accepted change as an event with its rev; replaying
// that event applies it again through ApplyEdit or ApplyRecall, without the
// rules, which held when it was recorded but not necessarily at replay time.
package message

import (
	"crypto/sha256"
	"encoding/base64"
	"time"
	"unicode/utf8"

	"github.com/evchat/chatd/domain"
	"github.com/evchat/chatd/domain/user"
)

// MaxBodyChars bounds a body in characters (not bytes), as the protocol counts them.
const MaxBodyChars = 4096

// ID identifies a message across the cluster. It is derived from the sender and
// the client's idempotency key, so a resend names the same message and the
// store's unique index on it turns a duplicate into a lookup.
type ID string

// ClientID is the client's idempotency key for one send.
type ClientID string

// Body is a message's text.
type Body string

// Status is how far a message has come towards its recipient.
type Status string

// The statuses a message moves through, never backwards.
const (
	StatusSent      Status = "sent"
	StatusDelivered Status = "delivered"
	StatusRead      Status = "read"
)

var (
	// ErrInvalidClientID rejects idempotency keys outside the protocol's alphabet.
	ErrInvalidClientID = domain.Errorf(domain.Invalid, "id must be 1-64 characters of [A-Za-z0-9_-]")
	// ErrEmptyBody rejects a body with no characters.
	ErrEmptyBody = domain.Errorf(domain.Invalid, "body must not be empty")
	// ErrBodyTooLong rejects a body over MaxBodyChars characters.
	ErrBodyTooLong = domain.Errorf(domain.Invalid, "body must be at most 4096 characters")
	// ErrBodyNotUTF8 rejects a body that is not valid UTF-8.
	ErrBodyNotUTF8 = domain.Errorf(domain.Invalid, "body must be valid UTF-8")
	// ErrNotRecipient rejects a delivered or read mark by anyone but the recipient.
	ErrNotRecipient = domain.Errorf(domain.Forbidden, "only the recipient can mark a message delivered or read")
	// ErrNotAuthor rejects an edit or recall by anyone but the message's author.
	ErrNotAuthor = domain.Errorf(domain.Forbidden, "only its author can edit or recall a message")
	// ErrEditWindowClosed rejects an edit or recall after the edit window.
	ErrEditWindowClosed = domain.Errorf(domain.Forbidden, "the message can no longer be edited or recalled")
	// ErrRecalled rejects any change to a recalled message, whoever asks.
	ErrRecalled = domain.Errorf(domain.Forbidden, "the message was recalled")
)

// ParseClientID validates s as an idempotency key.
func ParseClientID(s string) (ClientID, error) {
	if len(s) == 0 || len(s) > 64 {
		return "", ErrInvalidClientID
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return "", ErrInvalidClientID
		}
	}
	return ClientID(s), nil
}

// ParseBody validates s as a message body.
func ParseBody(s string) (Body, error) {
	if !utf8.ValidString(s) {
		return "", ErrBodyNotUTF8
	}
	n := utf8.RuneCountInString(s)
	if n == 0 {
		return "", ErrEmptyBody
	}
	if n > MaxBodyChars {
		return "", ErrBodyTooLong
	}
	return Body(s), nil
}

// IDFor derives the message id of sender's send with the given idempotency key.
func IDFor(sender user.ID, key ClientID) ID {
	sum := sha256.Sum256([]byte("message\x00" + string(sender) + "\x00" + string(key)))
	return ID("m_" + base64.RawURLEncoding.EncodeToString(sum[:16]))
}

// Message is one posted message, how far it has come, and its current
// content. To is empty for a message to a group's members.
type Message struct {
	ID     ID
	Seq    uint64
	From   user.ID
	To     user.ID
	Body   Body
	SentAt time.Time
	status Status
	// editedAt and recalledAt are zero until the message is edited or
	// recalled.
	editedAt   time.Time
	recalledAt time.Time
}

// Posted builds the aggregate of a message just posted.
func Posted(id ID, seq uint64, from, to user.ID, body Body, sentAt time.Time) *Message {
	return &Message{ID: id, Seq: seq, From: from, To: to, Body: body, SentAt: sentAt, status: StatusSent}
}

// Status reports how far the message has come.
func (m *Message) Status() Status { return m.status }

// MarkDelivered records that the recipient's device has the message. It
// reports whether the status moved, so a repeat is harmless.
func (m *Message) MarkDelivered(by user.ID) (bool, error) {
	if by != m.To {
		return false, ErrNotRecipient
	}
	if m.status != StatusSent {
		return false, nil
	}
	m.status = StatusDelivered
	return true, nil
}

// MarkRead records that the recipient has read the message; reading implies
// delivery, so a read message is never shown as merely sent.
func (m *Message) MarkRead(by user.ID) (bool, error) {
	if by != m.To {
		return false, ErrNotRecipient
	}
	if m.status == StatusRead {
		return false, nil
	}
	m.status = StatusRead
	return true, nil
}

// Edit replaces the body, for its author only, at most window after SentAt
// (the edge itself included), and never once the message is recalled.
func (m *Message) Edit(by user.ID, body Body, at time.Time, window time.Duration) error {
	if err := m.checkChange(by, at, window); err != nil {
		return err
	}
	m.ApplyEdit(body, at)
	return nil
}

// Recall withdraws the message under the same rules as Edit. The body is
// dropped, so nothing built from the aggregate can return it again.
func (m *Message) Recall(by user.ID, at time.Time, window time.Duration) error {
	if err := m.checkChange(by, at, window); err != nil {
		return err
	}
	m.ApplyRecall(at)
	return nil
}

// The recall is checked first: a recalled message is refused alike to its
// author and to anyone else.
func (m *Message) checkChange(by user.ID, at time.Time, window time.Duration) error {
	switch {
	case m.Recalled():
		return ErrRecalled
	case by != m.From:
		return ErrNotAuthor
	case at.After(m.SentAt.Add(window)):
		return ErrEditWindowClosed
	}
	return nil
}

// ApplyEdit applies an edit already recorded, as replay does; the rules
// were checked when it was accepted.
func (m *Message) ApplyEdit(body Body, at time.Time) {
	m.Body = body
	m.editedAt = at
}

// ApplyRecall applies a recall already recorded, as replay does.
func (m *Message) ApplyRecall(at time.Time) {
	m.Body = ""
	m.recalledAt = at
}

// EditedAt is when the body was last replaced, zero if never.
func (m *Message) EditedAt() time.Time { return m.editedAt }

// Recalled reports whether the author withdrew the message.
func (m *Message) Recalled() bool { return !m.recalledAt.IsZero() }

// RecalledAt is when the message was recalled, zero if it was not.
func (m *Message) RecalledAt() time.Time { return m.recalledAt }
