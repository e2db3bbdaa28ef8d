package ports

import "context"

// TxState is how a transactional publication ends, as RocketMQ names it.
type TxState int

const (
	// TxUnknown means the local outcome is not known yet; ask again by checkback.
	TxUnknown TxState = iota
	// TxCommit means the local commit is durable; deliver the message.
	TxCommit
	// TxRollback means the local commit did not happen; drop the message.
	TxRollback
)

func (s TxState) String() string {
	switch s {
	case TxCommit:
		return "commit"
	case TxRollback:
		return "rollback"
	}
	return "unknown"
}

// TransactionHandler is the application's side of a transactional message.
type TransactionHandler interface {
	// ExecuteLocal runs the local transaction (append c to the store) after the
	// half message is stored by the bus, and says how to end it. The error
	// explains a rollback or an unknown outcome to the publisher's caller.
	ExecuteLocal(ctx context.Context, c Commit) (TxState, error)
	// Check answers the bus asking about a half message whose end it never
	// heard of; it must read the durable store.
	Check(ctx context.Context, c Commit) TxState
}

// TransactionalPublisher publishes a commit so that it reaches subscribers
// if and only if the local transaction stored it. Adapters are built with the
// TransactionHandler whose callbacks they run.
type TransactionalPublisher interface {
	// Publish sends c as a half message, runs the local transaction and ends
	// the transaction. It returns the state it ended in and the local
	// transaction's error; a failure to reach the bus is ErrUnavailable.
	Publish(ctx context.Context, c Commit) (TxState, error)
	// Republish sends c again as an ordinary message, ending no transaction
	// and running no callback: c is committed and durable already, but the
	// end of its transaction may have been lost on the way to the bus (it is
	// one-way on RocketMQ). Every subscriber gets it as it gets a committed
	// commit, possibly a second time. ErrUnavailable when the bus cannot
	// take it.
	Republish(ctx context.Context, c Commit) error
	// Ping reports whether the bus answers, for readiness.
	Ping(ctx context.Context) error
}

// CommitHandler consumes committed commits, a batch at a time. Commits of one
// stream may come out of order or more than once; handlers cope.
type CommitHandler func(ctx context.Context, commits []Commit) error

// Subscriber hands committed commits to handlers. Register before the
// adapter starts.
type Subscriber interface {
	// Deliver gives h, on this node, the committed commits whose Route
	// reaches this node, and those this node published, whose return its
	// republisher waits for; in broadcast mode, or on a bus that cannot
	// filter, every committed commit. A failed batch is not redelivered:
	// the store is the truth, the bus a signal.
	Deliver(name string, h CommitHandler)
	// Cluster gives every committed commit to h on one node of the cluster,
	// redelivering a failed batch a bounded number of times.
	Cluster(group string, h CommitHandler)
	Routing
}
