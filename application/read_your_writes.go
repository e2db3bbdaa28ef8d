package application

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// Read your own writes.
//
// The conversation list comes from the read model, which the projector
// builds once per cluster, in batches, a moment behind the bus (on RocketMQ,
// a clustering consumer with a linger of about 200 ms). A user who has just
// been acked a message, or has just received one on a session of this node,
// must nevertheless find it in their list. So this node keeps, per user and
// conversation, the position it has shown the user (recentPositions), and
// the list brings every view that lags such a position up to date from the
// store before it answers (ListConversations.catchUp).
//
// The other way, waiting (bounded) until the projector passes the
// positions, was not taken: it adds the projector's lag to every list that
// follows a message, and its whole bound to every list while the projector
// is down. Folding the commits a view lacks, with the projector's own Apply,
// answers at once with a lastSeq, lastMessage, markers and unread count that
// agree with each other by construction, since the store is what the
// projector folds too; it costs a read of each of the conversation's two
// streams, usually a document or two, and only for the conversations this
// node knows to be behind. The projector still writes its views in batches.

// positionMaxAge bounds how long a position is kept when no list prunes it.
// The projector passes a position within a second; one still ahead after
// this long means the projector is down, and lists then answer from the read
// model alone, as they would without this node's memory.
const positionMaxAge = 5 * time.Minute

// maxPositions bounds the positions kept; past it, after dropping the old
// ones, they all go, which costs only the guarantee for a moment.
const maxPositions = 100_000

// position is how far a user has been shown a conversation on this node.
type position struct {
	// lastSeq is the highest message seq acked to the user or received by one
	// of their sessions here.
	lastSeq uint64
	// receipts is the receipts stream version of the user's own latest marker.
	receipts uint64
	// changes is the changes stream version of the latest change of a
	// group this node made that names the user.
	changes uint64
	raised  time.Time
}

// shownBy tells whether v shows everything p requires.
func (p position) shownBy(v ports.ConversationView) bool {
	return v.LastSeq >= p.lastSeq && v.ReceiptsVersion >= p.receipts && v.ChangesVersion >= p.changes
}

// recentPositions remembers the positions the read model may not show yet.
type recentPositions struct {
	clock    ports.Clock
	sessions *Sessions
	// groups are whose sessions a group message is pushed to.
	groups *groupMembers

	mu     sync.Mutex
	byUser map[user.ID]map[conversation.ID]position
	size   int
	swept  time.Time
}

func newRecentPositions(clock ports.Clock, sessions *Sessions, groups *groupMembers) *recentPositions {
	return &recentPositions{clock: clock, sessions: sessions, groups: groups, byUser: map[user.ID]map[conversation.ID]position{}}
}

func (r *recentPositions) raise(u user.ID, conv conversation.ID, p position) {
	now := r.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.swept) >= positionMaxAge || r.size >= maxPositions {
		r.sweep(now)
	}
	convs, ok := r.byUser[u]
	if !ok {
		convs = map[conversation.ID]position{}
		r.byUser[u] = convs
	}
	old, ok := convs[conv]
	if !ok {
		r.size++
	}
	convs[conv] = position{lastSeq: max(old.lastSeq, p.lastSeq), receipts: max(old.receipts, p.receipts),
		changes: max(old.changes, p.changes), raised: now}
}

// sweep drops the positions older than positionMaxAge, and every position
// if that is not enough; r.mu is held.
func (r *recentPositions) sweep(now time.Time) {
	r.swept = now
	for u, convs := range r.byUser {
		for conv, p := range convs {
			if now.Sub(p.raised) >= positionMaxAge {
				delete(convs, conv)
				r.size--
			}
		}
		if len(convs) == 0 {
			delete(r.byUser, u)
		}
	}
	if r.size >= maxPositions {
		clear(r.byUser)
		r.size = 0
	}
}

// of returns a copy of u's positions.
func (r *recentPositions) of(u user.ID) map[conversation.ID]position {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.byUser[u]) == 0 {
		return nil
	}
	out := make(map[conversation.ID]position, len(r.byUser[u]))
	for conv, p := range r.byUser[u] {
		out[conv] = p
	}
	return out
}

