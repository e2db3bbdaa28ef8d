package application

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// routeForwarder is the sending side of the hand-over. This node routes a
// message by what its directory knows, and may learn only afterwards that
// one of its users holds a session on another node: a join that was in
// flight, or one the bus lost and a heartbeat repaired. For the
// propagation window after a send it keeps the message, and when it learns
// of such a node it sends the message again to that node alone, so the
// new session gets it as soon as the join arrives here. The receiving
// node's own catch-up (handOver) stays, for what this node never
// forwards: it may crash first.
type routeForwarder struct {
	publisher ports.TransactionalPublisher
	clock     ports.Clock
	window    time.Duration
	log       *slog.Logger
	// holders are the nodes the directory says hold a session of a user.
	holders func(user.ID) []string
	// pairOf is a conversation's pair of users.
	pairOf func(context.Context, conversation.ID) ([2]user.ID, error)

	mu sync.Mutex
	// recent holds, per user, the messages concerning them sent with a
	// limited route within the window; each one's Route is where it has
	// gone so far.
	recent   map[user.ID][]*routedMessage
	forwards *workQueue[ports.Commit]
}

type routedMessage struct {
	commit ports.Commit
	sentAt time.Time
}

func newRouteForwarder(publisher ports.TransactionalPublisher, clock ports.Clock, window time.Duration, holders func(user.ID) []string,
	pairOf func(context.Context, conversation.ID) ([2]user.ID, error), log *slog.Logger) *routeForwarder {
	return &routeForwarder{publisher: publisher, clock: clock, window: window, holders: holders, pairOf: pairOf, log: log,
		recent: map[user.ID][]*routedMessage{}, forwards: newWorkQueue[ports.Commit]()}
}

// sent keeps c, just committed here, if its route left nodes out. Only
// messages, edits and recalls are kept: the guarantee is theirs, and a
// marker a session misses is made good by the next one.
func (f *routeForwarder) sent(c ports.Commit) {
	if !c.Route.Limited {
		return
	}
	users, ok := f.usersOf(c)
	if !ok {
		return
	}
	m := &routedMessage{commit: c, sentAt: f.clock.Now()}
	f.mu.Lock()
	for _, u := range users {
		f.recent[u] = append(f.recent[u], m)
	}
	f.mu.Unlock()
	// The route was made before the publication, and a join handled
	// meanwhile found nothing here to forward (seen in the churn e2e: a
	// session opened 4 ms before the send never got it live). So what
	// the directory knows now is checked too.
	for _, u := range users {
		for _, node := range f.holders(u) {
			if !c.Route.Reaches(node) {
				f.joined(node, u)
			}
		}
	}
}

// usersOf is whom c's sessions belong to: a message's pair, or the pair
// of the conversation whose message c edits or recalls.
func (f *routeForwarder) usersOf(c ports.Commit) ([2]user.ID, bool) {
	for _, ev := range c.Events {
		switch ev := ev.(type) {
		case conversation.MessagePosted:
			return [2]user.ID{ev.From, ev.To}, true
		case conversation.MessageEdited, conversation.MessageRecalled:
			return f.pairOfStream(c.Stream)
		}
	}
	return [2]user.ID{}, false
}

// pairOfStream is the pair of the conversation stream belongs to.
func (f *routeForwarder) pairOfStream(stream string) ([2]user.ID, bool) {
	id, _ := conversation.StreamOf(stream)
	ctx, cancel := context.WithTimeout(context.Background(), f.window)
	defer cancel()
	pair, err := f.pairOf(ctx, id)
	return pair, err == nil
}

// joined is told that node now holds a session of u, and forwards to it
// what it has not been sent of u's recent messages.
func (f *routeForwarder) joined(node string, u user.ID) {
	since := f.clock.Now().Add(-f.window)
	var forwards []ports.Commit
	f.mu.Lock()
	for _, m := range f.recent[u] {
		if m.sentAt.Before(since) || m.commit.Route.Reaches(node) {
			continue
		}
		m.commit.Route = ports.RouteTo(append(slices.Clone(m.commit.Route.Nodes), node)...)
		forward := m.commit
		forward.Route = ports.RouteTo(node)
		forwards = append(forwards, forward)
	}
	f.mu.Unlock()
	f.forwards.push(forwards...)
}

// prune forgets the messages sent before the window.
func (f *routeForwarder) prune(now time.Time) {
	since := now.Add(-f.window)
	f.mu.Lock()
	defer f.mu.Unlock()
	for u, ms := range f.recent {
		ms = slices.DeleteFunc(ms, func(m *routedMessage) bool { return m.sentAt.Before(since) })
		if len(ms) == 0 {
			delete(f.recent, u)
		} else {
			f.recent[u] = ms
		}
	}
}

// run sends the forwards until stop is closed; a failed one is left to
// the receiving node's catch-up.
func (f *routeForwarder) run(stop <-chan struct{}) {
	for {
		batch, ok := f.forwards.pop(stop)
		if !ok {
			return
		}
		for _, c := range batch {
			ctx, cancel := context.WithTimeout(context.Background(), f.window)
			if err := f.publisher.Republish(ctx, c); err != nil {
				f.log.Warn("message not forwarded to a node its user joined", "commit", c.ID, "node", c.Route.Nodes, "err", err)
			}
			cancel()
		}
	}
}
