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

// TxOutcome is how the publication of one commit ended: the state its
// caller is told and, for any state but TxCommit, why.
type TxOutcome struct {
	State TxState
	Err   error
}

// TransactionalPublisher publishes a commit so that it reaches subscribers
// if and only if the local transaction stored it. Adapters are built with the
// TransactionHandler whose callbacks they run.
//
// Commits may share a half message (a batch): one prepare, one local
// transaction that appends them all side by side, one end. The batch's half
// message carries every commit, its checkback asks Check of each, and
// subscribers get its commits one by one, each where its own Route reaches.
// A batch commits only when every commit of it is stored. A commit that was
// not (it lost its version race) must never be delivered, so such a batch
// is rolled back, and the commits it stored go out again in a new batch,
// whose local transaction only checks that they are stored (Check); a
// checkback that finds such a batch rolls it back and republishes them.
type TransactionalPublisher interface {
	// Publish sends c in a half message, runs the local transaction and ends
	// the transaction. It returns the state c's publication ended in and the
	// local transaction's error; a failure to reach the bus is
	// ErrUnavailable. Concurrent calls may share a half message.
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

// BatchPublisher is a TransactionalPublisher that can be handed a batch
// outright: what the bus adapters are, and what their contract suite
// drives to put a chosen batch, losers included, in one half message.
type BatchPublisher interface {
	TransactionalPublisher
	// PublishBatch publishes commits as one batch, the way concurrent
	// Publish calls may share one, and says how each commit's publication
	// ended, in order.
	PublishBatch(ctx context.Context, commits []Commit) []TxOutcome
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
