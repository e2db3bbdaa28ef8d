package application

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/ports"
)

// The hand-over: a session that opens on this node is owed, live and in
// seq order, every message of its conversations committed after it opened.
// A sending node routes a commit by what its directory knows, and for up
// to the propagation window it may not know yet that the user has just
// opened a session here: the commit then goes to other nodes only. The
// sending node forwards it here once it learns (routeForwarder), within
// milliseconds of the join in the common case; and this node catches the
// session up by itself from the store, once, after the window, for what
// no forward brought: a sender that crashed before it learnt. A commit
// committed after the window names this node, since every node knows the
// session by then, so the catch-up covers only those committed before.
//
// The catch-up waits, beyond the window, as long as a commit whose end of
// transaction was lost may take to be republished: such a commit reached
// no node, and the republisher sends it to every node; pushed sooner from
// the store, it would reach the few sessions that opened lately and hide
// whether the republisher works.
//
// A catch-up reads the user's most recently active conversations from the
// read model, and the store only for those whose last message is past the
// session's cursor (or, with no cursor, was committed after the session
// opened): a user who is not talking costs one read, and so does one who
// has only sent, whose own messages moved the cursor (passOwn). It pushes
// through delivery's cursors, under the session's lock, so a message the
// session already has is not pushed twice, and order holds against live
// delivery running beside it.
type handOver struct {
	delivery *Delivery
	sessions *Sessions
	clock    ports.Clock
	window   time.Duration
	// republishedBy is how long a commit whose end was lost may take to
	// be republished (Republisher.republishedBy).
	republishedBy time.Duration
	// routed tells whether delivery is routed: a node that receives every
	// commit has nothing to catch up on.
	routed func() bool
	log    *slog.Logger

	mu      sync.Mutex
	pending []dueCatchUp
}

// dueCatchUp is a session to catch up at a time.
type dueCatchUp struct {
	st *sessionState
	at time.Time
}

// catchUpConversations bounds the conversations one catch-up looks at, the
// most recently active first: a user who has just connected is in a few
// conversations at a time, not in all they ever had.
const catchUpConversations = 20

// maxPendingCatchUps bounds the catch-ups waiting: past it, during a storm
// of reconnections, the catch-ups of the newest sessions are dropped, and
// forwards and their clients' sync are what remains.
const maxPendingCatchUps = 200_000

func newHandOver(delivery *Delivery, sessions *Sessions, clock ports.Clock, window, republishedBy time.Duration, routed func() bool, log *slog.Logger) *handOver {
	return &handOver{delivery: delivery, sessions: sessions, clock: clock, window: window, republishedBy: republishedBy, routed: routed, log: log}
}

// busSlack is what the catch-up allows a republished commit to take on
// the bus, well above its latency here (p99 21 ms).
const busSlack = time.Second

// opened schedules the catch-up of a session that has just opened.
func (h *handOver) opened(st *sessionState) {
	if !h.routed() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.pending) >= maxPendingCatchUps {
		h.log.Warn("session not caught up: too many sessions opened at once", "user", st.session.User())
		return
	}
	h.pending = append(h.pending, dueCatchUp{st: st, at: st.openedAt.Add(h.window + h.republishedBy + busSlack)})
}

// run catches up what is due until stop is closed. The ticker only wakes
// it: what is due is decided by the injected clock.
func (h *handOver) run(stop <-chan struct{}) {
	ticker := time.NewTicker(min(max(h.window/20, 10*time.Millisecond), time.Second))
	defer ticker.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ticker.C:
			h.catchUpDue(h.clock.Now())
		}
	}
}

// catchUpDue catches up the sessions due by now that are still open.
func (h *handOver) catchUpDue(now time.Time) {
	h.mu.Lock()
	var due []dueCatchUp
	kept := h.pending[:0]
	for _, d := range h.pending {
		if now.Before(d.at) {
			kept = append(kept, d)
		} else {
			due = append(due, d)
		}
	}
	clear(h.pending[len(kept):])
	h.pending = kept
	h.mu.Unlock()
	for _, d := range due {
		if h.sessions.stateOf(d.st.session) != d.st {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := h.delivery.catchUpSession(ctx, d.st, d.st.openedAt.Add(h.window)); err != nil {
			h.log.Warn("session not caught up", "user", d.st.session.User(), "err", err)
		}
		cancel()
	}
}

// catchUpSession pushes to st what its conversations committed from its
// open until until that it has not been pushed.
func (d *Delivery) catchUpSession(ctx context.Context, st *sessionState, until time.Time) error {
	views, err := d.readModel.ListFor(ctx, st.session.User(), catchUpConversations)
	if err != nil {
		return err
	}
	since := d.openedSince(st)
	for _, v := range views {
		if v.LastMessage == nil {
			continue
		}
		if err := d.catchUpConversation(ctx, st, v.Conversation, v.LastMessage.Seq, v.LastMessage.SentAt, since, until); err != nil {
			return err
		}
	}
	return nil
}

// catchUpConversation pushes to st the messages of conv committed until
// until that it lacks: past its cursor, or, without one, those committed
// since it opened. One read, and only when the conversation's last
// message says there is something to push.
func (d *Delivery) catchUpConversation(ctx context.Context, st *sessionState, conv string, lastSeq uint64, lastSentAt, since, until time.Time) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	cur, known := st.cursors[conv]
	if (known && lastSeq <= cur.last) || (!known && lastSentAt.Before(since)) || st.removed[conv] {
		return nil
	}
	from := cur.last + 1
	if !known {
		from = lastSeq - min(lastSeq-1, firstPushPage)
	}
	commits, err := d.messages.Load(ctx, conversation.MessagesStream(conversation.ID(conv)), from, 0)
	if err != nil {
		return err
	}
	if !known {
		commits = committedSince(commits, since)
	}
	// Those committed later were routed here, or are live delivery's to
	// fill: a run stops at the first, so that the cursor has no hole.
	if i := slices.IndexFunc(commits, func(c ports.Commit) bool { return c.CommittedAt.After(until) }); i >= 0 {
		commits = commits[:i]
	}
	show, err := currentShow(ctx, d.messages, conversation.ID(conv), commits)
	if err != nil {
		return err
	}
	cur = d.pushRun(st, cur, commits, show)
	if cur.last == 0 {
		return nil
	}
	if st.cursors == nil {
		st.cursors = make(map[string]cursor, 1)
	}
	st.cursors[conv] = cur
	return nil
}
