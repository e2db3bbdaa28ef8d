package application

import (
	"slices"
	"time"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// applyGroupEvent folds the membership events of a group's changes stream
// into its view: the title, the owner, and the members in join order. A
// removed member's entry goes with their markers and unread messages, so
// the group leaves their list; one who joins again starts afresh.
func applyGroupEvent(view *ports.ConversationView, ev conversation.Event) {
	switch ev := ev.(type) {
	case conversation.GroupCreated:
		view.Title, view.Owner = string(ev.Title), ev.Owner
		for _, u := range ev.Members {
			joined(view, u, ev.At)
		}
		if ev.At.After(view.LastActivity) {
			view.LastActivity = ev.At
		}
	case conversation.GroupRenamed:
		view.Title = string(ev.Title)
	case conversation.MemberAdded:
		joined(view, ev.User, ev.At)
	case conversation.MemberRemoved:
		view.Members = slices.DeleteFunc(view.Members, func(m ports.MemberView) bool { return m.User == ev.User })
		if view.Owner == ev.User {
			view.Owner = ""
		}
	case conversation.OwnerChanged:
		view.Owner = ev.Owner
	}
}

// joined gives u an entry at the end of the members, stamped with the
// time they joined, or restamps the entry a marker made before.
func joined(view *ports.ConversationView, u user.ID, at time.Time) {
	if m := member(view, u); m != nil {
		m.JoinedAt = at
		return
	}
	view.Members = append(view.Members, ports.MemberView{User: u, JoinedAt: at})
}
