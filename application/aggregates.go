package application

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// maxCachedConversations bounds the aggregate cache; an evicted conversation
// is simply loaded again from the store.
const maxCachedConversations = 100_000

// aggregates caches each conversation's two aggregates at the last version
// this node saw, and commits to them through the transactional publisher. A
// stale entry costs one version conflict and a reload, never a wrong answer,
// because the store's unique (stream, version) decides every race.
type aggregates struct {
	store     ports.EventStore
	publisher ports.TransactionalPublisher
	// republisher watches what this node commits until the bus brings it back.
	republisher *Republisher

	mu      sync.Mutex
	entries map[conversation.ID]*aggregateEntry

	// pairs caches each conversation's participants, which never change,
	// apart from the entries: delivery needs them for every receipt and
	// must never wait on a conversation's lock, which a command holds while
	// it publishes and, with the bus's queue full, while delivery drains it.
	pairsMu sync.RWMutex
	pairs   map[conversation.ID][2]user.ID

	// onCommit hears of every commit this node's publish committed, the
	// moment it did, and onObserve of every commit the bus brings: what
	// this node has just written must show in what it answers next (peers
	// for presence, the conversation list), and the bus brings the commit
	// back only later, after a join signal or a list request may have come.
	hooksMu   sync.RWMutex
	onCommit  []func(ports.Commit)
	onObserve []func(ports.Commit)
}

// aggregateEntry serialises the commands of one conversation on this node,
// so that local senders queue instead of racing each other for a version.
type aggregateEntry struct {
	mu       sync.Mutex
	conv     *conversation.Conversation
	receipts *conversation.Receipts

	// observed holds commits seen on the bus while the entry was locked, for
	// the next holder to apply: the cache keeps up with other nodes' commits
	// without reading the store and without delivery waiting on a command.
	observedMu sync.Mutex
	observed   []ports.Commit
}

func newAggregates(store ports.EventStore, publisher ports.TransactionalPublisher, republisher *Republisher) *aggregates {
	return &aggregates{store: store, publisher: publisher, republisher: republisher,
		entries: map[conversation.ID]*aggregateEntry{}, pairs: map[conversation.ID][2]user.ID{}}
}

// lock returns the conversation's entry, locked; the caller unlocks it.
func (a *aggregates) lock(id conversation.ID) *aggregateEntry {
	a.mu.Lock()
	e, ok := a.entries[id]
	if !ok {
		if len(a.entries) >= maxCachedConversations {
			a.evictOne()
		}
		e = &aggregateEntry{conv: conversation.New(id), receipts: conversation.NewReceipts(id)}
		a.entries[id] = e
	}
	a.mu.Unlock()
	e.mu.Lock()
	e.catchUp()
	return e
}

func (a *aggregates) evictOne() {
	for id, e := range a.entries {
		if e.mu.TryLock() {
			delete(a.entries, id)
			e.mu.Unlock()
			return
		}
	}
}

// refreshConversation applies the commits stored since the cached version.
func (a *aggregates) refreshConversation(ctx context.Context, e *aggregateEntry) error {
	commits, err := a.store.Load(ctx, conversation.MessagesStream(e.conv.ID()), e.conv.Version()+1, 0)
	if err != nil {
		return err
	}
	for _, c := range commits {
		e.conv.Replay(c.Events)
	}
	return nil
}

// refreshReceipts applies the marker commits stored since the cached version.
func (a *aggregates) refreshReceipts(ctx context.Context, e *aggregateEntry) error {
	commits, err := a.store.Load(ctx, conversation.ReceiptsStream(e.conv.ID()), e.receipts.Version()+1, 0)
	if err != nil {
		return err
	}
	for _, c := range commits {
		e.receipts.Replay(c.Events)
	}
	return nil
}

// readable returns the conversation's aggregate, locked, once reader may
// see it. When the cached aggregate does not show reader in the pair, one
// read of the stream's first commit, which names the pair, decides: the
// same single bounded read whether the conversation does not exist, the
// reader is outside it or the cache is behind, so neither the answer nor
// its cost tells a stranger that two users talk (a reload of the whole
// stream would take longer the longer they had talked). Only a
// participant's entry is then brought up to date.
func (a *aggregates) readable(ctx context.Context, id conversation.ID, reader user.ID) (*aggregateEntry, error) {
	e := a.lock(id)
	if e.conv.CanRead(reader) == nil {
		return e, nil
	}
	err := a.checkFirstCommit(ctx, id, reader)
	if err == nil {
		err = a.refreshConversation(ctx, e)
	}
	if err != nil {
		e.mu.Unlock()
		return nil, err
	}
	return e, nil
}

// checkFirstCommit reads the commit that started the conversation, if
// any, and checks that reader is one of the pair it names.
func (a *aggregates) checkFirstCommit(ctx context.Context, id conversation.ID, reader user.ID) error {
	first, err := a.store.Load(ctx, conversation.MessagesStream(id), 1, 1)
	if err != nil {
		return err
	}
	started := conversation.New(id)
	for _, c := range first {
		started.Replay(c.Events)
	}
	return started.CanRead(reader)
}

// rememberPair caches the participants a commit that starts a
// conversation names.
func (a *aggregates) rememberPair(id conversation.ID, c ports.Commit) {
	for _, ev := range c.Events {
		if started, ok := ev.(conversation.ConversationStarted); ok {
			a.cachePair(id, started.Participants)
		}
	}
}

