package application

import (
	"context"
	"sync"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// groupMembers holds each group's state as far as this node's delivery has
// seen its changes stream, for delivery to find a group message's members
// without the conversation's lock (see pairCache): learnt from each
// membership commit delivery handles, and read from the store for a group
// it has not seen yet. A later commit replaces an earlier one's state,
// never the other way round.
type groupMembers struct {
	streams ports.StreamReader

	mu     sync.Mutex
	groups map[conversation.ID]*conversation.Conversation
}

func newGroupMembers(streams ports.StreamReader) *groupMembers {
	return &groupMembers{streams: streams, groups: map[conversation.ID]*conversation.Conversation{}}
}

// of returns the members of group id as of its changes stream's version
// atLeast or later: the kept state when it is that recent, else the store's.
func (g *groupMembers) of(ctx context.Context, id conversation.ID, atLeast uint64) ([]user.ID, error) {
	g.mu.Lock()
	group, ok := g.groups[id]
	g.mu.Unlock()
	if ok && group.ChangesVersion() >= atLeast {
		return group.Members(), nil
	}
	group, err := loadChangesUpTo(ctx, g.streams, id, 0)
	if err != nil {
		return nil, err
	}
	g.learn(group)
	return group.Members(), nil
}

// learn keeps group's state unless a later one is kept already.
func (g *groupMembers) learn(group *conversation.Conversation) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if kept, ok := g.groups[group.ID()]; ok && kept.ChangesVersion() >= group.ChangesVersion() {
		return
	}
	if len(g.groups) >= maxCachedConversations {
		clear(g.groups)
	}
	g.groups[group.ID()] = group
}

// committed applies c, a commit this node has just made, when it is a
// group's change that follows the state kept, and otherwise forgets that
// state so that the next lookup reads the store: this node's own changes
// count at once, before the bus brings them back (the forwarder asks who
// a group's members are the moment a commit is made).
func (g *groupMembers) committed(c ports.Commit) {
	id, kind := conversation.StreamOf(c.Stream)
	if kind != conversation.StreamChanges || id.Kind() != conversation.Group {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	kept, ok := g.groups[id]
	if !ok || kept.ChangesVersion() >= c.Version {
		return
	}
	if kept.ChangesVersion()+1 != c.Version {
		delete(g.groups, id)
		return
	}
	next := kept.Clone()
	next.ReplayChanges(c.Events)
	g.groups[id] = next
}

// loadChangesUpTo replays group id's changes stream up to version to (0:
// to the end) from the store.
func loadChangesUpTo(ctx context.Context, streams ports.StreamReader, id conversation.ID, to uint64) (*conversation.Conversation, error) {
	commits, err := streams.Load(ctx, conversation.ChangesStream(id), 1, to)
	if err != nil {
		return nil, err
	}
	group := conversation.New(id)
	for _, c := range commits {
		group.ReplayChanges(c.Events)
	}
	return group, nil
}

// recipientsOf are the users whose sessions get message p: a direct
// message's pair; a group message's members and its sender, whose other
// sessions get it too.
func (d *Delivery) recipientsOf(ctx context.Context, p conversation.MessagePosted) []user.ID {
	if p.To != "" {
		return []user.ID{p.To, p.From}
	}
	members, err := d.groups.of(ctx, p.Conversation, p.Membership)
	if err != nil {
		d.log.Warn("group message not pushed", "conversation", p.Conversation, "seq", p.Seq, "err", err)
		return nil
	}
	recipients := []user.ID{p.From}
	for _, u := range members {
		if u != p.From {
			recipients = append(recipients, u)
		}
	}
	return recipients
}

// usersOf are the users whose sessions hear of a conversation's changes: a
// direct conversation's pair, or a group's members.
func (d *Delivery) usersOf(ctx context.Context, id conversation.ID) ([]user.ID, error) {
	if id.Kind() == conversation.Group {
		return d.groups.of(ctx, id, 0)
	}
	pair, err := d.conversations.participants(ctx, id)
	return pair[:], err
}
