package application

import (
	"context"
	"time"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// changesCommit is next's recorded changes as the changes stream's next
// commit.
func changesCommit(next *conversation.Conversation, id string, at time.Time) ports.Commit {
	return ports.Commit{ID: id, Stream: conversation.ChangesStream(next.ID()), Version: next.ChangesVersion() + 1,
		Events: next.UncommittedChanges(), CommittedAt: at}
}

// routeOf is where a commit of conv goes: a direct conversation's to the
// nodes of its pair; a group's to every node, since its members (and one
// just removed, who must hear of it) may be anywhere, and the directory's
// routes name a pair.
func (h *heldConversation) routeOf(conv *conversation.Conversation) ports.Route {
	if conv.Kind() == conversation.Group {
		return ports.RouteToAll()
	}
	return h.repo.route(conv.Participants())
}

// withMember runs fn once reader is a member of the held group as its
// changes stream stands in the store: membership is read afresh, since a
// removal on another node may not have reached this node's cache yet, and
// a removed member must find nothing from then on.
func (h *heldConversation) withMember(ctx context.Context, reader user.ID, fn func(*heldConversation) error) error {
	if err := h.loadChanges(ctx); err != nil {
		return err
	}
	if err := h.conversation().CanRead(reader); err != nil {
		return err
	}
	return fn(h)
}