func (a *aggregates) cachePair(id conversation.ID, pair [2]user.ID) {
	a.pairsMu.Lock()
	defer a.pairsMu.Unlock()
	if len(a.pairs) >= maxCachedConversations {
		clear(a.pairs)
	}
	a.pairs[id] = pair
}

// participants returns a conversation's pair from the cache, or from its
// first commit, which started it.
func (a *aggregates) participants(ctx context.Context, id conversation.ID) ([2]user.ID, error) {
	a.pairsMu.RLock()
	pair, ok := a.pairs[id]
	a.pairsMu.RUnlock()
	if ok {
		return pair, nil
	}
	first, err := a.store.Load(ctx, conversation.MessagesStream(id), 1, 1)
	if err != nil {
		return pair, err
	}
	c := conversation.New(id)
	for _, commit := range first {
		c.Replay(commit.Events)
	}
	if !c.Started() {
		return pair, conversation.ErrNotFound
	}
	pair = c.Participants()
	a.cachePair(id, pair)
	return pair, nil
}

// afterCommit makes fn hear of each commit published from now on.
func (a *aggregates) afterCommit(fn func(ports.Commit)) {
	a.hooksMu.Lock()
	defer a.hooksMu.Unlock()
	a.onCommit = append(a.onCommit, fn)
}

// afterObserve makes fn hear of each commit the bus brings from now on.
func (a *aggregates) afterObserve(fn func(ports.Commit)) {
	a.hooksMu.Lock()
	defer a.hooksMu.Unlock()
	a.onObserve = append(a.onObserve, fn)
}

// committed tells the hooks of a commit that is stored and answered for:
// published by this node, or found stored when a resend asked for it.
func (a *aggregates) committed(c ports.Commit) {
	a.hooksMu.RLock()
	defer a.hooksMu.RUnlock()
	for _, fn := range a.onCommit {
		fn(c)
	}
}

// publish commits c through the transactional publisher and explains any
// outcome but COMMIT with an error callers can test with errors.Is.
func (a *aggregates) publish(ctx context.Context, c ports.Commit) error {
	a.republisher.publishing(c)
	state, err := a.publisher.Publish(ctx, c)
	if state == ports.TxCommit {
		a.republisher.acked(c)
		a.committed(c)
		return nil
	}
	// Not acked: a commit stored all the same is the resend's to find
	// (SendMessage.firstAck), or checkback's to publish.
	a.republisher.forget(c.ID)
	switch state {
	case ports.TxRollback:
		if errors.Is(err, ports.ErrVersionConflict) || errors.Is(err, ports.ErrDuplicateCommit) {
			return err
		}
	}
	if err == nil {
		err = errors.New("transaction not settled")
	}
	if errors.Is(err, ports.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %v", ports.ErrUnavailable, err)
}

// observe brings a cached aggregate forward with a commit seen on the bus, so
// the next command of this node neither loses a race it could have known of
// nor reads the store to learn what the bus already said.
//
// A commit that opens its stream also opens the cache entry: a node hears
// of a new conversation on the bus before it serves anything about it, and
// seeding the entry then spares it the store read of a cold entry later
// (on FerretDB a read of the whole commits collection).
func (a *aggregates) observe(c ports.Commit) {
	a.republisher.seen(c.ID)
	a.hooksMu.RLock()
	for _, fn := range a.onObserve {
		fn(c)
	}
	a.hooksMu.RUnlock()
	id, _ := conversation.StreamConversation(c.Stream)
	a.rememberPair(id, c)
	a.mu.Lock()
	e, ok := a.entries[id]
	if !ok && c.Version == 1 {
		if len(a.entries) >= maxCachedConversations {
			a.evictOne()
		}
		e = &aggregateEntry{conv: conversation.New(id), receipts: conversation.NewReceipts(id)}
		a.entries[id] = e
		ok = true
	}
	a.mu.Unlock()
	if !ok {
		return
	}
	e.observedMu.Lock()
	e.observed = append(e.observed, c)
	e.observedMu.Unlock()
	if e.mu.TryLock() {
		e.catchUp()
		e.mu.Unlock()
	}
}

// maxObserved bounds the commits an entry keeps for later; past it the
// oldest are dropped, costing only a store read should they be needed.
const maxObserved = 256

// catchUp applies the observed commits that continue the cached aggregates,
// in version order, and drops the rest; e.mu is held.
func (e *aggregateEntry) catchUp() {
	e.observedMu.Lock()
	pending := e.observed
	e.observed = nil
	e.observedMu.Unlock()
	if len(pending) == 0 {
		return
	}
	slices.SortFunc(pending, func(x, y ports.Commit) int { return cmp.Compare(x.Version, y.Version) })
	var later []ports.Commit
	for _, c := range pending {
		_, receipts := conversation.StreamConversation(c.Stream)
		switch {
		case receipts && c.Version == e.receipts.Version()+1:
			e.receipts.Replay(c.Events)
		case !receipts && c.Version == e.conv.Version()+1:
			e.conv.Replay(c.Events)
		case receipts && c.Version > e.receipts.Version()+1, !receipts && c.Version > e.conv.Version()+1:
			later = append(later, c)
		}
	}
	if len(later) == 0 {
		return
	}
	e.observedMu.Lock()
	e.observed = append(later, e.observed...)
	if over := len(e.observed) - maxObserved; over > 0 {
		e.observed = e.observed[over:]
	}
	e.observedMu.Unlock()
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
