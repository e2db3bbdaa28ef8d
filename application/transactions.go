package application

import (
	"context"
	"errors"
	"time"

	"github.com/evchat/chatd/ports"
)

// Transactions is the local-transaction and checkback pair that every
// transactional publisher runs: the local transaction appends the commit to
// the event store; checkback asks the store whether it did.
type Transactions struct {
	store   ports.EventStore
	clock   ports.Clock
	timeout time.Duration
	settled *settledCommits
}

var _ ports.TransactionHandler = (*Transactions)(nil)

// NewTransactions builds the handler; timeout is the transaction timeout
// after which checkback gives up on a commit that never reached the store.
func NewTransactions(store ports.EventStore, clock ports.Clock, timeout time.Duration) (*Transactions, error) {
	if store == nil || clock == nil || timeout <= 0 {
		return nil, errors.New("transactions: store, clock and a positive timeout are required")
	}
	return &Transactions{store: store, clock: clock, timeout: timeout, settled: newSettledCommits(maxSettledCommits)}, nil
}

// ExecuteLocal appends c, and gives the append until half the transaction
// timeout after c was built. That deadline, not the start of this call, is
// what counts: the half message was sent in between, and checkback measures
// from c.CommittedAt too. The store must not write c once the deadline has
// passed (ports.EventStore.Append); a store that cannot finish in time fails,
// the transaction stays unknown, and the client is told `unavailable` and
// resends, its idempotency key answering with the first ack if c did land.
func (t *Transactions) ExecuteLocal(ctx context.Context, c ports.Commit) (ports.TxState, error) {
	ctx, cancel := context.WithTimeout(ctx, t.appendBudget(c))
	defer cancel()
	err := t.store.Append(ctx, c)
	switch {
	case err == nil:
		t.settled.stored(c.ID, commitPlace{c.Stream, c.Version})
		return ports.TxCommit, nil
	case errors.Is(err, ports.ErrVersionConflict), errors.Is(err, ports.ErrDuplicateCommit):
		return ports.TxRollback, err
	}
	return ports.TxUnknown, err
}

// appendBudget is what is left of half the timeout since c was built.
func (t *Transactions) appendBudget(c ports.Commit) time.Duration {
	return t.timeout/2 - t.clock.Now().Sub(c.CommittedAt)
}

// Check settles a half message by the durable store. A commit found under
// the same id but at another place is a later attempt of the same command,
// and this half message must not deliver a stale copy of it.
//
// A commit stored while its transaction is rolled back cannot happen. Only
// an absent commit is rolled back, and only once the whole timeout has
// passed since c.CommittedAt, while its append could be written no later
// than half the timeout after it: every store gives up at its context's
// deadline (the MongoDB group commit drops a queued append whose deadline
// passed and writes a batch under its earliest member's deadline, which the
// driver sends as maxTimeMS; the memory store checks it under its lock).
// The other half of the timeout is the margin for what no deadline
// controls: an insert the server finishes as maxTimeMS fires, and the
// clocks of the node that built c and the node that checks back.
// FindCommit must see every write acknowledged before it (on MongoDB: read
// the primary, the driver's default).
// A commit found is committed whatever its age, so an append that landed
// though its caller had given up is published, and a resend gets its ack.
// Where a commit is stored is remembered (settledCommits), and a check of
// a commit remembered reads nothing.
func (t *Transactions) Check(ctx context.Context, c ports.Commit) ports.TxState {
	place, known := t.settled.find(c.ID)
	if !known {
		stored, err := t.store.FindCommit(ctx, c.ID)
		switch {
		case errors.Is(err, ports.ErrCommitNotFound):
			if t.clock.Now().Sub(c.CommittedAt) > t.timeout {
				return ports.TxRollback
			}
			return ports.TxUnknown
		case err != nil:
			return ports.TxUnknown
		}
		place = commitPlace{stored.Stream, stored.Version}
		t.settled.stored(c.ID, place)
	}
	if place == (commitPlace{c.Stream, c.Version}) {
		return ports.TxCommit
	}
	return ports.TxRollback
}
