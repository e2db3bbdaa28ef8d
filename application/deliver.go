package application

import (
	"context"
	"log/slog"
	"time"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// Delivery pushes committed commits to the sessions of this node: messages
// to the recipient's sessions and the sender's other sessions, each
// conversation in seq order and once per session, with any gap filled from
// the store; receipts to both participants; edits and recalls to both, in
// rev order (deliver_changes.go). The bus only signals; the store
// is the truth, which is why a lost or late broadcast costs latency, not data.
//
// A pushed message is only queued on its session; the recipient's delivered
// marker moves when the transport reports it Written to the connection, so
// that frames a slow session drops when it is disconnected never count, and
// only over what the recipient has from the first message on: a session
// that opened at seq 10 has not got 1-9 until it fetches them (PageWritten).
type Delivery struct {
	conversations *conversationRepository
	messages      ports.StreamReader
	// readModel lists a user's conversations for the hand-over's catch-up.
	readModel ports.ReadModel
	sessions  *Sessions
	observer  DeliveryObserver
	marks     *deliveredMarks
	starts    *deliveryStarts
	changes   *recentChanges
	groups    *groupMembers
	// appendBudget is how long after its CommittedAt a commit may still be
	// appended to the store: half the transaction timeout.
	appendBudget time.Duration
	log          *slog.Logger
}

// Handle delivers a batch of commits; it is this node's delivery consumer.
func (d *Delivery) Handle(ctx context.Context, commits []ports.Commit) error {
	d.observer.CommitsReceived(commits)
	for _, c := range commits {
		d.conversations.observe(c)
		d.pushMembership(ctx, c)
		for _, ev := range c.Events {
			switch ev := ev.(type) {
			case conversation.MessagePosted:
				d.deliverMessage(ctx, ev, c.Origin)
			case conversation.DeliveredUpTo:
				d.pushReceipt(ctx, ev.Conversation, ports.Receipt{Conversation: string(ev.Conversation), User: ev.User, DeliveredUpTo: ev.Seq})
			case conversation.ReadUpTo:
				d.pushReceipt(ctx, ev.Conversation, ports.Receipt{Conversation: string(ev.Conversation), User: ev.User, ReadUpTo: ev.Seq})
			case conversation.MessageEdited, conversation.MessageRecalled:
				u, _ := updateOf(ev)
				d.deliverUpdate(ctx, c, u)
			}
		}
	}
	return nil
}

// Wait blocks until the delivered markers this node owes are written, or ctx ends.
func (d *Delivery) Wait(ctx context.Context) { d.marks.wait(ctx) }

// Written is the transport's report that message seq of conversation, sent
// to user to, was written to session s's connection. Only the recipient's
// sessions move its delivered marker; the sender's other sessions do not.
// A group message has no to: it is every member's whose session got it.
// The session has every message from the first one pushed to it on.
func (d *Delivery) Written(s ports.Session, conv string, to user.ID, seq uint64) {
	if to == "" {
		to = s.User()
	}
	if s.User() != to {
		return
	}
	first := seq
	if st := d.sessions.stateOf(s); st != nil {
		st.mu.Lock()
		if c, ok := st.cursors[conv]; ok {
			first = min(first, c.first)
			c.written = max(c.written, seq)
			st.cursors[conv] = c
		}
		st.mu.Unlock()
	}
	d.marks.add(conversation.ID(conv), to, conversation.SeqRange{From: first, To: seq})
}

// PageWritten is the transport's report that a page of conversation's
// messages, seqs from through to, was written to session s's connection
// (an answer to sync): its user has those messages, whoever wrote them,
// and, when the page reaches the messages pushed to the session, those
// it has written since.
func (d *Delivery) PageWritten(s ports.Session, conv string, from, to uint64) {
	if st := d.sessions.stateOf(s); st != nil {
		st.mu.Lock()
		if c, ok := st.cursors[conv]; ok && c.first <= to+1 {
			to = max(to, c.written)
		}
		st.mu.Unlock()
	}
	d.marks.add(conversation.ID(conv), s.User(), conversation.SeqRange{From: from, To: to})
}

func (d *Delivery) deliverMessage(ctx context.Context, p conversation.MessagePosted, origin string) {
	before, known := d.starts.begin(p.Conversation, p.Seq, d.sessions.tick())
	for _, u := range d.recipientsOf(ctx, p) {
		for _, st := range d.sessions.of(u) {
			d.deliverInOrder(ctx, st, p, origin, before, known)
		}
	}
}

// deliverInOrder pushes p to one session after any messages it missed: on
// its cursor, the gap since the last one; without, what it is owed (see
// owedBefore).
func (d *Delivery) deliverInOrder(ctx context.Context, st *sessionState, p conversation.MessagePosted, origin string, before deliveryStart, startKnown bool) {
	if origin != "" && origin == st.session.ID() {
		passOwn(st, p, before, startKnown)
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	conv := string(p.Conversation)
	cur, known := st.cursors[conv]
	if (known && p.Seq <= cur.last) || st.removed[conv] {
		return
	}
	var (
		missed []ports.Commit
		err    error
	)
	switch {
	case known && p.Seq > cur.last+1:
		missed, err = d.messages.Load(ctx, conversation.MessagesStream(p.Conversation), cur.last+1, p.Seq-1)
	case !known:
		missed, err = d.owedBefore(ctx, st, p, before, startKnown)
	}
	var show showMessage
	if err == nil {
		show, err = currentShow(ctx, d.messages, p.Conversation, missed)
	}
	if err != nil {
		// Leave the cursor where it is: the next message retries the fill.
		d.log.Warn("delivery gap not filled", "conversation", conv, "before", p.Seq, "err", err)
		return
	}
	cur = d.pushRun(st, cur, missed, show)
	d.push(st, d.changes.show(messageView(p)), origin)
	cur = cur.advanced(p.Seq)
	if st.cursors == nil {
		st.cursors = make(map[string]cursor, 1)
	}
	st.cursors[conv] = cur
}

// passOwn moves st's cursor past p, a message st sent, when that needs no
// read. The session has p from its ack and is never pushed it, but a cursor
// that stopped before it would cost a store read later: the gap fill of the
// other participant's reply, and the hand-over's catch-up of a session that
// has only sent, which read back up to a page of its own messages to push
// none. So the cursor moves on when p is its next message, and a session
// with no cursor starts one at p when it is owed nothing below (see
// owesNothingBelow). Anything else leaves the cursor where it is, for the
// next message pushed to fill: filling a gap here would read the store for
// nothing but the cursor, and in the failover suite, where the senders'
// node read the store for each of its own messages that came out of order,
// its delivery fell minutes behind once the store was slow.
func passOwn(st *sessionState, p conversation.MessagePosted, before deliveryStart, startKnown bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	conv := string(p.Conversation)
	cur, known := st.cursors[conv]
	if st.removed[conv] || (known && p.Seq != cur.last+1) || (!known && !owesNothingBelow(st, p, before, startKnown)) {
		return
	}
	if st.cursors == nil {
		st.cursors = make(map[string]cursor, 1)
	}
	st.cursors[conv] = cur.advanced(p.Seq)
}

// pushRun pushes the messages of commits, a run in seq order, that come
// after cur, shown as show shows them, and returns cur moved past them;
// st.mu is held.
func (d *Delivery) pushRun(st *sessionState, cur cursor, commits []ports.Commit, show showMessage) cursor {
	for _, c := range commits {
		for _, ev := range c.Events {
			if gp, ok := ev.(conversation.MessagePosted); ok && gp.Seq > cur.last {
				d.push(st, show(gp), c.Origin)
				cur = cur.advanced(gp.Seq)
			}
		}
	}
	return cur
}

// push sends m unless st is the session that sent it; a sender's own
// session learns of its message from the ack. A session that refuses the
// push is being disconnected, and its client catches up with sync.
func (d *Delivery) push(st *sessionState, m ports.MessageView, origin string) {
	if origin != "" && origin == st.session.ID() {
		return
	}
	st.session.PushMessage(m)
}

func (d *Delivery) pushReceipt(ctx context.Context, id conversation.ID, r ports.Receipt) {
	// In a group, a receipt goes only to the member whose marker moved;
	// the others ask the receipts endpoint.
	users := []user.ID{r.User}
	if id.Kind() == conversation.Direct {
		pair, err := d.conversations.participants(ctx, id)
		if err != nil {
			d.log.Warn("receipt not pushed", "conversation", id, "err", err)
			return
		}
		users = pair[:]
	}
	for _, u := range users {
		for _, st := range d.sessions.of(u) {
			pushReceiptForward(st, r)
		}
	}
}

// pushReceiptForward pushes only the markers that move forward for this
// session: receipts of one conversation may be handled out of order (a
// consumer runs batches side by side), and a client must never see a
// marker go back.
func pushReceiptForward(st *sessionState, r ports.Receipt) {
	st.mu.Lock()
	defer st.mu.Unlock()
	k := receiptKey{conversation: r.Conversation, user: r.User}
	told := st.receipts[k]
	if r.DeliveredUpTo <= told.DeliveredUpTo {
		r.DeliveredUpTo = 0
	}
	if r.ReadUpTo <= told.ReadUpTo {
		r.ReadUpTo = 0
	}
	if r.DeliveredUpTo == 0 && r.ReadUpTo == 0 {
		return
	}
	told.DeliveredUpTo = max(told.DeliveredUpTo, r.DeliveredUpTo)
	told.ReadUpTo = max(told.ReadUpTo, r.ReadUpTo)
	if st.receipts == nil {
		st.receipts = make(map[receiptKey]ports.Receipt, 1)
	}
	st.receipts[k] = told
	st.session.PushReceipt(r)
}

func messageView(p conversation.MessagePosted) ports.MessageView {
	return ports.MessageView{
		MessageID: string(p.MessageID), Conversation: string(p.Conversation), Seq: p.Seq,
		From: p.From, To: p.To, Body: string(p.Body), SentAt: p.SentAt,
	}
}
