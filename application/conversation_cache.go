package application

import (
	"cmp"
	"slices"
	"sync"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/ports"
)

// maxCachedConversations bounds the aggregate cache; an evicted conversation
// is simply loaded again from the store.
const maxCachedConversations = 100_000

// maxObserved bounds the commits an entry keeps for later; past it the
// oldest are dropped, costing only a store read should they be needed.
const maxObserved = 256

// conversationCache holds each conversation's aggregates (its messages and
// changes streams in one, its receipts in the other) at the last
// version this node saw. A stale entry costs one version conflict and a
// reload, never a wrong answer, because the store's unique (stream,
// version) decides every race.
type conversationCache struct {
	mu      sync.Mutex
	entries map[conversation.ID]*cachedConversation
}

// cachedConversation serialises the commands of one conversation on this
// node, so that local senders queue instead of racing each other for a
// version.
type cachedConversation struct {
	mu       sync.Mutex
	conv     *conversation.Conversation
	receipts *conversation.Receipts

	// observed holds commits seen on the bus while the entry was locked, for
	// the next holder to apply: the cache keeps up with other nodes' commits
	// without reading the store and without delivery waiting on a command.
	observedMu sync.Mutex
	observed   []ports.Commit
}

func newConversationCache() *conversationCache {
	return &conversationCache{entries: map[conversation.ID]*cachedConversation{}}
}

// lock returns the conversation's entry, locked and caught up with what
// the bus brought; the repository unlocks it.
func (c *conversationCache) lock(id conversation.ID) *cachedConversation {
	c.mu.Lock()
	e, ok := c.entries[id]
	if !ok {
		e = c.add(id)
	}
	c.mu.Unlock()
	e.mu.Lock()
	e.catchUp()
	return e
}

// add makes an empty entry for id; c.mu is held.
func (c *conversationCache) add(id conversation.ID) *cachedConversation {
	if len(c.entries) >= maxCachedConversations {
		c.evictOne()
	}
	e := &cachedConversation{conv: conversation.New(id), receipts: conversation.NewReceipts(id)}
	c.entries[id] = e
	return e
}

// evictOne drops an entry no command holds; c.mu is held.
func (c *conversationCache) evictOne() {
	for id, e := range c.entries {
		if e.mu.TryLock() {
			delete(c.entries, id)
			e.mu.Unlock()
			return
		}
	}
}

// observe brings a cached aggregate forward with a commit seen on the bus,
// so the next command of this node neither loses a race it could have
// known of nor reads the store to learn what the bus already said.
//
// A commit that opens its stream also opens the cache entry: a node hears
// of a new conversation on the bus before it serves anything about it, and
// seeding the entry then spares it the store read of a cold entry later
// (on FerretDB a read of the whole commits collection).
func (c *conversationCache) observe(id conversation.ID, commit ports.Commit) {
	c.mu.Lock()
	e, ok := c.entries[id]
	if !ok && commit.Version == 1 {
		e, ok = c.add(id), true
	}
	c.mu.Unlock()
	if !ok {
		return
	}
	e.observedMu.Lock()
	e.observed = append(e.observed, commit)
	e.observedMu.Unlock()
	if e.mu.TryLock() {
		e.catchUp()
		e.mu.Unlock()
	}
}

// aggregateOf is the cached aggregate that stream's commits apply to; e.mu is held.
func (e *cachedConversation) aggregateOf(stream string) streamAggregate {
	switch _, kind := conversation.StreamOf(stream); kind {
	case conversation.StreamReceipts:
		return e.receipts
	case conversation.StreamChanges:
		return changesOf{e.conv}
	}
	return e.conv
}

// catchUp applies the observed commits that continue the cached aggregates,
// in version order, and drops the rest; e.mu is held.
func (e *cachedConversation) catchUp() {
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
		held := e.aggregateOf(c.Stream)
		switch {
		case c.Version == held.Version()+1:
			held.Replay(c.Events)
		case c.Version > held.Version()+1:
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
