package application

import (
	"context"
	"slices"
	"time"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// What raises a user's position (read_your_writes.go): a commit this node
// made for them, a commit it pushes to their sessions, a page it answered
// them.

// committed learns from a commit this node stored for a user: the sender
// was acked the message, the marker's owner wrote the marker.
func (r *recentPositions) committed(c ports.Commit) {
	for _, ev := range c.Events {
		switch ev := ev.(type) {
		case conversation.MessagePosted:
			r.raise(ev.From, ev.Conversation, position{lastSeq: ev.Seq})
		case conversation.DeliveredUpTo:
			r.raise(ev.User, ev.Conversation, position{receipts: c.Version})
		case conversation.ReadUpTo:
			r.raise(ev.User, ev.Conversation, position{receipts: c.Version})
		}
	}
	if id, kind := conversation.StreamOf(c.Stream); kind == conversation.StreamChanges {
		for _, u := range namedBy(c.Events) {
			r.raise(u, id, position{changes: c.Version})
		}
	}
}

// namedBy are the users a group's changes name: whoever made them, and
// whoever joined or left by them, whose lists gain or lose the group.
func namedBy(events []conversation.Event) []user.ID {
	var users []user.ID
	for _, ev := range events {
		switch ev := ev.(type) {
		case conversation.GroupCreated:
			users = append(users, ev.Members...)
		case conversation.GroupRenamed:
			users = append(users, ev.By)
		case conversation.MemberAdded:
			users = append(users, ev.By, ev.User)
		case conversation.MemberRemoved:
			users = append(users, ev.By, ev.User)
		}
	}
	slices.Sort(users)
	return slices.Compact(users)
}

// delivered learns from a commit the bus brought to this node: both
// participants, or every member of a group, with a session here are pushed
// its message, and the users a group's change names its member frames.
// The position may be raised a moment before the push; the list then shows
// a message that is committed and on its way, never one that is not stored.
func (r *recentPositions) delivered(c ports.Commit) {
	for _, ev := range c.Events {
		if p, ok := ev.(conversation.MessagePosted); ok {
			for _, u := range r.receiversOf(p) {
				if r.sessions.holds(u) {
					r.raise(u, p.Conversation, position{lastSeq: p.Seq})
				}
			}
		}
	}
	if id, kind := conversation.StreamOf(c.Stream); kind == conversation.StreamChanges {
		for _, u := range namedBy(c.Events) {
			if r.sessions.holds(u) {
				r.raise(u, id, position{changes: c.Version})
			}
		}
	}
}

// receiversOf are whose sessions p is pushed to: a direct message's pair,
// a group message's sender and members. The members are delivery's
// (groupMembers), which reads them once for the push that follows anyway.
func (r *recentPositions) receiversOf(p conversation.MessagePosted) []user.ID {
	if p.To != "" {
		return []user.ID{p.To, p.From}
	}
	ctx, cancel := context.WithTimeout(context.Background(), groupLookupBudget)
	defer cancel()
	members, err := r.groups.of(ctx, p.Conversation, p.Membership)
	if err != nil {
		// Delivery fails to find them too, and says so; the list answers
		// from the read model alone.
		return []user.ID{p.From}
	}
	return append(members, p.From)
}

// groupLookupBudget bounds the read of a group's members that a position
// waits for.
const groupLookupBudget = 5 * time.Second

// paged learns from a sync or history page answered to reader.
func (r *recentPositions) paged(reader user.ID, conv conversation.ID, messages []ports.MessageView) {
	var last uint64
	for _, m := range messages {
		last = max(last, m.Seq)
	}
	if last > 0 {
		r.raise(reader, conv, position{lastSeq: last})
	}
}
