package application

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// peerCache holds, per user, the users they share a conversation with:
// the read model's answer, cached for a while, plus the conversations
// started since, learnt from the bus, because the projection that would
// show them may lag the first message by a moment. A group's membership
// changes are not learnt but unsettle the users they concern: their
// entries, and those naming them, are read afresh, and not kept, until
// the projection has surely caught up, so that a removed member stops
// seeing the group's presence as soon as the read model says so.
type peerCache struct {
	readModel ports.ReadModel
	ttl       time.Duration

	mu      sync.Mutex
	entries map[user.ID]peerEntry
	// recent holds the pairs learnt within recentPeers, for the loads
	// that the projection may not have caught up with yet.
	recent map[user.ID][]learnt
	// unsettled holds until when a user's entry is not kept.
	unsettled map[user.ID]time.Time
}

// peerEntry is what a user's presence may be shared with.
type peerEntry struct {
	// peers are everyone the user shares a conversation with: who may
	// ask the user's presence, and whose the user may ask.
	peers []user.ID
	// pushed are those of peers that hear of the user's presence changes
	// unasked: direct peers and co-members of small groups.
	pushed []user.ID
	loaded time.Time
}

// maxPushedGroup is the largest group whose members are pushed each
// other's presence changes unasked (PROTOCOL v1.3). Past it a single
// reconnection would fan out to hundreds of sessions, and a big group's
// members are mostly strangers, who may still ask.
const maxPushedGroup = 32

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
		entries: map[user.ID]peerEntry{}, recent: map[user.ID][]learnt{}, unsettled: map[user.ID]time.Time{}}
}

func (c *peerCache) of(ctx context.Context, u user.ID, now time.Time) (peerEntry, error) {
	c.mu.Lock()
	e, ok := c.entries[u]
	c.mu.Unlock()
	if ok && now.Sub(e.loaded) < c.ttl {
		return e, nil
	}
	views, err := c.readModel.ListFor(ctx, u, peersLimit)
	if err != nil {
		return peerEntry{}, err
	}
	e = peerEntry{peers: make([]user.ID, 0, len(views)), loaded: now}
	for _, v := range views {
		for _, m := range v.Users() {
			if m == u {
				continue
			}
			e.peers = appendNew(e.peers, m)
			if !v.IsGroup() || len(v.Members) <= maxPushedGroup {
				e.pushed = appendNew(e.pushed, m)
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.recent[u] {
		e.peers = appendNew(e.peers, l.peer)
		e.pushed = appendNew(e.pushed, l.peer)
	}
	if now.Before(c.unsettled[u]) {
		return e, nil
	}
	if len(c.entries) >= maxPeerEntries {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[u] = e
	return e, nil
}

// unsettle drops the entries of users and those naming them, and keeps
// them from being cached for recentPeers: a group's membership changed,
// which the read model may not show yet.
func (c *peerCache) unsettle(users []user.ID, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	until := now.Add(recentPeers)
	for _, u := range users {
		c.unsettled[u] = until
		delete(c.entries, u)
	}
	for k, e := range c.entries {
		if slices.ContainsFunc(e.peers, func(p user.ID) bool { return slices.Contains(users, p) }) {
			c.unsettled[k] = until
			delete(c.entries, k)
		}
	}
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
			// Copies: readers hold the old slices without the lock.
			e.peers = appendNew(slices.Clone(e.peers), pair[1])
			e.pushed = appendNew(slices.Clone(e.pushed), pair[1])
			c.entries[pair[0]] = e
		}
	}
}

// prune drops the learnt pairs the read model shows by now, and the
// users it has settled.
func (c *peerCache) prune(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	maps.DeleteFunc(c.unsettled, func(_ user.ID, until time.Time) bool { return !now.Before(until) })
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
