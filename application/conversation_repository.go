package application

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// conversationRepository loads and saves conversations. It keeps each
// conversation's aggregates cached at the last version this node saw
// (conversationCache), saves through the transactional publisher
// (commitPublication), and runs one command of a conversation at a time on
// this node: a command runs inside withConversation, which owns the lock.
type conversationRepository struct {
	store   ports.EventStore
	cache   *conversationCache
	pairs   *pairCache
	commits *commitPublication
	// routeOf is where a commit concerning users goes; nil sends every
	// commit to every node.
	routeOf func(users ...user.ID) ports.Route
}

func newConversationRepository(store ports.EventStore, publisher ports.TransactionalPublisher, republisher *Republisher) *conversationRepository {
	return &conversationRepository{store: store, cache: newConversationCache(), pairs: newPairCache(store),
		commits: &commitPublication{publisher: publisher, republisher: republisher}}
}

// heldConversation is a conversation's cached aggregates while a command
// holds its lock: it may load what the store has beyond them, and save a
// changed copy, which then replaces them.
type heldConversation struct {
	repo  *conversationRepository
	entry *cachedConversation
}

// withConversation runs fn on the conversation's cached aggregates and
// holds its lock until fn returns, however it returns: this node's commands
// of one conversation queue here instead of racing each other for a
// version, and no caller can leave the conversation locked.
func (r *conversationRepository) withConversation(id conversation.ID, fn func(*heldConversation) error) error {
	e := r.cache.lock(id)
	defer e.mu.Unlock()
	return fn(&heldConversation{repo: r, entry: e})
}

// withReadable runs fn on the conversation once reader may see it, holding
// its lock. When the cached aggregate does not show reader in the pair,
// one read of the stream's first commit, which names the pair, decides:
// the same single bounded read whether the conversation does not exist,
// the reader is outside it or the cache is behind, so neither the answer
// nor its cost tells a stranger that two users talk (a reload of the whole
// stream would take longer the longer they had talked). Only a
// participant's entry is then brought up to date.
func (r *conversationRepository) withReadable(ctx context.Context, id conversation.ID, reader user.ID, fn func(*heldConversation) error) error {
	return r.withConversation(id, func(h *heldConversation) error {
		if id.Kind() == conversation.Group {
			return h.withMember(ctx, reader, fn)
		}
		if h.conversation().CanRead(reader) == nil {
			return fn(h)
		}
		started, err := loadStarted(ctx, r.store, id)
		if err != nil {
			return err
		}
		if err := started.CanRead(reader); err != nil {
			return err
		}
		if err := h.loadMessages(ctx); err != nil {
			return err
		}
		return fn(h)
	})
}

// peerOf returns the other participant of a conversation u takes part in;
// to anyone else the conversation is not found, as one never started.
func (r *conversationRepository) peerOf(ctx context.Context, id conversation.ID, u user.ID) (user.ID, error) {
	var peer user.ID
	err := r.withReadable(ctx, id, u, func(h *heldConversation) error {
		peer = h.conversation().Peer(u)
		return nil
	})
	return peer, err
}

// othersOf returns the members of a conversation u takes part in but u:
// a direct conversation's peer or a group's other members; to anyone
// else the conversation is not found, as for peerOf.
func (r *conversationRepository) othersOf(ctx context.Context, id conversation.ID, u user.ID) ([]user.ID, error) {
	var others []user.ID
	err := r.withReadable(ctx, id, u, func(h *heldConversation) error {
		others = slices.DeleteFunc(h.conversation().Members(), func(m user.ID) bool { return m == u })
		return nil
	})
	return others, err
}

// participants returns a conversation's pair without waiting on its lock.
func (r *conversationRepository) participants(ctx context.Context, id conversation.ID) ([2]user.ID, error) {
	return r.pairs.participants(ctx, id)
}

// findSaved returns the commit saved under id, for a resend of the command
// that saved it, and answers for it as for a commit just published.
func (r *conversationRepository) findSaved(ctx context.Context, id string) (ports.Commit, error) {
	stored, err := r.store.FindCommit(ctx, id)
	if err != nil {
		return ports.Commit{}, err
	}
	r.commits.foundStored(stored)
	return stored, nil
}

// observe learns from a commit the bus brought to this node.
func (r *conversationRepository) observe(c ports.Commit) {
	r.commits.observed(c)
	r.pairs.remember(c)
	id, _ := conversation.StreamOf(c.Stream)
	r.cache.observe(id, c)
}

// afterCommit makes fn hear of each commit saved from now on.
func (r *conversationRepository) afterCommit(fn func(ports.Commit)) { r.commits.afterCommit(fn) }

// afterObserve makes fn hear of each commit the bus brings from now on.
func (r *conversationRepository) afterObserve(fn func(ports.Commit)) { r.commits.afterObserve(fn) }

