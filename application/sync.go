package application

import (
	"cmp"
	"context"
	"maps"
	"slices"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// Sync answers a session that asks for the messages after a seq, each in
// its current state, and, when it asks with changesAfter, the messages
// edited or recalled after that rev.
type Sync struct {
	conversations *conversationRepository
	messages      ports.StreamReader
	positions     *recentPositions
}

// SyncQuery asks for up to Limit messages with seq > After; with
// WithChanges, also for up to Limit messages changed after rev ChangesAfter.
type SyncQuery struct {
	Reader       user.ID
	Conversation conversation.ID
	After        uint64
	Limit        int
	ChangesAfter uint64
	WithChanges  bool
}

// Handle returns the page; only a participant may ask.
func (s *Sync) Handle(ctx context.Context, q SyncQuery) (Page, error) {
	id := q.Conversation
	limit := clampLimit(q.Limit)
	var (
		current *conversation.Conversation
		changed []ports.Commit
	)
	err := s.conversations.withReadable(ctx, id, q.Reader, func(h *heldConversation) error {
		if err := h.loadChanges(ctx); err != nil {
			return err
		}
		current = h.conversation().Clone()
		if !q.WithChanges || q.ChangesAfter >= current.Rev() {
			return nil
		}
		// Rev r is at a version of at least r (deliver_changes.go), and the
		// held aggregate has applied every version up to its own.
		var err error
		changed, err = s.messages.Load(ctx, conversation.ChangesStream(id), q.ChangesAfter+1, current.ChangesVersion())
		return err
	})
	if err != nil {
		return Page{}, err
	}
	show := showAsOf(current)
	commits, err := s.messages.Load(ctx, conversation.MessagesStream(id), q.After+1, q.After+uint64(limit)+1)
	if err != nil {
		return Page{}, err
	}
	page := Page{Conversation: string(id), Messages: messagesOf(commits, show)}
	if len(page.Messages) > limit {
		page.Messages, page.More = page.Messages[:limit], true
	}
	if q.WithChanges {
		if page.Updates, err = s.updates(ctx, id, changed, q.ChangesAfter, limit, show); err != nil {
			return Page{}, err
		}
	}
	s.positions.paged(q.Reader, id, page.Messages)
	return page, nil
}

// updates returns the current state of the messages changed after rev
// after, each once at its latest change, oldest change first, at most
// limit: a client that gets limit of them asks again after the last rev.
func (s *Sync) updates(ctx context.Context, id conversation.ID, changed []ports.Commit, after uint64, limit int, show showMessage) ([]ports.MessageView, error) {
	latest := map[uint64]uint64{}
	for _, c := range changed {
		for _, ev := range c.Events {
			if u, ok := updateOf(ev); ok && u.Rev > after {
				latest[u.Seq] = max(latest[u.Seq], u.Rev)
			}
		}
	}
	out := make([]ports.MessageView, 0, min(len(latest), limit))
	if len(latest) == 0 {
		return out, nil
	}
	seqs := slices.SortedFunc(maps.Keys(latest), func(a, b uint64) int { return cmp.Compare(latest[a], latest[b]) })
	seqs = seqs[:min(len(seqs), limit)]
	// Changes fall within the edit window, so the messages they change are
	// recent and close together: one range read.
	commits, err := s.messages.Load(ctx, conversation.MessagesStream(id), slices.Min(seqs), slices.Max(seqs))
	if err != nil {
		return nil, err
	}
	posted := map[uint64]conversation.MessagePosted{}
	for _, c := range commits {
		for _, ev := range c.Events {
			if p, ok := ev.(conversation.MessagePosted); ok {
				posted[p.Seq] = p
			}
		}
	}
	for _, seq := range seqs {
		if p, ok := posted[seq]; ok {
			v := show(p)
			v.Rev = latest[seq]
			out = append(out, v)
		}
	}
	return out, nil
}
