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
	presence   *Presence
	aggregates *aggregates

	mu       sync.Mutex
	throttle *presence.TypingThrottle
}

// TypingCommand says User is typing in Conversation.
type TypingCommand struct {
	User         user.ID
	Conversation conversation.ID
}

// Handle relays the signal, or drops it when it comes too soon.
func (t *Typing) Handle(ctx context.Context, cmd TypingCommand) error {
	id, conv := cmd.Conversation, string(cmd.Conversation)
	now := t.presence.clock.Now()
	// A pair in the throttle was authorized when it went in, so a burst
	// costs no aggregate lookup; an unauthorized one never goes in.
	t.mu.Lock()
	throttled := t.throttle.Throttled(cmd.User, conv, now)
	t.mu.Unlock()
	if throttled {
		t.presence.observer.TypingDropped()
		return nil
	}
	e, err := t.aggregates.readable(ctx, id, cmd.User)
	if err != nil {
		return err
	}
	peer := e.conv.Peer(cmd.User)
	e.mu.Unlock()
	t.mu.Lock()
	allowed := t.throttle.Allow(cmd.User, conv, now)
	t.mu.Unlock()
	if !allowed {
		t.presence.observer.TypingDropped()
		return nil
	}
	t.push(peer, ports.TypingView{Conversation: conv, User: cmd.User})
	t.presence.send(ports.Signal{Kind: ports.SignalTyping, Node: t.presence.cfg.Node, At: now,
		User: cmd.User, Conversation: conv, To: peer})
	t.presence.observer.TypingRelayed()
	return nil
}

// push sends the typing frame to to's sessions on this node.
func (t *Typing) push(to user.ID, v ports.TypingView) {
	for _, st := range t.presence.sessions.of(to) {
		st.session.PushTyping(v)
	}
}

func (t *Typing) prune(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.throttle.Prune(now)
}
