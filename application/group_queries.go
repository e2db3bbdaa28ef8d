package application

import (
	"context"
	"log/slog"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
)

// GetGroupQuery asks for a group as Reader, who must be a member, sees it.
type GetGroupQuery struct {
	Reader       user.ID
	Conversation conversation.ID
}

// GetGroup answers a group from its changes stream as the store has it.
type GetGroup struct {
	conversations *conversationRepository
}

// Handle returns the group; to anyone but a member, and to everyone once it
// has ended, there is no such group.
func (g *GetGroup) Handle(ctx context.Context, q GetGroupQuery) (Group, error) {
	if q.Conversation.Kind() != conversation.Group {
		return Group{}, conversation.ErrNotFound
	}
	var group Group
	err := g.conversations.withReadable(ctx, q.Conversation, q.Reader, func(h *heldConversation) error {
		group = groupOf(h.conversation())
		return nil
	})
	return group, err
}

// MemberReceipt is one member's markers in a conversation.
type MemberReceipt struct {
	User          user.ID
	DeliveredUpTo uint64
	ReadUpTo      uint64
}

// ReceiptsQuery asks for every member's markers of a conversation.
type ReceiptsQuery struct {
	Reader       user.ID
	Conversation conversation.ID
}

// Receipts answers the markers of every member of a conversation, direct
// or group, from the store: a group's receipt frames go only to the
// member whose marker moved, and this is how the others learn of it.
type Receipts struct {
	conversations *conversationRepository
}

// Handle returns one entry per current member, in the order they joined
// (a direct conversation's pair in its canonical order).
func (r *Receipts) Handle(ctx context.Context, q ReceiptsQuery) ([]MemberReceipt, error) {
	var out []MemberReceipt
	err := r.conversations.withReadable(ctx, q.Conversation, q.Reader, func(h *heldConversation) error {
		if err := h.loadReceipts(ctx); err != nil {
			return err
		}
		markers := h.receipts()
		for _, u := range h.conversation().Members() {
			out = append(out, MemberReceipt{User: u, DeliveredUpTo: markers.DeliveredUpTo(u), ReadUpTo: markers.ReadUpTo(u)})
		}
		return nil
	})
	return out, err
}

// GroupHandlers are the group use cases as transports see them.
type GroupHandlers struct {
	Create        Handler[CreateGroupCommand, Group]
	Get           Handler[GetGroupQuery, Group]
	Rename        Handler[RenameGroupCommand, Group]
	ChangeMembers Handler[ChangeMembersCommand, Group]
}

func newGroupHandlers(log *slog.Logger, g groupCommands) GroupHandlers {
	return GroupHandlers{
		Create:        logged[CreateGroupCommand, Group](log, "create group", &CreateGroup{g}),
		Get:           logged[GetGroupQuery, Group](log, "get group", &GetGroup{conversations: g.conversations}),
		Rename:        logged[RenameGroupCommand, Group](log, "rename group", &RenameGroup{g}),
		ChangeMembers: logged[ChangeMembersCommand, Group](log, "change members", &ChangeMembers{g}),
	}
}
