package application

import (
	"context"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// Page limits of sync and history, as the protocol sets them.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 500
)

// Page is a run of messages in seq order, in their current state, and
// whether more lie beyond it.
type Page struct {
	Conversation string
	Messages     []ports.MessageView
	More         bool
	// Updates answers a sync's changesAfter (sync.go); nil when it did not ask.
	Updates []ports.MessageView
}

// History pages a conversation's messages with their delivery status.
type History struct {
	conversations *conversationRepository
	messages      ports.StreamReader
	positions     *recentPositions
}

// HistoryQuery asks for a page: with Before, the latest Limit messages below
// it; otherwise the first Limit after After, or the latest Limit when After is 0.
type HistoryQuery struct {
	Reader       user.ID
	Conversation conversation.ID
	After        uint64
	Before       uint64
	Limit        int
}

// Handle returns the page with each message's status.
func (h *History) Handle(ctx context.Context, q HistoryQuery) (Page, error) {
	id := q.Conversation
	var (
		lastSeq  uint64
		receipts *conversation.Receipts
		current  *conversation.Conversation
		members  []user.ID
	)
	err := h.conversations.withReadable(ctx, id, q.Reader, func(held *heldConversation) error {
		if err := held.loadMessages(ctx); err != nil {
			return err
		}
		if err := held.loadReceipts(ctx); err != nil {
			return err
		}
		if err := held.loadChanges(ctx); err != nil {
			return err
		}
		lastSeq, receipts, current = held.conversation().LastSeq(), held.receipts().Clone(), held.conversation().Clone()
		members = held.conversation().Members()
		return nil
	})
	if err != nil {
		return Page{}, err
	}
	from, to, more := pageRange(q.After, q.Before, lastSeq, uint64(clampLimit(q.Limit)))
	page := Page{Conversation: string(id), More: more}
	if from > to {
		return page, nil
	}
	commits, err := h.messages.Load(ctx, conversation.MessagesStream(id), from, to)
	if err != nil {
		return Page{}, err
	}
	page.Messages = messagesOf(commits, showAsOf(current))
	for i, m := range page.Messages {
		msg := message.Posted(message.ID(m.MessageID), m.Seq, m.From, m.To, message.Body(m.Body), m.SentAt)
		if id.Kind() == conversation.Group {
			page.Messages[i].Status = string(receipts.GroupStatus(msg, members))
			continue
		}
		if _, err := receipts.MarkMessage(msg); err != nil {
			return Page{}, err
		}
		page.Messages[i].Status = string(msg.Status())
	}
	h.positions.paged(q.Reader, id, page.Messages)
	return page, nil
}

// pageRange picks the seqs of a history page and whether more lie beyond it,
// in the direction the page moves.
func pageRange(after, before, last, limit uint64) (from, to uint64, more bool) {
	switch {
	case before > 0:
		to = min(before-1, last)
		floor := after + 1
		from = floor
		if to >= limit && to-limit+1 > floor {
			from = to - limit + 1
		}
		return from, to, from > floor
	case after > 0:
		from = after + 1
		to = min(after+limit, last)
		return from, to, to < last
	default:
		to = last
		from = 1
		if last > limit {
			from = last - limit + 1
		}
		return from, to, from > 1
	}
}

func clampLimit(limit int) int {
	switch {
	case limit <= 0:
		return DefaultPageLimit
	case limit > MaxPageLimit:
		return MaxPageLimit
	}
	return limit
}

func messagesOf(commits []ports.Commit, show showMessage) []ports.MessageView {
	out := make([]ports.MessageView, 0, len(commits))
	for _, c := range commits {
		for _, ev := range c.Events {
			if p, ok := ev.(conversation.MessagePosted); ok {
				out = append(out, show(p))
			}
		}
	}
	return out
}

// ListConversations answers a user's conversation list from the read model,
// brought up to date from the store where it lags what this node has shown
// the user (read_your_writes.go).
type ListConversations struct {
	readModel ports.ReadModel
	streams   ports.StreamReader
	positions *recentPositions
}

// ConversationSummary is one row of a user's conversation list; the markers
// and the unread count are the asking user's own. A direct conversation has
// a Peer; a group has a Title and its Members in join order instead.
type ConversationSummary struct {
	Conversation  string
	Kind          conversation.Kind
	Peer          user.ID
	Title         string
	Members       []user.ID
	LastSeq       uint64
	DeliveredUpTo uint64
	ReadUpTo      uint64
	Unread        int
	LastMessage   *ports.MessageView
}

// MaxConversations bounds one listing.
const MaxConversations = 500

// Handle lists u's conversations, most recent activity first.
func (l *ListConversations) Handle(ctx context.Context, u user.ID) ([]ConversationSummary, error) {
	views, err := l.readModel.ListFor(ctx, u, MaxConversations)
	if err != nil {
		return nil, err
	}
	views, err = l.catchUp(ctx, u, views)
	if err != nil {
		return nil, err
	}
	out := make([]ConversationSummary, 0, len(views))
	for _, v := range views {
		me, _ := v.Member(u)
		s := ConversationSummary{
			Conversation: v.Conversation, Kind: conversation.Direct, LastSeq: v.LastSeq,
			DeliveredUpTo: me.DeliveredUpTo, ReadUpTo: me.ReadUpTo, Unread: me.UnreadCount(),
		}
		if v.IsGroup() {
			s.Kind, s.Title, s.Members = conversation.Group, v.Title, v.Users()
		} else {
			s.Peer = v.Participants[0]
			if s.Peer == u {
				s.Peer = v.Participants[1]
			}
		}
		if r := v.LastMessage; r != nil {
			s.LastMessage = &ports.MessageView{MessageID: r.MessageID, Conversation: v.Conversation, Seq: r.Seq,
				From: r.From, To: r.To, Body: r.Body, SentAt: r.SentAt, EditedAt: r.EditedAt, RecalledAt: r.RecalledAt}
		}
		out = append(out, s)
	}
	return out, nil
}
