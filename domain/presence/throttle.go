package presence

import (
	"time"

	"github.com/evchat/chatd/domain/user"
)

// TypingInterval is the least time between two typing signals of one user
// in one conversation; PROTOCOL.md drops the ones in between silently.
const TypingInterval = 2 * time.Second

// TypingThrottle lets through at most one typing signal per user and
// conversation every TypingInterval. It is not safe for concurrent use.
type TypingThrottle struct {
	last map[typingKey]time.Time
}

type typingKey struct {
	user         user.ID
	conversation string
}

// NewTypingThrottle returns a throttle that has let nothing through yet.
func NewTypingThrottle() *TypingThrottle {
	return &TypingThrottle{last: map[typingKey]time.Time{}}
}

// Throttled reports whether a signal of u in conversation at now would
// come too soon after the last one let through.
func (t *TypingThrottle) Throttled(u user.ID, conversation string, now time.Time) bool {
	last, ok := t.last[typingKey{u, conversation}]
	return ok && now.Sub(last) < TypingInterval
}

// Allow lets the signal through, and records it, unless it is throttled.
func (t *TypingThrottle) Allow(u user.ID, conversation string, now time.Time) bool {
	if t.Throttled(u, conversation, now) {
		return false
	}
	t.last[typingKey{u, conversation}] = now
	return true
}

// Prune forgets the signals older than TypingInterval, which can no longer
// hold anything back; call it now and then so the throttle stays small.
func (t *TypingThrottle) Prune(now time.Time) {
	for k, last := range t.last {
		if now.Sub(last) >= TypingInterval {
			delete(t.last, k)
		}
	}
}
