package rocketmq

import (
	"context"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/evchat/chatd/adapters/txbatch"
	"github.com/evchat/chatd/ports"
)

// listener adapts the publisher to the client's TransactionListener.
type listener struct{ p *Publisher }

// ExecuteLocalTransaction runs the local transactions of the batch the
// half message carries.
func (l listener) ExecuteLocalTransaction(msg *primitive.Message) primitive.LocalTransactionState {
	if state, ok := ownState(msg.GetTags()); ok {
		return state
	}
	v, ok := l.p.flights.Load(msg.GetProperty(propFlight))
	if !ok {
		// Not ours to decide: leave it to checkback, which reads the store.
		return primitive.UnkonwnState
	}
	return localState(txbatch.RunLocal(l.p.handler, v.(*flight).members))
}

// CheckLocalTransaction answers the broker's checkback from the store,
// for every commit of the batch. A batch rolled back while some of its
// commits are stored leaves them with no half message: they are
// republished here, since the producer that would have sent them again
// in a new batch may be dead. When it is this producer, it did
// (rolledBackFlights), and the answer is rollback at once.
func (l listener) CheckLocalTransaction(msg *primitive.MessageExt) primitive.LocalTransactionState {
	if state, ok := ownState(msg.GetTags()); ok {
		return state
	}
	if l.p.rolledBack.holds(msg.GetProperty(propFlight), time.Now()) {
		return primitive.RollbackMessageState
	}
	commits, err := decodeCommits(msg.Body)
	if err != nil {
		// A body we cannot read was never ours to commit.
		l.p.log.Error("checkback of an unreadable half message: rolling back", "msgId", msg.MsgId, "err", err)
		return primitive.RollbackMessageState
	}
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	state, stored := txbatch.Check(ctx, l.p.handler, commits)
	l.p.log.Debug("checkback", "commits", len(commits), "first", commits[0].ID, "state", state, "republished", len(stored))
	for _, c := range stored {
		if err := l.p.Republish(ctx, c); err != nil {
			// Unknown keeps the half message, so the broker asks again.
			l.p.log.Warn("checkback could not republish a stored commit of a rolled-back batch; asking to be checked again",
				"commit", c.ID, "err", err)
			return primitive.UnkonwnState
		}
	}
	return localState(state)
}

// ownState settles the publisher's own messages, which carry no commit: a
// readiness probe never commits, a warm-up always does.
func ownState(tag string) (primitive.LocalTransactionState, bool) {
	switch tag {
	case tagProbe:
		return primitive.RollbackMessageState, true
	case tagWarmUp:
		return primitive.CommitMessageState, true
	}
	return primitive.UnkonwnState, false
}

// txStates pairs the port's transaction states with the client's, one
// table for both directions; what is in neither is unknown.
var txStates = [...]struct {
	port   ports.TxState
	client primitive.LocalTransactionState
}{{ports.TxCommit, primitive.CommitMessageState}, {ports.TxRollback, primitive.RollbackMessageState}}

func localState(s ports.TxState) primitive.LocalTransactionState {
	for _, t := range txStates {
		if t.port == s {
			return t.client
		}
	}
	return primitive.UnkonwnState
}

func txState(s primitive.LocalTransactionState) ports.TxState {
	for _, t := range txStates {
		if t.client == s {
			return t.port
		}
	}
	return ports.TxUnknown
}