// conversation is the held Conversation aggregate; change a Clone of it
// and save that.
func (h *heldConversation) conversation() *conversation.Conversation { return h.entry.conv }

// receipts is the held Receipts aggregate; change a Clone of it and save that.
func (h *heldConversation) receipts() *conversation.Receipts { return h.entry.receipts }

// streamAggregate is what the repository needs of an aggregate's stream
// to load and save it.
type streamAggregate interface {
	Version() uint64
	Replay(events []conversation.Event)
	Committed()
}

// changesOf is a Conversation seen through its changes stream, which it
// counts apart from its messages stream.
type changesOf struct{ conv *conversation.Conversation }

func (a changesOf) Version() uint64                    { return a.conv.ChangesVersion() }
func (a changesOf) Replay(events []conversation.Event) { a.conv.ReplayChanges(events) }
func (a changesOf) Committed()                         { a.conv.ChangesCommitted() }

// catchUpFor brings the held aggregates far enough to move markers up to
// seq upTo for several users at once: a group's membership as the store
// has it (a member removed on another node moves no marker), the messages
// up to upTo, and on a retry the markers stored since.
func (h *heldConversation) catchUpFor(ctx context.Context, id conversation.ID, upTo uint64, retry bool) error {
	if id.Kind() == conversation.Group {
		if err := h.loadChanges(ctx); err != nil {
			return err
		}
	}
	if retry {
		if err := h.loadReceipts(ctx); err != nil {
			return err
		}
	}
	if upTo > h.conversation().LastSeq() {
		return h.loadMessages(ctx)
	}
	return nil
}

// loadMessages applies the commits stored since the held version.
func (h *heldConversation) loadMessages(ctx context.Context) error {
	return h.load(ctx, conversation.MessagesStream(h.entry.conv.ID()), h.entry.conv)
}

// loadReceipts applies the marker commits stored since the held version.
func (h *heldConversation) loadReceipts(ctx context.Context) error {
	return h.load(ctx, conversation.ReceiptsStream(h.entry.conv.ID()), h.entry.receipts)
}

// loadChanges applies the changes-stream commits (membership, renames,
// edits and recalls) stored since the held version.
func (h *heldConversation) loadChanges(ctx context.Context) error {
	return h.load(ctx, conversation.ChangesStream(h.entry.conv.ID()), changesOf{h.entry.conv})
}

func (h *heldConversation) load(ctx context.Context, stream string, held streamAggregate) error {
	commits, err := h.repo.store.Load(ctx, stream, held.Version()+1, 0)
	if err != nil {
		return err
	}
	for _, c := range commits {
		held.Replay(c.Events)
	}
	return nil
}

// saveMessages publishes commit, the events next recorded, and holds next
// from then on.
func (h *heldConversation) saveMessages(ctx context.Context, next *conversation.Conversation, commit ports.Commit) error {
	commit.Route = h.routeOf(next, commit.Events)
	return h.save(ctx, commit, next, func() { h.entry.conv = next })
}

// saveReceipts publishes commit, the markers next recorded, and holds next
// from then on.
func (h *heldConversation) saveReceipts(ctx context.Context, next *conversation.Receipts, commit ports.Commit) error {
	commit.Route = h.routeOf(h.conversation(), commit.Events)
	return h.save(ctx, commit, next, func() { h.entry.receipts = next })
}

// saveChanges publishes commit, the changes-stream events next recorded,
// and holds next from then on. It reaches the nodes of the conversation's
// users as a message does, so that their sessions hear of the change.
func (h *heldConversation) saveChanges(ctx context.Context, next *conversation.Conversation, commit ports.Commit) error {
	commit.Route = h.routeOf(next, commit.Events)
	return h.save(ctx, commit, changesOf{next}, func() { h.entry.conv = next })
}

// route is where a commit concerning users goes.
func (r *conversationRepository) route(users ...user.ID) ports.Route {
	if r.routeOf == nil {
		return ports.RouteToAll()
	}
	return r.routeOf(users...)
}

// save holds next only once its commit is published: a copy that failed
// to commit never spoils the cache.
func (h *heldConversation) save(ctx context.Context, commit ports.Commit, next streamAggregate, hold func()) error {
	if err := h.repo.commits.publish(ctx, commit); err != nil {
		return err
	}
	next.Committed()
	hold()
	return nil
}

// backOff waits before attempt+1 of a command that lost a version race: a
// random wait, doubling with each attempt up to maxBackOff. Retrying at once
// lets the node that won keep winning while this one reloads, so that a
// sender on the node that is behind could starve.
func backOff(ctx context.Context, attempt int) error {
	const base, maxBackOff = time.Millisecond, 50 * time.Millisecond
	limit := min(base<<min(attempt, 6), maxBackOff)
	t := time.NewTimer(time.Duration(rand.Int64N(int64(limit)) + 1))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", ports.ErrUnavailable, ctx.Err())
	}
}
