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
	switch msg.GetTags() {
	case tagProbe:
		return primitive.RollbackMessageState
	case tagWarmUp:
		return primitive.CommitMessageState
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
	switch msg.GetTags() {
	case tagProbe:
		return primitive.RollbackMessageState
	case tagWarmUp:
		return primitive.CommitMessageState
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

func localState(s ports.TxState) primitive.LocalTransactionState {
	switch s {
	case ports.TxCommit:
		return primitive.CommitMessageState
	case ports.TxRollback:
		return primitive.RollbackMessageState
	}
	return primitive.UnkonwnState
}

func txState(s primitive.LocalTransactionState) ports.TxState {
	switch s {
	case primitive.CommitMessageState:
		return ports.TxCommit
	case primitive.RollbackMessageState:
		return ports.TxRollback
	}
	return ports.TxUnknown
}
