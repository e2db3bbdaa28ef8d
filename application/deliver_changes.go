package application

import (
	"context"
	"sync"
	"time"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/ports"
)

// Delivery of edits and recalls, and of messages in their current state.
//
// An edit or recall is pushed as an `update` to the sessions of both
// participants, the one that asked for it excepted, like a message: each
// session gets a conversation's updates in rev order, each once, a gap
// filled from the changes stream first. Rev is not that stream's version
// (membership changes take versions and no rev), but each change commit
// takes one version and at most one rev, so rev r lies at a version of at
// least r, and the revs between a session's last and the one at hand lie
// between that last rev and the commit's version.
//
// A message read back from the store (a gap, a first push, a hand-over's
// catch-up) may have been edited or recalled since it was posted; it is
// pushed as it stands now, so that no path pushes a recalled body.

// recentChanges remembers the latest edit or recall of the messages this
// node delivered an update of lately. A live message may be pushed after
// its own change: batches are handled side by side, and a republished
// message comes seconds late. It is then pushed as it stands, so that a
// session never gets a recalled body after the recall. A change forgotten
// (past the bound) costs that only if its message comes later still.
type recentChanges struct {
	mu    sync.Mutex
	byMsg map[messageKey]ports.UpdateView
}

type messageKey struct {
	conversation string
	seq          uint64
}

// maxRecentChanges bounds the changes remembered, some 2 MB of them.
const maxRecentChanges = 10_000

func newRecentChanges() *recentChanges {
	return &recentChanges{byMsg: map[messageKey]ports.UpdateView{}}
}

// learn remembers u unless a later change of its message is known.
func (r *recentChanges) learn(u ports.UpdateView) {
	k := messageKey{u.Conversation, u.Seq}
	r.mu.Lock()
	defer r.mu.Unlock()
	if known, ok := r.byMsg[k]; ok && known.Rev >= u.Rev {
		return
	}
	if len(r.byMsg) >= maxRecentChanges {
		clear(r.byMsg)
	}
	r.byMsg[k] = u
}

// show returns m with the latest change remembered of it applied.
func (r *recentChanges) show(m ports.MessageView) ports.MessageView {
	r.mu.Lock()
	u, ok := r.byMsg[messageKey{m.Conversation, m.Seq}]
	r.mu.Unlock()
	switch {
	case !ok:
	case !u.RecalledAt.IsZero():
		m.Body, m.EditedAt, m.RecalledAt = "", time.Time{}, u.RecalledAt
	default:
		m.Body, m.EditedAt = u.Body, u.EditedAt
	}
	return m
}

// deliverUpdate pushes the update that c, a changes-stream commit, records.
func (d *Delivery) deliverUpdate(ctx context.Context, c ports.Commit, u ports.UpdateView) {
	d.changes.learn(u)
	id := conversation.ID(u.Conversation)
	users, err := d.usersOf(ctx, id)
	if err != nil {
		d.log.Warn("update not pushed", "conversation", id, "rev", u.Rev, "err", err)
		return
	}
	for _, who := range users {
		for _, st := range d.sessions.of(who) {
			d.updateInOrder(ctx, st, c, u)
		}
	}
}

// updateInOrder pushes u to st after the updates of its conversation the
// session missed: on its rev cursor, the gap since the last one; without,
// those committed since it opened, as a first message is (first_push.go),
// since a batch racing this one may hold them. What changed before, its
// client learns with sync's changesAfter.
func (d *Delivery) updateInOrder(ctx context.Context, st *sessionState, c ports.Commit, u ports.UpdateView) {
	st.mu.Lock()
	defer st.mu.Unlock()
	last, known := st.revs[u.Conversation]
	if (known && u.Rev <= last) || st.removed[u.Conversation] {
		return
	}
	var (
		missed []ports.Commit
		err    error
	)
	switch {
	case known && u.Rev > last+1:
		missed, err = d.messages.Load(ctx, c.Stream, last+1, c.Version-1)
	case !known && u.Rev > 1:
		missed, err = d.messages.Load(ctx, c.Stream, c.Version-min(c.Version-1, firstPushPage), c.Version-1)
		missed = committedSince(missed, d.openedSince(st))
	}
	if err != nil {
		// Leave the cursor where it is: the next update retries the fill.
		d.log.Warn("update gap not filled", "conversation", u.Conversation, "before", u.Rev, "err", err)
		return
	}
	for _, m := range missed {
		for _, ev := range m.Events {
			if gap, ok := updateOf(ev); ok && gap.Rev > last && gap.Rev < u.Rev {
				pushUpdate(st, gap, m.Origin)
			}
		}
	}
	pushUpdate(st, u, c.Origin)
	if st.revs == nil {
		st.revs = make(map[string]uint64, 1)
	}
	st.revs[u.Conversation] = u.Rev
}

// pushUpdate pushes u unless st is the session that asked for it, which
// has its `changed` answer.
func pushUpdate(st *sessionState, u ports.UpdateView, origin string) {
	if origin != "" && origin == st.session.ID() {
		return
	}
	st.session.PushUpdate(u)
}

// updateOf is the update an edit or recall event tells of.
func updateOf(ev conversation.Event) (ports.UpdateView, bool) {
	switch ev := ev.(type) {
	case conversation.MessageEdited:
		return ports.UpdateView{Conversation: string(ev.Conversation), Seq: ev.Seq, Rev: ev.Rev,
			Body: string(ev.Body), EditedAt: ev.EditedAt}, true
	case conversation.MessageRecalled:
		return ports.UpdateView{Conversation: string(ev.Conversation), Seq: ev.Seq, Rev: ev.Rev,
			RecalledAt: ev.RecalledAt}, true
	}
	return ports.UpdateView{}, false
}

// showMessage shows a posted message to a client.
type showMessage func(conversation.MessagePosted) ports.MessageView

// currentShow reads the conversation's changes when commits hold messages
// to show, and shows them as they stand now.
func currentShow(ctx context.Context, store ports.StreamReader, id conversation.ID, commits []ports.Commit) (showMessage, error) {
	if len(commits) == 0 {
		return messageView, nil
	}
	changes, err := store.Load(ctx, conversation.ChangesStream(id), 1, 0)
	if err != nil {
		return nil, err
	}
	if len(changes) == 0 {
		return messageView, nil
	}
	conv := conversation.New(id)
	for _, c := range changes {
		conv.ReplayChanges(c.Events)
	}
	return showAsOf(conv), nil
}

// showAsOf shows messages as they stand after the changes conv has applied.
func showAsOf(conv *conversation.Conversation) showMessage {
	return func(p conversation.MessagePosted) ports.MessageView {
		m := conv.Message(p)
		v := messageView(p)
		v.Body, v.EditedAt, v.RecalledAt = string(m.Body), m.EditedAt(), m.RecalledAt()
		return v
	}
}
