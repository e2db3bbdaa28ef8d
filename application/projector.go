package application

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// Projector builds the read model's conversation views from commits. It runs
// once per cluster (the clustering subscriber), and is idempotent: each view
// records the last version of both streams it applied, skips what it has,
// and fills a gap from the store, so a redelivered, late or lost commit never
// counts twice nor goes missing.
type Projector struct {
	store     ports.EventStore
	readModel ports.ReadModel
}

// maxProjectionAttempts bounds retries when two projectors race for one view.
const maxProjectionAttempts = 16

// Handle applies a batch of commits, one save per conversation touched.
func (p *Projector) Handle(ctx context.Context, commits []ports.Commit) error {
	byConv := map[conversation.ID][]ports.Commit{}
	var order []conversation.ID
	for _, c := range commits {
		id, _ := conversation.StreamConversation(c.Stream)
		if _, seen := byConv[id]; !seen {
			order = append(order, id)
		}
		byConv[id] = append(byConv[id], c)
	}
	for _, id := range order {
		if err := p.project(ctx, id, byConv[id]); err != nil {
			return err
		}
	}
	return nil
}

func (p *Projector) project(ctx context.Context, id conversation.ID, commits []ports.Commit) error {
	slices.SortFunc(commits, func(a, b ports.Commit) int {
		if a.Stream != b.Stream {
			if a.Stream < b.Stream {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Version, b.Version)
	})
	for attempt := 0; attempt < maxProjectionAttempts; attempt++ {
		view, found, err := p.readModel.Get(ctx, string(id))
		if err != nil {
			return err
		}
		if !found {
			view = ports.ConversationView{Conversation: string(id)}
		}
		expected := view.Revision()
		for _, c := range commits {
			if err := p.applyWithGap(ctx, &view, c); err != nil {
				return err
			}
		}
		if view.Revision() == expected {
			return nil
		}
		err = p.readModel.Save(ctx, view, expected)
		if !errors.Is(err, ports.ErrRevisionConflict) {
			return err
		}
	}
	return fmt.Errorf("projection of %s kept conflicting", id)
}

// applyWithGap applies c after any commits of its stream the view lacks.
func (p *Projector) applyWithGap(ctx context.Context, view *ports.ConversationView, c ports.Commit) error {
	_, receipts := conversation.StreamConversation(c.Stream)
	applied := view.MessagesVersion
	if receipts {
		applied = view.ReceiptsVersion
	}
	if c.Version <= applied {
		return nil
	}
	if c.Version > applied+1 {
		gap, err := p.store.Load(ctx, c.Stream, applied+1, c.Version-1)
		if err != nil {
			return err
		}
		for _, g := range gap {
			Apply(view, g)
		}
	}
	Apply(view, c)
	return nil
}

// Apply folds one commit into a view if it is the next of its stream. It is
// exported for replay, which feeds every stream in order.
func Apply(view *ports.ConversationView, c ports.Commit) {
	_, receipts := conversation.StreamConversation(c.Stream)
	if receipts {
		if c.Version != view.ReceiptsVersion+1 {
			return
		}
		view.ReceiptsVersion = c.Version
	} else {
		if c.Version != view.MessagesVersion+1 {
			return
		}
		view.MessagesVersion = c.Version
	}
	for _, ev := range c.Events {
		applyEvent(view, ev)
	}
}

func applyEvent(view *ports.ConversationView, ev conversation.Event) {
	switch ev := ev.(type) {
	case conversation.ConversationStarted:
		// Members follow the participants' order, whichever of them a
		// receipt projected earlier happened to put first.
		var members [2]ports.MemberView
		for i, u := range ev.Participants {
			members[i] = *member(view, u)
			members[i].User = u
		}
		view.Participants, view.Members = ev.Participants, members
	case conversation.MessagePosted:
		if ev.Seq > view.LastSeq {
			view.LastSeq = ev.Seq
			view.LastMessage = &ports.MessageRecord{MessageID: string(ev.MessageID), Seq: ev.Seq,
				From: ev.From, To: ev.To, Body: string(ev.Body), SentAt: ev.SentAt}
		}
		if ev.SentAt.After(view.LastActivity) {
			view.LastActivity = ev.SentAt
		}
		if m := member(view, ev.To); ev.Seq > m.ReadUpTo {
			if i, found := slices.BinarySearch(m.Unread, ev.Seq); !found {
				m.Unread = slices.Insert(m.Unread, i, ev.Seq)
			}
		}
	case conversation.DeliveredUpTo:
		if m := member(view, ev.User); ev.Seq > m.DeliveredUpTo {
			m.DeliveredUpTo = ev.Seq
		}
	case conversation.ReadUpTo:
		if m := member(view, ev.User); ev.Seq > m.ReadUpTo {
			m.ReadUpTo = ev.Seq
			i, _ := slices.BinarySearch(m.Unread, ev.Seq+1)
			m.Unread = slices.Clone(m.Unread[i:])
		}
	}
}

// member returns u's slot in the view, taking a free one if u has none yet:
// a receipt may be projected before the commit that started the conversation.
func member(view *ports.ConversationView, u user.ID) *ports.MemberView {
	for i := range view.Members {
		if view.Members[i].User == u {
			return &view.Members[i]
		}
	}
	for i := range view.Members {
		if view.Members[i].User == "" {
			view.Members[i].User = u
			return &view.Members[i]
		}
	}
	return &ports.MemberView{}
}
