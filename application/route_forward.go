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
	// usersOf are whose sessions hear of a conversation: a direct
	// conversation's pair or a group's members (Delivery.usersOf).
	usersOf func(context.Context, conversation.ID) ([]user.ID, error)

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
	usersOf func(context.Context, conversation.ID) ([]user.ID, error), log *slog.Logger) *routeForwarder {
	return &routeForwarder{publisher: publisher, clock: clock, window: window, holders: holders, usersOf: usersOf, log: log,
		recent: map[user.ID][]*routedMessage{}, forwards: newWorkQueue[ports.Commit]()}
}

// sent keeps c, just committed here, if its route left nodes out: a
// message, an edit, a recall, a group's change or a receipt. A receipt too:
// the next one would make a missed marker good, but the last of a
// conversation has no next one, and a node whose directory was behind
// after the broker came back left a message "sent" on the other node's
// page for good (TestClusterBrokerDown, in CI).
func (f *routeForwarder) sent(c ports.Commit) {
	if !c.Route.Limited {
		return
	}
	users, ok := f.concerned(c)
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

// concerned is whom c's sessions belong to: a direct message's pair; the
// users of the conversation whose message c edits or recalls, or whose
// group c posts to or changes, with the users c adds or removes. A
// group's members come from what delivery has seen of its changes, which
// may not include c yet: the users c names make up for it.
func (f *routeForwarder) concerned(c ports.Commit) ([]user.ID, bool) {
	kept := false
	var named []user.ID
	for _, ev := range c.Events {
		switch ev := ev.(type) {
		case conversation.MessagePosted:
			if ev.To != "" {
				return []user.ID{ev.From, ev.To}, true
			}
			kept = true
		case conversation.MessageEdited, conversation.MessageRecalled, conversation.GroupRenamed, conversation.OwnerChanged,
			conversation.DeliveredUpTo, conversation.ReadUpTo:
			kept = true
		case conversation.GroupCreated:
			named, kept = append(named, ev.Members...), true
		case conversation.MemberAdded:
			named, kept = append(named, ev.User), true
		case conversation.MemberRemoved:
			named, kept = append(named, ev.User), true
		}
	}
	if !kept {
		return nil, false
	}
	id, _ := conversation.StreamOf(c.Stream)
	ctx, cancel := context.WithTimeout(context.Background(), f.window)
	defer cancel()
	users, err := f.usersOf(ctx, id)
	if err != nil && len(named) == 0 {
		return nil, false
	}
	for _, u := range named {
		users = appendNew(users, u)
	}
	return users, true
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
