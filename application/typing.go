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

// Typing relays "user is typing" to the other participant's sessions on
// every node: at most one signal per user and conversation every
// presence.TypingInterval leaves this node, and the rest are dropped
// without an error, so a burst of frames costs the broker one message.
// Only a participant may type. Nothing of it is stored: no event, no seq.
type Typing struct {
	node     string
	peerOf   peerLookup
	routeOf  routeLookup
	sessions *Sessions
	outbox   *signalOutbox
	clock    ports.Clock
	observer typingObserver

	mu       sync.Mutex
	throttle *presence.TypingThrottle
	prunedAt time.Time
}

// peerLookup finds the other participant of a conversation that u takes
// part in; a domain.NotFound error when u does not.
type peerLookup func(ctx context.Context, id conversation.ID, u user.ID) (user.ID, error)

// routeLookup is where a signal that concerns users goes (Presence.routeOf).
type routeLookup func(withSelf bool, users ...user.ID) ports.Route

// typingObserver is the part of PresenceObserver that typing tells.
type typingObserver interface {
	TypingRelayed()
	TypingDropped()
}

func newTyping(node string, peerOf peerLookup, routeOf routeLookup, sessions *Sessions, outbox *signalOutbox, clock ports.Clock, observer typingObserver) *Typing {
	return &Typing{node: node, peerOf: peerOf, routeOf: routeOf, sessions: sessions, outbox: outbox, clock: clock,
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
	peer, err := t.peerOf(ctx, id, cmd.User)
	if err != nil {
		return err
	}
	if !t.allow(cmd.User, conv, now) {
		t.observer.TypingDropped()
		return nil
	}
	t.push(peer, ports.TypingView{Conversation: conv, User: cmd.User})
	t.outbox.send(ports.Signal{Kind: ports.SignalTyping, Node: t.node, At: now,
		User: cmd.User, Conversation: conv, To: peer, Route: t.routeOf(false, peer)})
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
		t.push(s.To, ports.TypingView{Conversation: s.Conversation, User: s.User})
	}
}

// push sends the typing frame to to's sessions on this node.
func (t *Typing) push(to user.ID, v ports.TypingView) {
	for _, st := range t.sessions.of(to) {
		st.session.PushTyping(v)
	}
}
