package application

import (
	"cmp"
	"slices"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// What a view keeps of each member: their entry, and the runs of messages
// unread for them, folded by applyEvent and applyGroupEvent.

// recipients are the members a message is unread for until they read it:
// a direct message's recipient; in a group, every other member who had
// joined when it was sent. The time, not the order of folding, decides, so
// that replay, which folds stream by stream, builds what the live
// projection did.
func recipients(view *ports.ConversationView, p conversation.MessagePosted) []*ports.MemberView {
	if p.To != "" {
		if m := member(view, p.To); m != nil {
			return []*ports.MemberView{m}
		}
		return nil
	}
	var out []*ports.MemberView
	for i := range view.Members {
		if m := &view.Members[i]; m.User != p.From && !m.JoinedAt.After(p.SentAt) {
			out = append(out, m)
		}
	}
	return out
}

// addUnread returns runs with seq added, merged into the runs it touches.
// Runs is never shared with a kept view (ConversationView.Clone), so it may change in
// place.
func addUnread(runs []ports.SeqRun, seq uint64) []ports.SeqRun {
	// i is the first run that ends at or after seq-1, the only one seq can
	// extend or fall within besides the run after it.
	i, _ := slices.BinarySearchFunc(runs, seq, func(r ports.SeqRun, s uint64) int { return cmp.Compare(r.To+1, s) })
	switch {
	case i < len(runs) && runs[i].From <= seq && seq <= runs[i].To:
		return runs
	case i < len(runs) && runs[i].To+1 == seq:
		runs[i].To = seq
		if i+1 < len(runs) && runs[i+1].From == seq+1 {
			runs[i].To = runs[i+1].To
			runs = slices.Delete(runs, i+1, i+2)
		}
		return runs
	case i < len(runs) && runs[i].From == seq+1:
		runs[i].From = seq
		return runs
	default:
		return slices.Insert(runs, i, ports.SeqRun{From: seq, To: seq})
	}
}

// readUnread returns the runs left once everything up to seq is read.
func readUnread(runs []ports.SeqRun, upTo uint64) []ports.SeqRun {
	i, _ := slices.BinarySearchFunc(runs, upTo, func(r ports.SeqRun, s uint64) int { return cmp.Compare(r.To, s+1) })
	left := slices.Clone(runs[i:])
	if len(left) > 0 && left[0].From <= upTo {
		left[0].From = upTo + 1
	}
	return left
}

// member returns u's entry in the view. In a direct conversation it takes
// a free one if u has none yet, since a receipt may be projected before the
// commit that started the conversation; in a group, only members have one,
// so a late marker of a removed member brings back nothing.
func member(view *ports.ConversationView, u user.ID) *ports.MemberView {
	for i := range view.Members {
		if view.Members[i].User == u {
			return &view.Members[i]
		}
	}
	if view.IsGroup() {
		return nil
	}
	for i := range view.Members {
		if view.Members[i].User == "" {
			view.Members[i].User = u
			return &view.Members[i]
		}
	}
	if len(view.Members) >= 2 {
		return nil
	}
	view.Members = append(view.Members, ports.MemberView{User: u})
	return &view.Members[len(view.Members)-1]
}
