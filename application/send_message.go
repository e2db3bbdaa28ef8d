package application

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// SendMessageCommand is one send as a client asks for it, its fields
// parsed by the transport that received it.
type SendMessageCommand struct {
	Sender user.ID
	// ClientID is the idempotency key; empty asks for a server-made one, as
	// the seed's frame without an id does.
	ClientID message.ClientID
	To       user.ID
	// Conversation sends by the conversation's id instead of To (PROTOCOL
	// v1.3): to a group's other members, or to the peer of a direct
	// conversation already started.
	Conversation conversation.ID
	Body         message.Body
	// Origin is the session that sent it, spared its own message on delivery.
	Origin string
}

// Ack confirms a message is durable and its publication committed.
type Ack struct {
	ClientID  string
	MessageID string
	// Conversation is in the type later commands about it take.
	Conversation conversation.ID
	Seq          uint64
	SentAt       time.Time
}

// SendMessage stores a message and publishes it in one RocketMQ-style
// transaction, idempotently on the client's key.
type SendMessage struct {
	conversations *conversationRepository
	clock         ports.Clock
	ids           ports.IDs
	attempts      int
	limits        *userLimits
}

func newSendMessage(cfg Config, conversations *conversationRepository, clock ports.Clock, ids ports.IDs) *SendMessage {
	return &SendMessage{conversations: conversations, clock: clock, ids: ids, attempts: cfg.MaxAttempts,
		limits: newUserLimits(cfg.SendRate, cfg.SendBurst, maxLimitedSenders)}
}

// Handle rate-limits and sends; it returns the ack only once the message
// is stored and its publication committed. Sending to oneself is the one
// rule left to check here: a transport does not know who sends.
func (s *SendMessage) Handle(ctx context.Context, cmd SendMessageCommand) (Ack, error) {
	if cmd.Conversation == "" && cmd.To == cmd.Sender {
		return Ack{}, conversation.ErrSelf
	}
	key := cmd.ClientID
	if key == "" {
		key = message.ClientID(s.ids.NewID())
	}
	if !s.limits.allow(cmd.Sender, s.clock.Now()) {
		return Ack{}, ErrRateLimited
	}
	id := message.IDFor(cmd.Sender, key)
	convID, to, err := s.recipient(ctx, cmd)
	if err != nil {
		return Ack{}, err
	}
	for attempt := 0; attempt < s.attempts; attempt++ {
		ack, err := s.try(ctx, convID, id, cmd, to, cmd.Body, attempt > 0)
		switch {
		case err == nil:
			ack.ClientID = string(key)
			return ack, nil
		case errors.Is(err, ports.ErrDuplicateCommit):
			return s.firstAck(ctx, id, string(key))
		case !errors.Is(err, ports.ErrVersionConflict):
			return Ack{}, err
		}
		if err := backOff(ctx, attempt); err != nil {
			return Ack{}, err
		}
	}
	return Ack{}, fmt.Errorf("%w: conversation too busy, gave up after %d attempts", ports.ErrUnavailable, s.attempts)
}

// try commits the message on the cached aggregate. A retry first reads what
// was stored since: after the back-off, not before it, so that the version
// it then claims is as fresh as it can be. Reading before the wait would
// hand a busy sender on another node the whole wait to take that version
// again, and a sender on the node that is behind could lose every attempt.
func (s *SendMessage) try(ctx context.Context, convID conversation.ID, id message.ID, cmd SendMessageCommand, to user.ID, body message.Body, retry bool) (Ack, error) {
	var ack Ack
	err := s.conversations.withConversation(convID, func(h *heldConversation) error {
		if retry {
			if err := h.loadMessages(ctx); err != nil {
				return err
			}
		}
		posted, next, err := s.post(ctx, h, id, cmd.Sender, to, body)
		if err != nil {
			return err
		}
		commit := ports.Commit{
			ID: string(id), Stream: conversation.MessagesStream(convID), Version: next.Version() + 1,
			Events: next.Uncommitted(), CommittedAt: posted.SentAt, Origin: cmd.Origin,
		}
		if err := h.saveMessages(ctx, next, commit); err != nil {
			return err
		}
		ack = ackOf(posted)
		return nil
	})
	return ack, err
}

// firstAck answers a resend with the ack of the message first stored.
func (s *SendMessage) firstAck(ctx context.Context, id message.ID, key string) (Ack, error) {
	stored, err := s.conversations.findSaved(ctx, string(id))
	if err != nil {
		return Ack{}, err
	}
	for _, ev := range stored.Events {
		if posted, ok := ev.(conversation.MessagePosted); ok {
			ack := ackOf(posted)
			ack.ClientID = key
			return ack, nil
		}
	}
	return Ack{}, fmt.Errorf("commit %s holds no message", id)
}

func ackOf(p conversation.MessagePosted) Ack {
	return Ack{MessageID: string(p.MessageID), Conversation: p.Conversation, Seq: p.Seq, SentAt: p.SentAt}
}

// userLimits holds one token bucket per sender on this node, in memory
// bounded whatever the number of distinct senders. A bucket that has
// refilled to its whole burst decides exactly as a new one would, so it is
// dropped without changing any decision: the map keeps only the senders of
// the last burst/rate (4 s by default), swept when it has doubled since
// the last sweep, which keeps the sweeps' cost amortized to O(1) a sender.
// Past maxSenders even so, the fullest buckets go: their senders gain the
// fewest tokens by starting afresh, and a throttled one is kept the longest.
type userLimits struct {
	limit      rate.Limit
	burst      int
	maxSenders int

	mu      sync.Mutex
	users   map[user.ID]*rate.Limiter
	sweepAt int
}

// maxLimitedSenders bounds the buckets held at once, some 20 MB of them.
const maxLimitedSenders = 100_000

// minSweep keeps a small map from being swept on every new sender.
const minSweep = 1024

func newUserLimits(perSecond float64, burst, maxSenders int) *userLimits {
	return &userLimits{limit: rate.Limit(perSecond), burst: burst, maxSenders: maxSenders,
		users: map[user.ID]*rate.Limiter{}, sweepAt: min(minSweep, maxSenders)}
}

// allow takes one of u's tokens at now. The bucket is used under the map's
// lock, so that a sweep never drops a bucket a send is taking a token from.
func (l *userLimits) allow(u user.ID, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.users[u]
	if !ok {
		if len(l.users) >= l.sweepAt {
			l.sweep(now)
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.users[u] = lim
	}
	return lim.AllowN(now, 1)
}

// sweep drops the full buckets and, at the cap, the fullest of the others
// down to three quarters of it; l.mu is held.
func (l *userLimits) sweep(now time.Time) {
	full := float64(l.burst)
	for u, lim := range l.users {
		if lim.TokensAt(now) >= full {
			delete(l.users, u)
		}
	}
	if len(l.users) >= l.maxSenders {
		type bucket struct {
			user   user.ID
			tokens float64
		}
		buckets := make([]bucket, 0, len(l.users))
		for u, lim := range l.users {
			buckets = append(buckets, bucket{u, lim.TokensAt(now)})
		}
		slices.SortFunc(buckets, func(a, b bucket) int { return cmp.Compare(b.tokens, a.tokens) })
		for _, b := range buckets[:len(buckets)-l.maxSenders*3/4] {
			delete(l.users, b.user)
		}
	}
	l.sweepAt = min(max(2*len(l.users), minSweep), l.maxSenders)
}
