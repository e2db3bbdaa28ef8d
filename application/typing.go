package application

import (
	"context"
	"sync"
	"time"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/presence"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// Typing relays "user is typing" to the other participant's sessions, or
// a group's other members', on every node: at most one signal per user
// and conversation every presence.TypingInterval leaves this node, and the
// rest are dropped without an error, so a burst of frames costs the broker
// one message, whatever the group's size. Only a participant may type.
// Nothing of it is stored: no event, no seq.
type Typing struct {
	node     string
	othersOf othersLookup
	routeOf  routeLookup
	sessions *Sessions
	outbox   *signalOutbox
	clock    ports.Clock
	observer typingObserver

	mu       sync.Mutex
	throttle *presence.TypingThrottle
	prunedAt time.Time
}

// othersLookup finds the other members of a conversation that u takes
// part in; a domain.NotFound error when u does not.
type othersLookup func(ctx context.Context, id conversation.ID, u user.ID) ([]user.ID, error)

// routeLookup is where a signal that concerns users goes (Presence.routeOf).
type routeLookup func(withSelf bool, users ...user.ID) ports.Route

// typingObserver is the part of PresenceObserver that typing tells.
type typingObserver interface {
	TypingRelayed()
	TypingDropped()
}

func newTyping(node string, othersOf othersLookup, routeOf routeLookup, sessions *Sessions, outbox *signalOutbox, clock ports.Clock, observer typingObserver) *Typing {
	return &Typing{node: node, othersOf: othersOf, routeOf: routeOf, sessions: sessions, outbox: outbox, clock: clock,
		observer: observer, throttle: presence.NewTypingThrottle()}
}

// TypingCommand says User is typing in Conversation.
type TypingCommand struct {
	User         user.ID
	Conversation conversation.ID
}

// Handle relays the signal, or drops it when it comes too soon.
func (t *Typing) Handle(ctx context.Context, cmd TypingCommand) error {
	id, conv := cmd.Conversation, string(cmd.Conversation)
	now := t.clock.Now()
	// A pair in the throttle was authorized when it went in, so a burst
	// costs no conversation lookup; an unauthorized one never goes in.
	t.mu.Lock()
	throttled := t.throttle.Throttled(cmd.User, conv, now)
	t.mu.Unlock()
	if throttled {
		t.observer.TypingDropped()
		return nil
	}
	others, err := t.othersOf(ctx, id, cmd.User)
	if err != nil {
		return err
	}
	if !t.allow(cmd.User, conv, now) {
		t.observer.TypingDropped()
		return nil
	}
	signal := ports.Signal{Kind: ports.SignalTyping, Node: t.node, At: now,
		User: cmd.User, Conversation: conv, Route: t.routeOf(false, others...)}
	// A direct conversation's signal names its peer in To, as nodes
	// before groups expect.
	if id.Kind() == conversation.Group {
		signal.Users = others
	} else if len(others) == 1 {
		signal.To = others[0]
	}
	t.push(signal)
	if len(others) > 0 {
		t.outbox.send(signal)
	}
	t.observer.TypingRelayed()
	return nil
}

// allow records the signal unless it is throttled. It prunes the throttle
// at most once an interval, on the way, which keeps it as small as the
// typists of the last interval without a goroutine of its own.
func (t *Typing) allow(u user.ID, conv string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.prunedAt) >= presence.TypingInterval {
		t.throttle.Prune(now)
		t.prunedAt = now
	}
	return t.throttle.Allow(u, conv, now)
}

// handle relays a typing signal from another node to the sessions here.
func (t *Typing) handle(_ context.Context, s ports.Signal) {
	if s.Node == t.node || s.Kind != ports.SignalTyping {
		return
	}
	// A typing signal late by more than its interval says nothing true.
	if t.clock.Now().Sub(s.At) <= 2*presence.TypingInterval {
		t.push(s)
	}
}

// push sends the typing frame of s to the sessions on this node of its
// recipients: To, or a group's Users.
func (t *Typing) push(s ports.Signal) {
	v := ports.TypingView{Conversation: s.Conversation, User: s.User}
	for _, to := range append([]user.ID{s.To}, s.Users...) {
		for _, st := range t.sessions.of(to) {
			st.session.PushTyping(v)
		}
	}
}
