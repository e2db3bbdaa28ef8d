package ports

import (
	"context"
	"time"

	"github.com/evchat/chatd/domain/user"
)

// SignalKind tells the ephemeral signals apart.
type SignalKind string

// Kinds of Signal. Heartbeat, join and leave are presence; typing is typing.
const (
	SignalHeartbeat SignalKind = "heartbeat"
	SignalJoin      SignalKind = "join"
	SignalLeave     SignalKind = "leave"
	SignalTyping    SignalKind = "typing"
)

// Signal is an ephemeral message between nodes: never stored, never
// retried, never part of an event stream. A lost one is healed by the next
// heartbeat (presence) or simply missed (typing).
type Signal struct {
	Kind SignalKind
	// Node is the sender; Seq grows with every signal it sends, across its
	// restarts too, so receivers can tell a late signal from a newer one.
	Node string
	Seq  uint64
	// At is when the sender made the signal; for a leave, when the user's
	// last session closed (their last-seen time).
	At time.Time
	// User joined or left (join, leave) or is typing (typing).
	User user.ID
	// Users is the whole set a heartbeat's node holds, or the members of
	// a group who hear that User types in it.
	Users []user.ID
	// Conversation and To: where the user types and whose sessions hear
	// it, in a direct conversation.
	Conversation string
	To           user.ID
	// Route: where a typing signal's To has sessions; presence signals,
	// the registry itself, reach every node.
	Route Route
}

// SignalHandler receives signals; it must not block for long.
type SignalHandler func(ctx context.Context, s Signal)

// Signals carries signals to every node, the sender included, as ordinary
// (not transactional) messages consumed in broadcasting mode.
type Signals interface {
	// Publish sends s once; ErrUnavailable when the bus cannot take it.
	Publish(ctx context.Context, s Signal) error
	// Subscribe registers h for every signal published on any node;
	// register before the adapter starts.
	Subscribe(h SignalHandler)
}

// LastSeen is when a user's last session closed.
type LastSeen struct {
	User user.ID
	At   time.Time
}

// LastSeenStore keeps each user's last-seen time across restarts: a read
// model of presence, written when a user goes offline.
type LastSeenStore interface {
	// Touch stores each time unless a later one is stored for that user.
	Touch(ctx context.Context, seen []LastSeen) error
	// Get returns the stored times of those of users that have one.
	Get(ctx context.Context, users []user.ID) (map[user.ID]time.Time, error)
}
