package application

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/ports"
)

// Projector builds the read model's conversation views from commits. It runs
// once per cluster (the clustering subscriber), and is idempotent: each view
// records the last version of each of its streams it applied, skips what
// it has, and fills a gap from the store, so a redelivered, late or lost
// commit never counts twice nor goes missing.
type Projector struct {
	streams   ports.StreamReader
	readModel ports.ReadModel

	// last holds the views this node saved last. A clustering group gives a
	// conversation's queue to one node, so the view it saved is almost
	// always still the stored one and need not be read back; when another
	// node saved since, the save conflicts and the view is read afresh.
	mu   sync.Mutex
	last map[string]ports.ConversationView
}

// maxProjectedViews bounds the views a projector keeps; past it, it starts
// afresh, which costs only reads.
const maxProjectedViews = 10_000

// maxProjectionAttempts bounds retries when two projectors race for one view.
const maxProjectionAttempts = 16

// Handle applies a batch of commits: one read and one write of the read
// model for all the conversations the batch touches.
func (p *Projector) Handle(ctx context.Context, commits []ports.Commit) error {
	byConv := map[string][]ports.Commit{}
	var pending []string
	for _, c := range commits {
		id, _ := conversation.StreamOf(c.Stream)
		if _, seen := byConv[string(id)]; !seen {
			pending = append(pending, string(id))
		}
		byConv[string(id)] = append(byConv[string(id)], c)
	}
	for _, list := range byConv {
		slices.SortFunc(list, foldOrder)
	}
	for attempt := 0; attempt < maxProjectionAttempts; attempt++ {
		retry, err := p.project(ctx, pending, byConv)
		if err != nil || len(retry) == 0 {
			return err
		}
		pending = retry
	}
	return fmt.Errorf("projection of %d conversations kept conflicting", len(pending))
}

// project applies the commits of the given conversations and returns those
// whose save lost a race to another projector, to be tried again.
func (p *Projector) project(ctx context.Context, ids []string, byConv map[string][]ports.Commit) ([]string, error) {
	views, err := p.views(ctx, ids)
	if err != nil {
		return nil, err
	}
	var saves []ports.ViewSave
	for _, id := range ids {
		view, found := views[id]
		if !found {
			view = ports.ConversationView{Conversation: id}
		}
		expected := view.Revision()
		for _, c := range byConv[id] {
			if err := p.applyWithGap(ctx, &view, c); err != nil {
				return nil, err
			}
		}
		if view.Revision() != expected {
			saves = append(saves, ports.ViewSave{View: view, Expected: expected})
		}
	}
	if len(saves) == 0 {
		return nil, nil
	}
	errs, err := p.readModel.SaveMany(ctx, saves)
	if err != nil {
		return nil, err
	}
	var retry []string
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil || len(p.last) >= maxProjectedViews {
		p.last = make(map[string]ports.ConversationView)
	}
	for i, e := range errs {
		id := saves[i].View.Conversation
		switch {
		case e == nil:
			p.last[id] = saves[i].View
		case errors.Is(e, ports.ErrRevisionConflict):
			delete(p.last, id)
			retry = append(retry, id)
		default:
			delete(p.last, id)
			return nil, e
		}
	}
	return retry, nil
}

// views returns the views of ids: those this node saved last from memory,
// copied so that applying commits to them cannot change the kept ones, and
// the others from the read model.
func (p *Projector) views(ctx context.Context, ids []string) (map[string]ports.ConversationView, error) {
	out := make(map[string]ports.ConversationView, len(ids))
	var missing []string
	p.mu.Lock()
	for _, id := range ids {
		if v, ok := p.last[id]; ok {
			out[id] = v.Clone()
		} else {
			missing = append(missing, id)
		}
	}
	p.mu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	stored, err := p.readModel.GetMany(ctx, missing)
	if err != nil {
		return nil, err
	}
	maps.Copy(out, stored)
	return out, nil
}

