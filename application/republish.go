package application

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/ports"
)

// Republishing what the bus did not bring back.
//
// A transaction ends with a message the bus may lose without anyone
// hearing of it (RocketMQ's end of transaction is one-way): a master that
// dies right after the local commit takes the end with it. The commit is
// acked and stored, but its message reaches no subscriber until that master
// returns and checks back, minutes later or never; delivery fills it in
// only when the conversation's next message comes, so a conversation's
// last message would never arrive live.
//
// Every node consumes every commit in broadcast, its own included, so the
// node that acked a commit expects it back on its own consumer. One that is
// not back within RepublishAfter is sent again from what this node
// committed, as an ordinary message (it is durable already), and every
// consumer drops the copy it already has: delivery by each session's cursor,
// the projector and the conversation cache by stream version, receipts by marker,
// presence by pair.
//
// A commit not back in time may only be late: a consumer that lags (a
// rebuilt consumer catching up, a loaded machine) brings back nothing for
// seconds. Republishing then would only add to what it must catch up on:
// a node sending 100 commits a second republished all of them, its
// consumer fell further behind, and it kept republishing for minutes after
// a broker's return. So a commit is sent again at once only when the bus
// has passed it, meaning a commit of this node watched no earlier than its
// ack came back; otherwise it gets one more RepublishAfter first, which
// still brings a lost one to its recipient within the 10 s issue 13 allows.
//
// The bus is judged per conversation first, because a consumer can lag on
// some queues only: a conversation's commits share its queue (its id is
// their sharding key), and in the failover suite a node whose consumer was
// 30 s behind on a few queues, while the others came back at once,
// republished 1,359 commits. So a commit whose conversation has a later
// commit of this node back is sent again at once; one whose conversation
// has a later commit of this node still out is waiting behind the same
// queue, and is held up to laneHoldWaits RepublishAfter longer before the rule above applies.
// The latest commit of a conversation has no later one to judge by, and
// keeps the rule above: a lagging queue costs at most one copy per
// conversation instead of one per commit.
//
// What it costs while all is well: a map insert before each publish, an
// update at its ack and a delete when the commit comes back, under one
// mutex. The insert comes before the publish, because the bus may bring the
// commit back before Publish returns. A
// commit still unseen is sent again with a doubling wait, at most
// maxRepublishes times, then left to checkback; at most maxAwaiting commits
// are watched, so a node whose consumer is stuck holds bounded memory and
// sends each commit a bounded number of times.

// DefaultRepublishAfter is how long an acked commit may take to come back
// on this node's own consumer before it is sent again. A commit normally
// comes back within milliseconds (4.4 ms median, 21 ms p99 on an idle
// broker; end to end, the whole stack's p99 at 500 msg/s measured 0.3 to
// 0.55 s), so 3 s leaves a wide margin against republishing what is merely
// late, yet with a sweep's delay and the send it brings an acked message to
// its recipient well within the 10 s that issue 13 allows after a broker's
// death, where the checkback of a dead master waits for its return.
const DefaultRepublishAfter = 3 * time.Second

// maxRepublishes bounds how often one commit is sent again. With the wait
// doubling from RepublishAfter (3, 6, 12 and 24 s by default), a commit
// still unseen 45 s after its ack is left to checkback, which by then has
// run on any broker that is up, and to the conversation's next message.
const maxRepublishes = 3

// maxAwaiting bounds the commits watched; past it, new commits are not
// watched (logged once) until the watch drains, and fall back to checkback.
// Tens are watched while all is well; this is over 20 s of commits at the
// 500 msg/s the benchmarks run.
const maxAwaiting = 10_000

// sweepsPerWait is how many times per RepublishAfter the watch looks for
// commits due: a commit is sent again at most RepublishAfter/sweepsPerWait
// later than due.
const sweepsPerWait = 5

// laneHoldWaits is how many RepublishAfter longer than its due a commit is
// held while a later commit of its conversation is out too: its queue is
// behind, and the later one's return will tell whether this one was lost.
const laneHoldWaits = 3

// republishWorkers bounds the republishes under way at once.
const republishWorkers = 8

