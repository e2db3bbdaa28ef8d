package ports

import (
	"context"
	"errors"
	"time"

	"github.com/evchat/chatd/domain/conversation"
)

// Commit is the unit of writing: the events one command recorded on one
// stream, stored as one document at one version, so no multi-document
// transaction is ever needed.
type Commit struct {
	// ID is unique across the store. It doubles as the transaction key of the
	// half message that publishes the commit; for a MessagePosted commit it is
	// the message id, which makes a resent message a duplicate.
	ID string
	// Stream is the aggregate's stream, Version the commit's 1-based position in it.
	Stream  string
	Version uint64
	Events  []conversation.Event
	// CommittedAt is when the command built the commit; checkback uses it to
	// tell a transaction still in flight from an abandoned one.
	CommittedAt time.Time
	// Origin names the session that caused the commit, so that delivery can
	// spare that session its own message; empty when no session did.
	Origin string
	// Route is where the commit must be delivered live; never stored, so a
	// commit read back reaches every node.
	Route Route
}

var (
	// ErrVersionConflict means another commit already holds that stream version.
	ErrVersionConflict = errors.New("version conflict")
	// ErrDuplicateCommit means a commit with that id is stored already.
	ErrDuplicateCommit = errors.New("duplicate commit id")
	// ErrCommitNotFound means no commit has that id.
	ErrCommitNotFound = errors.New("commit not found")
	// ErrUnavailable means the store or the broker cannot be reached now; the
	// outcome of a write may be unknown.
	ErrUnavailable = errors.New("unavailable")
)

// StreamReader reads commits back: all that the use cases which only read
// streams (queries, delivery, projections) are given of the event store.
type StreamReader interface {
	// Load returns the stream's commits with from <= Version <= to, in order;
	// to == 0 means to the end.
	Load(ctx context.Context, stream string, from, to uint64) ([]Commit, error)
}

// EventStore keeps every stream's commits in version order.
type EventStore interface {
	StreamReader
	// Append stores c if the stream is at c.Version-1 now: ErrVersionConflict
	// when that version is taken, ErrDuplicateCommit when c.ID is, and
	// ErrUnavailable when the store cannot say. It never writes c once ctx's
	// deadline has passed (checkback may have rolled c's transaction back
	// by then): an append still waiting then fails with ErrUnavailable.
	Append(ctx context.Context, c Commit) error
	// FindCommit returns the commit with the given id, or ErrCommitNotFound.
	FindCommit(ctx context.Context, id string) (Commit, error)
	// Ping reports whether the store answers, for readiness.
	Ping(ctx context.Context) error
}

// StreamScanner is the replay side of an event store: every stream, each
// commit in version order, a conversation's messages stream before its
// changes stream (replay applies an edit or a recall to a message already
// folded); other streams in any order.
type StreamScanner interface {
	Scan(ctx context.Context, fn func(Commit) error) error
}
