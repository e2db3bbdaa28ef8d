package application

import (
	"context"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
)

// recipient is the conversation a send goes to and its recipient: the
// pair's for a send to a user; for a send by conversation id, the peer of
// a direct conversation the sender is in, or none for a group, whose
// every other member receives it. To anyone outside, a conversation named
// by its id does not exist.
func (s *SendMessage) recipient(ctx context.Context, cmd SendMessageCommand) (conversation.ID, user.ID, error) {
	switch {
	case cmd.Conversation == "":
		return conversation.IDFor(cmd.Sender, cmd.To), cmd.To, nil
	case cmd.Conversation.Kind() == conversation.Group:
		return cmd.Conversation, "", nil
	}
	peer, err := s.conversations.peerOf(ctx, cmd.Conversation, cmd.Sender)
	return cmd.Conversation, peer, err
}

// post records the message on a copy of the held conversation: to a user,
// or, with no recipient, to the group's members, read afresh from the
// store, since a member removed on another node must not post on.
func (s *SendMessage) post(ctx context.Context, h *heldConversation, id message.ID, from, to user.ID, body message.Body) (conversation.MessagePosted, *conversation.Conversation, error) {
	if to != "" {
		next := h.conversation().Clone()
		posted, err := next.Post(id, from, to, body, s.clock.Now())
		return posted, next, err
	}
	if err := h.loadChanges(ctx); err != nil {
		return conversation.MessagePosted{}, nil, err
	}
	next := h.conversation().Clone()
	posted, err := next.PostAsMember(id, from, body, s.clock.Now())
	return posted, next, err
}