// Republisher watches the commits this node acked until its consumer
// brings them back, and sends again those that do not come.
type Republisher struct {
	publisher ports.TransactionalPublisher
	clock     ports.Clock
	after     time.Duration
	log       *slog.Logger

	mu       sync.Mutex
	awaiting map[string]awaited
	// passed is the latest watch start of a commit the bus brought back:
	// every commit acked no later has been passed by the bus.
	passed time.Time
	// lanes is passed per conversation, for the conversations with
	// commits watched.
	lanes map[conversation.ID]*lane
	// overflowing is set while the watch is full, so it is logged once.
	overflowing bool

	cancel context.CancelFunc
	done   sync.WaitGroup
}

// awaited is a commit this node publishes or acked, not yet seen back.
type awaited struct {
	commit ports.Commit
	// due is when the commit is next sent again; zero while its
	// transaction is still being published, which no republish may
	// overtake: only an acked commit is known to be durable.
	due         time.Time
	republished int
	// watched is when the watch began; acked, when the commit was acked
	// (or found stored).
	watched, acked time.Time
}

// republishedBy is how long after its ack a commit whose end was lost is
// sent again at the latest: its due, the holds of a lane that is behind,
// and a sweep's period.
func (r *Republisher) republishedBy() time.Duration {
	return (1+laneHoldWaits)*r.after + r.after/sweepsPerWait
}

func newRepublisher(publisher ports.TransactionalPublisher, clock ports.Clock, after time.Duration, log *slog.Logger) *Republisher {
	if after <= 0 {
		after = DefaultRepublishAfter
	}
	return &Republisher{publisher: publisher, clock: clock, after: after, log: log, awaiting: map[string]awaited{},
		lanes: map[conversation.ID]*lane{}}
}

// lane is what the bus has brought back of one conversation's commits.
type lane struct {
	// watching counts the conversation's commits watched, so that the
	// lane is dropped with the last of them.
	watching int
	// passed is the latest watch start of a commit of the conversation
	// that came back.
	passed time.Time
}

func laneOf(c ports.Commit) conversation.ID {
	id, _ := conversation.StreamOf(c.Stream)
	return id
}

// unwatch stops watching a; r.mu is held.
func (r *Republisher) unwatch(id string, a awaited) {
	delete(r.awaiting, id)
	conv := laneOf(a.commit)
	if l := r.lanes[conv]; l != nil {
		if l.watching--; l.watching <= 0 {
			delete(r.lanes, conv)
		}
	}
}

// publishing starts watching c, whose transaction is about to be published.
func (r *Republisher) publishing(c ports.Commit) {
	r.watch(c, time.Time{})
}

// acked says c's transaction committed: it is due unless seen in time.
func (r *Republisher) acked(c ports.Commit) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a, ok := r.awaiting[c.ID]; ok {
		a.acked = r.clock.Now()
		a.due = a.acked.Add(r.after)
		r.awaiting[c.ID] = a
	}
}

// ackedFromStore watches c, found stored when a resend asked for it: the
// transaction that stored it did not answer, and its message may be waiting
// for checkback. If it came long ago, the copy costs a drop.
func (r *Republisher) ackedFromStore(c ports.Commit) {
	r.watch(c, r.clock.Now().Add(r.after))
}

func (r *Republisher) watch(c ports.Commit, due time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.awaiting) >= maxAwaiting {
		if !r.overflowing {
			r.overflowing = true
			r.log.Warn("too many commits not seen back on the bus; not watching more until they are",
				"watched", len(r.awaiting), "unwatched", c.ID)
		}
		return
	}
	if _, ok := r.awaiting[c.ID]; !ok {
		now := r.clock.Now()
		a := awaited{commit: c, due: due, watched: now}
		if !due.IsZero() {
			a.acked = now
		}
		r.awaiting[c.ID] = a
		l := r.lanes[laneOf(c)]
		if l == nil {
			l = &lane{}
			r.lanes[laneOf(c)] = l
		}
		l.watching++
	}
}

// forget stops watching a commit whose transaction was not acked.
func (r *Republisher) forget(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a, ok := r.awaiting[id]; ok {
		r.unwatch(id, a)
	}
}

// seen stops watching a commit the bus brought to this node, and records
// that the bus has passed what was acked before its watch began.
func (r *Republisher) seen(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a, ok := r.awaiting[id]; ok {
		if a.watched.After(r.passed) {
			r.passed = a.watched
		}
		if l := r.lanes[laneOf(a.commit)]; l != nil && a.watched.After(l.passed) {
			l.passed = a.watched
		}
		r.unwatch(id, a)
	}
}
