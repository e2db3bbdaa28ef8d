package rocketmq

import (
	"sync"
	"time"
)

// rolledBackFlights remembers the batches this producer rolled back after
// their local transactions stored some commits, which it then publishes
// again in its next batch. A checkback of such a batch (its end of
// transaction lost, or not yet applied when the broker checked) answers
// rollback at once: checking it commit by commit would find those commits
// stored and publish them a further time (the contract's batch with a
// loser got its survivors three times in CI). A batch of a producer that
// died is checked as before.
type rolledBackFlights struct {
	mu     sync.Mutex
	tokens map[string]time.Time
}

// rolledBackMemory is how long a rollback is remembered: past the
// broker's first checks of a half message (transactionTimeOut, then
// transactionCheckInterval: 6 s and 30 s as deployed). Rollbacks are
// rare, one per lost version race.
const rolledBackMemory = 2 * time.Minute

func (r *rolledBackFlights) remember(token string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tokens == nil {
		r.tokens = map[string]time.Time{}
	}
	for t, at := range r.tokens {
		if now.Sub(at) > rolledBackMemory {
			delete(r.tokens, t)
		}
	}
	r.tokens[token] = now
}

// holds tells whether this producer rolled token's batch back within
// rolledBackMemory of now.
func (r *rolledBackFlights) holds(token string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.tokens[token]
	return ok && now.Sub(at) <= rolledBackMemory
}
