// Package message holds one message's value objects (its ids and body) and the
// Message aggregate, the life of one message from posted through delivered to
// read. The aggregate owns a message's status rules: only its recipient moves
// it, reading implies delivery, it never goes back, and every transition is
// safe to repeat. Markers arrive as "up to seq" positions of a conversation
// (conversation.Receipts), which move each message they reach through these
// transitions to give the per-message status a history page shows.
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

// Message is one posted message and how far it has come.
type Message struct {
	ID     ID
	Seq    uint64
	From   user.ID
	To     user.ID
	Body   Body
	SentAt time.Time
	status Status
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
