package application

import (
	"context"
	"sync"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// pairCache holds each conversation's participants, which never change,
// apart from the conversation cache: delivery needs them for every receipt
// and must never wait on a conversation's lock, which a command holds while
// it publishes and, with the bus's queue full, while delivery drains it.
type pairCache struct {
	streams ports.StreamReader

	mu    sync.RWMutex
	pairs map[conversation.ID][2]user.ID
}

func newPairCache(streams ports.StreamReader) *pairCache {
	return &pairCache{streams: streams, pairs: map[conversation.ID][2]user.ID{}}
}

// remember caches the participants a commit that starts a conversation names.
func (p *pairCache) remember(c ports.Commit) {
	for _, ev := range c.Events {
		if started, ok := ev.(conversation.ConversationStarted); ok {
			p.put(started.Conversation, started.Participants)
		}
	}
}

func (p *pairCache) put(id conversation.ID, pair [2]user.ID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pairs) >= maxCachedConversations {
		clear(p.pairs)
	}
	p.pairs[id] = pair
}

// participants returns a conversation's pair from the cache, or from its
// first commit, which started it.
func (p *pairCache) participants(ctx context.Context, id conversation.ID) ([2]user.ID, error) {
	p.mu.RLock()
	pair, ok := p.pairs[id]
	p.mu.RUnlock()
	if ok {
		return pair, nil
	}
	started, err := loadStarted(ctx, p.streams, id)
	if err != nil {
		return pair, err
	}
	if !started.Started() {
		return pair, conversation.ErrNotFound
	}
	pair = started.Participants()
	p.put(id, pair)
	return pair, nil
}

// loadStarted returns the conversation as its first commit, the one that
// started it and names the pair, left it: one bounded read, however long
// the conversation, and an empty aggregate when there is none.
func loadStarted(ctx context.Context, streams ports.StreamReader, id conversation.ID) (*conversation.Conversation, error) {
	first, err := streams.Load(ctx, conversation.MessagesStream(id), 1, 1)
	if err != nil {
		return nil, err
	}
	started := conversation.New(id)
	for _, c := range first {
		started.Replay(c.Events)
	}
	return started, nil
}
