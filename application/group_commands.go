package application

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// DefaultMaxGroupMembers is PROTOCOL's CHAT_MAX_GROUP_MEMBERS default.
const DefaultMaxGroupMembers = 256

// Group is a group as its members see it.
type Group struct {
	Conversation conversation.ID
	Title        conversation.Title
	// Owner is empty once the last member has left.
	Owner     user.ID
	Members   []user.ID // in the order they joined
	CreatedAt time.Time
}

func groupOf(c *conversation.Conversation) Group {
	return Group{Conversation: c.ID(), Title: c.Title(), Owner: c.Owner(), Members: c.Members(), CreatedAt: c.CreatedAt()}
}

// groupCommands is what every group command needs: the conversations, the
// time, ids for commits and groups, the member cap and the retry bound.
type groupCommands struct {
	conversations *conversationRepository
	clock         ports.Clock
	ids           ports.IDs
	maxMembers    int
	attempts      int
}

// CreateGroupCommand asks for a new group of Creator, its owner, and Members.
type CreateGroupCommand struct {
	Creator user.ID
	Title   conversation.Title
	Members []user.ID
}

// CreateGroup makes a group under a fresh server-made id.
type CreateGroup struct{ groupCommands }

// Handle creates the group in one commit of its changes stream, answered
// only once it is stored and its publication committed. The id is drawn
// anew should it be taken, which the store's unique (stream, version)
// tells, so a creation never joins another group.
func (g *CreateGroup) Handle(ctx context.Context, cmd CreateGroupCommand) (Group, error) {
	for attempt := 0; attempt < g.attempts; attempt++ {
		id := newGroupID(g.ids)
		var group Group
		err := g.conversations.withConversation(id, func(h *heldConversation) error {
			next := h.conversation().Clone()
			now := g.clock.Now()
			if err := next.CreateGroup(cmd.Creator, cmd.Title, cmd.Members, now, g.maxMembers); err != nil {
				return err
			}
			if err := h.saveChanges(ctx, next, changesCommit(next, g.ids.NewID(), now)); err != nil {
				return err
			}
			group = groupOf(next)
			return nil
		})
		if !errors.Is(err, ports.ErrVersionConflict) && !errors.Is(err, conversation.ErrGroupExists) {
			return group, err
		}
	}
	return Group{}, fmt.Errorf("%w: no free group id after %d attempts", ports.ErrUnavailable, g.attempts)
}

// newGroupID draws a group id from ids, whose ids are random but not
// necessarily of 16 bytes: a hash makes them so, unpredictable still.
func newGroupID(ids ports.IDs) conversation.ID {
	sum := sha256.Sum256([]byte(ids.NewID()))
	return conversation.NewGroupID([16]byte(sum[:16]))
}

// RenameGroupCommand asks for a group's new title.
type RenameGroupCommand struct {
	By           user.ID
	Conversation conversation.ID
	Title        conversation.Title
}

// RenameGroup gives a group a new title, by any member.
type RenameGroup struct{ groupCommands }

// Handle renames the group; the same title again changes nothing.
func (g *RenameGroup) Handle(ctx context.Context, cmd RenameGroupCommand) (Group, error) {
	return g.change(ctx, cmd.Conversation, func(next *conversation.Conversation, now time.Time) error {
		return next.Rename(cmd.By, cmd.Title, now)
	})
}

// ChangeMembersCommand adds and removes members of a group.
type ChangeMembersCommand struct {
	By           user.ID
	Conversation conversation.ID
	Add, Remove  []user.ID
}

// ChangeMembers adds and removes a group's members: the owner anyone, any
// other member only themself; an owner who leaves hands the group to the
// member who joined earliest, and the last member to leave ends it.
type ChangeMembers struct{ groupCommands }

// Handle makes the change in one commit and answers the group after it.
func (g *ChangeMembers) Handle(ctx context.Context, cmd ChangeMembersCommand) (Group, error) {
	return g.change(ctx, cmd.Conversation, func(next *conversation.Conversation, now time.Time) error {
		return next.ChangeMembers(cmd.By, cmd.Add, cmd.Remove, now, g.maxMembers)
	})
}

// change runs change on a copy of the group as the store has it and
// commits what it records, if anything. The changes stream is read before
// every attempt: membership decides who may do what, and another node may
// have changed it since this node's cache last heard.
func (g *groupCommands) change(ctx context.Context, id conversation.ID, change func(*conversation.Conversation, time.Time) error) (Group, error) {
	if id.Kind() != conversation.Group {
		return Group{}, conversation.ErrNotFound
	}
	for attempt := 0; attempt < g.attempts; attempt++ {
		var group Group
		err := g.conversations.withConversation(id, func(h *heldConversation) error {
			if err := h.loadChanges(ctx); err != nil {
				return err
			}
			next := h.conversation().Clone()
			now := g.clock.Now()
			if err := change(next, now); err != nil {
				return err
			}
			if len(next.UncommittedChanges()) > 0 {
				if err := h.saveChanges(ctx, next, changesCommit(next, g.ids.NewID(), now)); err != nil {
					return err
				}
			} else if err := h.answerForLastChange(ctx); err != nil {
				return err
			}
			group = groupOf(next)
			return nil
		})
		if !errors.Is(err, ports.ErrVersionConflict) {
			return group, err
		}
		if err := backOff(ctx, attempt); err != nil {
			return Group{}, err
		}
	}
	return Group{}, fmt.Errorf("%w: group too busy, gave up after %d attempts", ports.ErrUnavailable, g.attempts)
}
