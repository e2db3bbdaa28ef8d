package application

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// peerCache holds, per user, the users they share a conversation with:
// the read model's answer, cached for a while, plus the conversations
// started since, learnt from the bus, because the projection that would
// show them may lag the first message by a moment.
type peerCache struct {
	readModel ports.ReadModel
	ttl       time.Duration

	mu      sync.Mutex
	entries map[user.ID]peerEntry
	// recent holds the pairs learnt within recentPeers, for the loads
	// that the projection may not have caught up with yet.
	recent map[user.ID][]learnt
}

type peerEntry struct {
	peers  []user.ID
	loaded time.Time
}

type learnt struct {
	peer user.ID
	at   time.Time
}

// maxPeerEntries bounds the cache; an evicted user is read again.
const maxPeerEntries = 100_000

// peersLimit bounds the conversations read to find a user's peers.
const peersLimit = 10_000

// recentPeers is how long a learnt pair is added to what the read model
// says; projections take far less.
const recentPeers = time.Minute

func newPeerCache(readModel ports.ReadModel, ttl time.Duration) *peerCache {
	return &peerCache{readModel: readModel, ttl: ttl,
		entries: map[user.ID]peerEntry{}, recent: map[user.ID][]learnt{}}
}

func (c *peerCache) of(ctx context.Context, u user.ID, now time.Time) ([]user.ID, error) {
	c.mu.Lock()
	e, ok := c.entries[u]
	c.mu.Unlock()
	if ok && now.Sub(e.loaded) < c.ttl {
		return e.peers, nil
	}
	views, err := c.readModel.ListFor(ctx, u, peersLimit)
	if err != nil {
		return nil, err
	}
	peers := make([]user.ID, 0, len(views))
	for _, v := range views {
		// Presence among a group's members is the group rules' to decide,
		// not yet this cache's.
		if v.IsGroup() {
			continue
		}
		if v.Participants[0] == u {
			peers = append(peers, v.Participants[1])
		} else {
			peers = append(peers, v.Participants[0])
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.recent[u] {
		peers = appendNew(peers, l.peer)
	}
	if len(c.entries) >= maxPeerEntries {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[u] = peerEntry{peers: peers, loaded: now}
	return peers, nil
}

// learn adds a new conversation's pair to what is known of either user.
func (c *peerCache) learn(a, b user.ID, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, pair := range [2][2]user.ID{{a, b}, {b, a}} {
		// A pair is learnt twice on the node that wrote the commit: when
		// it commits and when the bus brings it back.
		ls := slices.DeleteFunc(c.recent[pair[0]], func(l learnt) bool { return l.peer == pair[1] })
		c.recent[pair[0]] = append(ls, learnt{peer: pair[1], at: now})
		if e, ok := c.entries[pair[0]]; ok {
			// A copy: readers hold the old slice without the lock.
			e.peers = appendNew(append([]user.ID(nil), e.peers...), pair[1])
			c.entries[pair[0]] = e
		}
	}
}

// prune drops the learnt pairs the read model shows by now.
func (c *peerCache) prune(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for u, ls := range c.recent {
		kept := ls[:0]
		for _, l := range ls {
			if now.Sub(l.at) < recentPeers {
				kept = append(kept, l)
			}
		}
		if len(kept) == 0 {
			delete(c.recent, u)
		} else {
			c.recent[u] = kept
		}
	}
}

func appendNew(list []user.ID, u user.ID) []user.ID {
	if slices.Contains(list, u) {
		return list
	}
	return append(list, u)
}
