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
}

var _ ports.TransactionHandler = (*Transactions)(nil)

// NewTransactions builds the handler; timeout is the transaction timeout
// after which checkback gives up on a commit that never reached the store.
func NewTransactions(store ports.EventStore, clock ports.Clock, timeout time.Duration) (*Transactions, error) {
	if store == nil || clock == nil || timeout <= 0 {
		return nil, errors.New("transactions: store, clock and a positive timeout are required")
	}
	return &Transactions{store: store, clock: clock, timeout: timeout}, nil
}

// ExecuteLocal appends c. The append is bounded well inside the transaction
// timeout, so that checkback's "absent and older than the timeout" can never
// roll back an append that is still under way.
func (t *Transactions) ExecuteLocal(ctx context.Context, c ports.Commit) (ports.TxState, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout/2)
	defer cancel()
	err := t.store.Append(ctx, c)
	switch {
	case err == nil:
		return ports.TxCommit, nil
	case errors.Is(err, ports.ErrVersionConflict), errors.Is(err, ports.ErrDuplicateCommit):
		return ports.TxRollback, err
	}
	return ports.TxUnknown, err
}

// Check settles a half message by the durable store. A commit found under
// the same id but at another place is a later attempt of the same command,
// and this half message must not deliver a stale copy of it.
func (t *Transactions) Check(ctx context.Context, c ports.Commit) ports.TxState {
	stored, err := t.store.FindCommit(ctx, c.ID)
	switch {
	case err == nil:
		if stored.Stream == c.Stream && stored.Version == c.Version {
			return ports.TxCommit
		}
		return ports.TxRollback
	case errors.Is(err, ports.ErrCommitNotFound):
		if t.clock.Now().Sub(c.CommittedAt) > t.timeout {
			return ports.TxRollback
		}
	}
	return ports.TxUnknown
}
