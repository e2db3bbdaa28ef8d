package application

import (
	"context"
	"sync"
	"time"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/ports"
)

// A session's first message of a conversation.
//
// The broadcast consumer runs batches side by side, so a node may begin
// delivering seq N before seq N-1, and a session with no cursor yet in the
// conversation would start it at N and then drop N-1 as already passed:
// a message committed while the session was open that it never gets live
// (the fault-free loss of issue 13). So before a session's first message of
// a conversation, delivery pushes what the session is owed below it:
// every message the node had not begun to deliver when the session opened.
// What the node delivered before is the client's to fetch with sync, which
// runs on the open session and so reads all of it from the store.
//
// The node remembers, per conversation, the highest seq it began to deliver
// and when (deliveryStarts). When that start came before the session
// opened, the owed messages are exactly those after it. When the node does
// not know (it restarted, or forgot the conversation) or the start came
// after the session opened (a batch racing this one), delivery reads the
// messages below N from the store and pushes them from the first one that
// may have been stored after the session opened: committed no earlier than
// the append budget (TxTimeout/2) plus a second of clock skew before it.
// Some of those the client may also get by sync, which costs a repeat,
// never a loss.

// firstPushPage bounds the messages read back when the node does not know
// what a session is owed: more than a conversation takes in a few seconds.
const firstPushPage = 100

// clockSkew is what the time bound allows between the clocks of the node
// that committed a message and the node that delivers it.
const clockSkew = time.Second

// deliveryStart is the highest seq of a conversation this node began to
// deliver, and the session tick at which it did.
type deliveryStart struct {
	seq, tick uint64
}

// deliveryStarts remembers the last start of each conversation, bounded: a
// forgotten conversation only costs its sessions' first messages a read.
type deliveryStarts struct {
	mu     sync.Mutex
	byConv map[conversation.ID]deliveryStart
}

// maxDeliveryStarts bounds the conversations remembered, some 10 MB.
const maxDeliveryStarts = 100_000

func newDeliveryStarts() *deliveryStarts {
	return &deliveryStarts{byConv: map[conversation.ID]deliveryStart{}}
}

// begin records that delivery of seq begins at tick and returns the start
// it follows, if the conversation is remembered.
func (d *deliveryStarts) begin(conv conversation.ID, seq, tick uint64) (before deliveryStart, known bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	before, known = d.byConv[conv]
	if known && seq <= before.seq {
		return before, known
	}
	if !known && len(d.byConv) >= maxDeliveryStarts {
		for c := range d.byConv {
			delete(d.byConv, c)
			break
		}
	}
	d.byConv[conv] = deliveryStart{seq: seq, tick: tick}
	return before, known
}

// owedBefore returns the messages st must be pushed before p, its first
// message of p's conversation, in seq order; st.mu is held.
func (d *Delivery) owedBefore(ctx context.Context, st *sessionState, p conversation.MessagePosted, before deliveryStart, known bool) ([]ports.Commit, error) {
	if owesNothingBelow(st, p, before, known) {
		return nil, nil
	}
	from := p.Seq - min(p.Seq-1, firstPushPage)
	if startedBeforeOpen(st, before, known) {
		from = before.seq + 1
	}
	commits, err := d.messages.Load(ctx, conversation.MessagesStream(p.Conversation), from, p.Seq-1)
	if err != nil || startedBeforeOpen(st, before, known) {
		return commits, err
	}
	return committedSince(commits, d.openedSince(st)), nil
}

// owesNothingBelow tells, without a read, that st is owed no message below
// p, its first of p's conversation: p is the first, or the node began to
// deliver the one before it before st opened. st.mu is held.
func owesNothingBelow(st *sessionState, p conversation.MessagePosted, before deliveryStart, known bool) bool {
	return p.Seq <= 1 || (startedBeforeOpen(st, before, known) && before.seq >= p.Seq-1)
}

// startedBeforeOpen tells whether before, the conversation's last start on
// this node, came before st opened.
func startedBeforeOpen(st *sessionState, before deliveryStart, known bool) bool {
	return known && before.tick < st.opened
}

// openedSince is the earliest CommittedAt of a message that may have been
// stored after st opened: one may be appended up to the append budget
// after it was built, on a node whose clock is up to clockSkew off.
func (d *Delivery) openedSince(st *sessionState) time.Time {
	return st.openedAt.Add(-d.appendBudget - clockSkew)
}

// committedSince returns commits from the first one built at or after
// since. Seq order is append order, not quite CommittedAt order: a run
// from the first recent one on leaves the cursor's run without a hole.
func committedSince(commits []ports.Commit, since time.Time) []ports.Commit {
	for i, c := range commits {
		if !c.CommittedAt.Before(since) {
			return commits[i:]
		}
	}
	return nil
}
