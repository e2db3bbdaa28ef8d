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

// routeOf is where a commit of conv recording events goes: the nodes of
// its users' sessions, as the directory knows them. A direct
// conversation's users are its pair; a group's are its members and the
// users events remove, who must hear of their removal.
func (h *heldConversation) routeOf(conv *conversation.Conversation, events []conversation.Event) ports.Route {
	if conv.Kind() != conversation.Group {
		pair := conv.Participants()
		return h.repo.route(pair[:]...)
	}
	users := conv.Members()
	for _, ev := range events {
		if removed, ok := ev.(conversation.MemberRemoved); ok {
			users = append(users, removed.User)
		}
	}
	return h.repo.route(users...)
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

// answerForLastChange answers for the held group's last change, as a
// resend of a send answers for the commit it finds stored: a change that
// records nothing may retry one whose node died before its transaction
// answered, stored but perhaps not published, which checkback would
// publish only a minute later. Found stored, it is published again unless
// the bus brings it back (Republisher.ackedFromStore); a copy of one
// published already costs one republish, which every consumer drops.
func (h *heldConversation) answerForLastChange(ctx context.Context) error {
	conv := h.conversation()
	last := conv.ChangesVersion()
	if last == 0 {
		return nil
	}
	commits, err := h.repo.store.Load(ctx, conversation.ChangesStream(conv.ID()), last, last)
	if err != nil {
		return err
	}
	for _, c := range commits {
		h.repo.commits.foundStored(c)
	}
	return nil
}
