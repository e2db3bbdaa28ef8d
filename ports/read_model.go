package ports

import (
	"context"
	"errors"
	"time"

	"github.com/evchat/chatd/domain/user"
)

// ErrRevisionConflict: the view changed since it was loaded; reload and retry.
var ErrRevisionConflict = errors.New("read model revision conflict")

// ConversationView is the read side's record of one conversation, built from
// both of its streams by the projector in the application layer.
type ConversationView struct {
	Conversation string
	Participants [2]user.ID
	// MessagesVersion and ReceiptsVersion are the last commit of each stream
	// applied, which makes applying idempotent and shows where a gap is.
	MessagesVersion uint64
	ReceiptsVersion uint64
	LastSeq         uint64
	LastMessage     *MessageRecord
	LastActivity    time.Time
	Members         [2]MemberView
}

// Revision counts every commit applied, for optimistic saves.
func (v ConversationView) Revision() uint64 { return v.MessagesVersion + v.ReceiptsVersion }

// MemberView is one participant's markers and unread messages.
type MemberView struct {
	User          user.ID
	DeliveredUpTo uint64
	ReadUpTo      uint64
	// Unread holds the seqs of messages sent to this member past ReadUpTo.
	Unread []uint64
}

// MessageRecord is a posted message as the read side shows it.
type MessageRecord struct {
	MessageID string
	Seq       uint64
	From      user.ID
	To        user.ID
	Body      string
	SentAt    time.Time
}

// ReadModel stores conversation views.
type ReadModel interface {
	// Get returns the view of a conversation, and false when there is none yet.
	Get(ctx context.Context, conversation string) (ConversationView, bool, error)
	// Save stores v if the stored view is still at revision expected (0: none
	// stored yet), else ErrRevisionConflict.
	Save(ctx context.Context, v ConversationView, expected uint64) error
	// ListFor returns the user's conversations, most recent activity first.
	ListFor(ctx context.Context, u user.ID, limit int) ([]ConversationView, error)
	// Reset removes every view, before a replay rebuilds them.
	Reset(ctx context.Context) error
}