// forget drops u's position in conv once the read model shows it, unless
// it was raised meanwhile past what v shows.
func (r *recentPositions) forget(u user.ID, conv conversation.ID, v ports.ConversationView) {
	r.mu.Lock()
	defer r.mu.Unlock()
	convs := r.byUser[u]
	if p, ok := convs[conv]; ok && p.shownBy(v) {
		delete(convs, conv)
		r.size--
		if len(convs) == 0 {
			delete(r.byUser, u)
		}
	}
}

// catchUp returns u's views with those behind this node's positions for u
// brought up to date from the store, in the read model's order (most recent
// activity first), and forgets the positions the read model shows by now.
func (l *ListConversations) catchUp(ctx context.Context, u user.ID, views []ports.ConversationView) ([]ports.ConversationView, error) {
	ahead := l.positions.of(u)
	if len(ahead) == 0 {
		return views, nil
	}
	listed := make(map[string]ports.ConversationView, len(views))
	for _, v := range views {
		listed[v.Conversation] = v
	}
	lagging := map[string]ports.ConversationView{}
	var unlisted []string
	// shown holds views the read model has by now though the list lacked
	// them: projected between the two reads, or beyond the list's limit.
	// Sorted in with the rest, the cut below tells which.
	var shown []ports.ConversationView
	for conv, p := range ahead {
		v, ok := listed[string(conv)]
		switch {
		case !ok:
			unlisted = append(unlisted, string(conv))
		case p.shownBy(v):
			l.positions.forget(u, conv, v)
		default:
			lagging[v.Conversation] = v
		}
	}
	if len(unlisted) > 0 {
		stored, err := l.readModel.GetMany(ctx, unlisted)
		if err != nil {
			return nil, err
		}
		for _, id := range unlisted {
			v, ok := stored[id]
			switch {
			case ok && ahead[conversation.ID(id)].shownBy(v):
				l.positions.forget(u, conversation.ID(id), v)
				shown = append(shown, v)
			case ok:
				lagging[id] = v
			default:
				lagging[id] = ports.ConversationView{Conversation: id}
			}
		}
	}
	if len(lagging) == 0 && len(shown) == 0 {
		return views, nil
	}
	out := slices.DeleteFunc(slices.Clone(views), func(v ports.ConversationView) bool {
		_, behind := lagging[v.Conversation]
		return behind
	})
	for _, v := range lagging {
		v = v.Clone()
		if err := l.foldStored(ctx, &v); err != nil {
			return nil, err
		}
		shown = append(shown, v)
	}
	for _, v := range shown {
		if slices.Contains(v.Users(), u) {
			out = append(out, v)
		}
	}
	slices.SortStableFunc(out, func(a, b ports.ConversationView) int { return b.LastActivity.Compare(a.LastActivity) })
	if len(out) > MaxConversations {
		out = out[:MaxConversations]
	}
	return out, nil
}

// foldStored applies to v the commits of its streams that it lacks, as
// replay folds them: a group's changes first, so that its members are there
// for its messages; then the messages and receipts; and the edits and
// recalls of those changes once more, now that the messages they change
// are there.
func (l *ListConversations) foldStored(ctx context.Context, v *ports.ConversationView) error {
	id := conversation.ID(v.Conversation)
	changes, err := l.streams.Load(ctx, conversation.ChangesStream(id), v.ChangesVersion+1, 0)
	if err != nil {
		return err
	}
	for _, c := range changes {
		Apply(v, c)
	}
	for _, stream := range []struct {
		name string
		from uint64
	}{
		{conversation.MessagesStream(id), v.MessagesVersion + 1},
		{conversation.ReceiptsStream(id), v.ReceiptsVersion + 1},
	} {
		commits, err := l.streams.Load(ctx, stream.name, stream.from, 0)
		if err != nil {
			return err
		}
		for _, c := range commits {
			Apply(v, c)
		}
	}
	for _, c := range changes {
		refoldMessageChanges(v, c)
	}
	return nil
}