// applyWithGap applies c after any commits of its stream the view lacks.
// A change to a message the view has not reached yet is applied after the
// messages up to it, read from the store, so that the message it changes
// is never projected later in its first state.
func (p *Projector) applyWithGap(ctx context.Context, view *ports.ConversationView, c ports.Commit) error {
	applied := *streamVersion(view, c.Stream)
	if c.Version <= applied {
		return nil
	}
	from := applied + 1
	if seq := lastChangedSeq(c); seq > view.MessagesVersion {
		id, _ := conversation.StreamOf(c.Stream)
		if err := p.fill(ctx, view, conversation.MessagesStream(id), view.MessagesVersion+1, seq); err != nil {
			return err
		}
	}
	if c.Version > from {
		if err := p.fill(ctx, view, c.Stream, from, c.Version-1); err != nil {
			return err
		}
	}
	Apply(view, c)
	return nil
}

// fill applies the stored commits from through to of stream.
func (p *Projector) fill(ctx context.Context, view *ports.ConversationView, stream string, from, to uint64) error {
	gap, err := p.streams.Load(ctx, stream, from, to)
	if err != nil {
		return err
	}
	for _, g := range gap {
		Apply(view, g)
	}
	return nil
}

// lastChangedSeq is the highest seq c edits or recalls, 0 if none.
func lastChangedSeq(c ports.Commit) uint64 {
	var seq uint64
	for _, ev := range c.Events {
		switch ev := ev.(type) {
		case conversation.MessageEdited:
			seq = max(seq, ev.Seq)
		case conversation.MessageRecalled:
			seq = max(seq, ev.Seq)
		}
	}
	return seq
}

// Apply folds one commit into a view if it is the next of its stream. It is
// exported for replay, which feeds every stream in order.
func Apply(view *ports.ConversationView, c ports.Commit) {
	applied := streamVersion(view, c.Stream)
	if c.Version != *applied+1 {
		return
	}
	*applied = c.Version
	if view.Kind == "" {
		view.Kind = conversation.ID(view.Conversation).Kind()
	}
	for _, ev := range c.Events {
		applyEvent(view, ev)
	}
}

// streamVersion is where view counts the commits of stream it applied.
func streamVersion(view *ports.ConversationView, stream string) *uint64 {
	switch _, kind := conversation.StreamOf(stream); kind {
	case conversation.StreamReceipts:
		return &view.ReceiptsVersion
	case conversation.StreamChanges:
		return &view.ChangesVersion
	}
	return &view.MessagesVersion
}

// foldOrder puts a conversation's changes before its messages and receipts
// within a batch, so that a message sent after a member joined finds them
// in the view (see recipients); each stream stays in version order. An
// edit or a recall of a message not folded yet fills the messages up to
// it first (applyWithGap).
func foldOrder(a, b ports.Commit) int {
	return cmp.Or(cmp.Compare(foldRank(a), foldRank(b)), cmp.Compare(a.Stream, b.Stream), cmp.Compare(a.Version, b.Version))
}

func foldRank(c ports.Commit) int {
	if _, kind := conversation.StreamOf(c.Stream); kind == conversation.StreamChanges {
		return 0
	}
	return 1
}

func applyEvent(view *ports.ConversationView, ev conversation.Event) {
	switch ev := ev.(type) {
	case conversation.ConversationStarted:
		// Members follow the participants' order, whichever of them a
		// receipt projected earlier happened to put first.
		members := make([]ports.MemberView, len(ev.Participants))
		for i, u := range ev.Participants {
			if m, ok := view.Member(u); ok {
				members[i] = m
			}
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
		for _, m := range recipients(view, ev) {
			if ev.Seq > m.ReadUpTo {
				m.Unread = addUnread(m.Unread, ev.Seq)
			}
		}
	case conversation.DeliveredUpTo:
		if m := member(view, ev.User); m != nil && ev.Seq > m.DeliveredUpTo {
			m.DeliveredUpTo = ev.Seq
		}
	case conversation.ReadUpTo:
		if m := member(view, ev.User); m != nil && ev.Seq > m.ReadUpTo {
			m.ReadUpTo = ev.Seq
			m.Unread = readUnread(m.Unread, ev.Seq)
		}
	case conversation.MessageEdited:
		if m := view.LastMessage; m != nil && m.Seq == ev.Seq {
			m.Body, m.EditedAt = string(ev.Body), ev.EditedAt
		}
	case conversation.MessageRecalled:
		if m := view.LastMessage; m != nil && m.Seq == ev.Seq {
			m.Body, m.RecalledAt = "", ev.RecalledAt
		}
	default:
		applyGroupEvent(view, ev)
	}
}
