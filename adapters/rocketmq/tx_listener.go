package rocketmq

import (
	"context"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/evchat/chatd/ports"
)

// listener adapts the publisher to the client's TransactionListener.
type listener struct{ p *Publisher }

// ExecuteLocalTransaction runs the local transaction of the Publish call the
// half message belongs to.
func (l listener) ExecuteLocalTransaction(msg *primitive.Message) primitive.LocalTransactionState {
	if state, ok := ownState(msg.GetTags()); ok {
		return state
	}
	v, ok := l.p.flights.Load(msg.GetProperty(propFlight))
	if !ok {
		// Not ours to decide: leave it to checkback, which reads the store.
		return primitive.UnkonwnState
	}
	f := v.(*flight)
	state, err := l.p.handler.ExecuteLocal(f.ctx, f.commit)
	f.err = err
	return localState(state)
}

// CheckLocalTransaction answers the broker's checkback from the store.
func (l listener) CheckLocalTransaction(msg *primitive.MessageExt) primitive.LocalTransactionState {
	if state, ok := ownState(msg.GetTags()); ok {
		return state
	}
	c, err := decodeCommit(msg.Body)
	if err != nil {
		// A body we cannot read was never ours to commit.
		l.p.log.Error("checkback of an unreadable half message: rolling back", "msgId", msg.MsgId, "err", err)
		return primitive.RollbackMessageState
	}
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	state := l.p.handler.Check(ctx, c)
	l.p.log.Debug("checkback", "commit", c.ID, "stream", c.Stream, "version", c.Version, "state", state)
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
