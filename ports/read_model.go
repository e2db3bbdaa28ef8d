package ports

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
)

// ErrRevisionConflict means the view changed since it was loaded; reload and retry.
var ErrRevisionConflict = errors.New("read model revision conflict")

// ConversationView is the read side's record of one conversation, built from
// its streams by the projector in the application layer.
type ConversationView struct {
	Conversation string
	// Kind is the conversation's; empty in a view stored before groups,
	// which is always a direct conversation's.
	Kind conversation.Kind
	// Participants is a direct conversation's pair; empty for a group.
	Participants [2]user.ID
	// Title and Owner are a group's; empty for a direct conversation.
	Title string
	Owner user.ID
	// MessagesVersion, ReceiptsVersion and ChangesVersion are the last
	// commit of each stream applied, which makes applying idempotent and
	// shows where a gap is.
	MessagesVersion uint64
	ReceiptsVersion uint64
	ChangesVersion  uint64
	LastSeq         uint64
	LastMessage     *MessageRecord
	LastActivity    time.Time
	// Members are a direct conversation's pair (at most two) or a group's
	// current members in the order they joined; a removed member has none.
	Members []MemberView
}

// IsGroup tells a group's view from a direct conversation's.
func (v ConversationView) IsGroup() bool { return v.Kind == conversation.Group }

// Revision counts every commit applied, for optimistic saves.
func (v ConversationView) Revision() uint64 {
	return v.MessagesVersion + v.ReceiptsVersion + v.ChangesVersion
}

// Users are whose lists the view belongs in: a direct conversation's pair
// (as far as it is known) or a group's current members.
func (v ConversationView) Users() []user.ID {
	if v.IsGroup() {
		users := make([]user.ID, len(v.Members))
		for i, m := range v.Members {
			users[i] = m.User
		}
		return users
	}
	var users []user.ID
	for _, u := range v.Participants {
		if u != "" {
			users = append(users, u)
		}
	}
	return users
}

// Member returns u's entry, and false when u has none.
func (v ConversationView) Member(u user.ID) (MemberView, bool) {
	for _, m := range v.Members {
		if m.User == u {
			return m, true
		}
	}
	return MemberView{}, false
}

// Clone copies the slices and the pointer a view shares with its original,
// so that a fold or a caller may change the copy in place.
func (v ConversationView) Clone() ConversationView {
	v.Members = slices.Clone(v.Members)
	for i := range v.Members {
		v.Members[i].Unread = slices.Clone(v.Members[i].Unread)
	}
	if v.LastMessage != nil {
		m := *v.LastMessage
		v.LastMessage = &m
	}
	return v
}

// MemberView is one participant's markers and unread messages.
type MemberView struct {
	User          user.ID
	DeliveredUpTo uint64
	ReadUpTo      uint64
	// JoinedAt is when a group's member last joined (zero in a direct
	// conversation): the group's messages sent since are unread for them.
	JoinedAt time.Time
	// Unread holds the messages sent to this member past ReadUpTo, as runs
	// of consecutive seqs in order: a conversation goes back and forth in
	// runs, so a view stays a few runs long however many messages wait,
	// where a seq each made every view grow, and every save of it cost more,
	// with each unread message.
	Unread []SeqRun
}

// SeqRun is the seqs From through To.
type SeqRun struct{ From, To uint64 }

// UnreadCount is how many messages wait for this member.
func (m MemberView) UnreadCount() int {
	n := 0
	for _, r := range m.Unread {
		n += int(r.To - r.From + 1)
	}
	return n
}

// MessageRecord is a posted message as the read side shows it, in its
// current state: EditedAt is zero unless it was edited; a recalled one has
// RecalledAt set and no Body.
type MessageRecord struct {
	MessageID  string
	Seq        uint64
	From       user.ID
	To         user.ID
	Body       string
	SentAt     time.Time
	EditedAt   time.Time
	RecalledAt time.Time
}

// ViewSave is one view to store, if the stored one is still at revision
// Expected (0: none stored yet).
type ViewSave struct {
	View     ConversationView
	Expected uint64
}

// ReadModel stores conversation views. Reads and writes come in batches:
// the projector applies a batch of commits to many conversations at once,
// and one round trip each way costs the store far less than one per view.
type ReadModel interface {
	// GetMany returns the stored views among the given conversations.
	GetMany(ctx context.Context, conversations []string) (map[string]ConversationView, error)
	// SaveMany stores each view whose stored revision is still the expected
	// one. It returns one error per save, nil or ErrRevisionConflict, and an
	// error of its own when the store failed as a whole.
	SaveMany(ctx context.Context, saves []ViewSave) ([]error, error)
	// ListFor returns the user's conversations, most recent activity first.
	ListFor(ctx context.Context, u user.ID, limit int) ([]ConversationView, error)
	// Reset removes every view, before a replay rebuilds them.
	Reset(ctx context.Context) error
}
