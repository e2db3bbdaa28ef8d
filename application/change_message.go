package application

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// DefaultEditWindow is how long after its sentAt a message may be edited
// or recalled when nothing is configured (CHAT_EDIT_WINDOW).
const DefaultEditWindow = 15 * time.Minute

// EditMessageCommand replaces the body of message Seq, as its author asks.
type EditMessageCommand struct {
	Author user.ID
	// ClientID is the idempotency key: a resend answers the first Changed.
	ClientID     message.ClientID
	Conversation conversation.ID
	Seq          uint64
	Body         message.Body
	// Origin is the session that asked, spared its own update on delivery.
	Origin string
}

// RecallMessageCommand withdraws message Seq, as its author asks.
type RecallMessageCommand struct {
	Author       user.ID
	ClientID     message.ClientID
	Conversation conversation.ID
	Seq          uint64
	Origin       string
}

// Changed confirms an edit or a recall is durable and its publication
// committed; Rev is its place among the conversation's changes.
type Changed struct {
	ClientID     string
	Conversation conversation.ID
	Seq          uint64
	Rev          uint64
}

// The use cases as transports see them.
type (
	// EditHandler is EditMessage.
	EditHandler = Handler[EditMessageCommand, Changed]
	// RecallHandler is RecallMessage.
	RecallHandler = Handler[RecallMessageCommand, Changed]
)

// changeMessage commits an edit or a recall on the conversation's changes
// stream through the transactional publisher, as SendMessage commits a
// message: idempotent on the client's key, and retried from a fresh load
// when another change took the stream's next version first, so rev stays
// gapless whichever node wins.
type changeMessage struct {
	conversations *conversationRepository
	messages      ports.StreamReader
	clock         ports.Clock
	window        time.Duration
	attempts      int
}

// change is one edit or recall as the shared path runs it: record applies
// it to a copy of the aggregate and returns the recorded event's rev.
type change struct {
	author user.ID
	key    message.ClientID
	conv   conversation.ID
	seq    uint64
	origin string
	record func(next *conversation.Conversation, posted *conversation.MessagePosted, at time.Time) (uint64, error)
}

// EditMessage is the edit use case.
type EditMessage struct{ changes *changeMessage }

// Handle edits the message and answers once the edit is durable and published.
func (e *EditMessage) Handle(ctx context.Context, cmd EditMessageCommand) (Changed, error) {
	return e.changes.run(ctx, change{
		author: cmd.Author, key: cmd.ClientID, conv: cmd.Conversation, seq: cmd.Seq, origin: cmd.Origin,
		record: func(next *conversation.Conversation, posted *conversation.MessagePosted, at time.Time) (uint64, error) {
			edited, err := next.Edit(posted, cmd.Author, cmd.Body, at, e.changes.window)
			return edited.Rev, err
		},
	})
}

// RecallMessage is the recall use case.
type RecallMessage struct{ changes *changeMessage }

// Handle recalls the message and answers once the recall is durable and published.
func (r *RecallMessage) Handle(ctx context.Context, cmd RecallMessageCommand) (Changed, error) {
	return r.changes.run(ctx, change{
		author: cmd.Author, key: cmd.ClientID, conv: cmd.Conversation, seq: cmd.Seq, origin: cmd.Origin,
		record: func(next *conversation.Conversation, posted *conversation.MessagePosted, at time.Time) (uint64, error) {
			recalled, err := next.Recall(posted, cmd.Author, at, r.changes.window)
			return recalled.Rev, err
		},
	})
}

func (c *changeMessage) run(ctx context.Context, ch change) (Changed, error) {
	id := changeIDFor(ch.author, ch.key)
	for attempt := 0; attempt < c.attempts; attempt++ {
		changed, err := c.try(ctx, id, ch)
		switch {
		case err == nil:
			changed.ClientID = string(ch.key)
			return changed, nil
		case errors.Is(err, ports.ErrDuplicateCommit):
			return c.firstChanged(ctx, id, ch.key)
		case errors.Is(err, ports.ErrVersionConflict):
		default:
			// A resend of a change already made may be refused by the rules
			// it changed (a recall resent finds the message recalled), or
			// by time (the window closed since): its first answer stands.
			if changed, found := c.findChanged(ctx, id, ch.key); found {
				return changed, nil
			}
			return Changed{}, err
		}
		if err := backOff(ctx, attempt); err != nil {
			return Changed{}, err
		}
	}
	return Changed{}, fmt.Errorf("%w: conversation too busy, gave up after %d attempts", ports.ErrUnavailable, c.attempts)
}

// try records the change on the conversation brought up to date with the
// store: changes are rare, and a change decided on a stale rev or a stale
// recall would only lose its race and be tried again.
func (c *changeMessage) try(ctx context.Context, id string, ch change) (Changed, error) {
	var changed Changed
	err := c.conversations.withReadable(ctx, ch.conv, ch.author, func(h *heldConversation) error {
		if ch.seq > h.conversation().LastSeq() {
			if err := h.loadMessages(ctx); err != nil {
				return err
			}
		}
		if err := h.loadChanges(ctx); err != nil {
			return err
		}
		posted, err := c.posted(ctx, ch.conv, ch.seq)
		if err != nil {
			return err
		}
		next := h.conversation().Clone()
		now := c.clock.Now()
		rev, err := ch.record(next, posted, now)
		if err != nil {
			return err
		}
		commit := changesCommit(next, id, now.UTC().Truncate(time.Millisecond))
		commit.Origin = ch.origin
		if err := h.saveChanges(ctx, next, commit); err != nil {
			return err
		}
		changed = Changed{Conversation: ch.conv, Seq: ch.seq, Rev: rev}
		return nil
	})
	return changed, err
}

// posted reads message seq as it was posted, nil when there is none.
func (c *changeMessage) posted(ctx context.Context, conv conversation.ID, seq uint64) (*conversation.MessagePosted, error) {
	if seq == 0 {
		return nil, nil
	}
	commits, err := c.messages.Load(ctx, conversation.MessagesStream(conv), seq, seq)
	if err != nil {
		return nil, err
	}
	for _, commit := range commits {
		for _, ev := range commit.Events {
			if p, ok := ev.(conversation.MessagePosted); ok && p.Seq == seq {
				return &p, nil
			}
		}
	}
	return nil, nil
}

// firstChanged answers a resend with the change first stored under its key.
func (c *changeMessage) firstChanged(ctx context.Context, id string, key message.ClientID) (Changed, error) {
	stored, err := c.conversations.findSaved(ctx, id)
	if err != nil {
		return Changed{}, err
	}
	if changed, ok := changedOf(stored, key); ok {
		return changed, nil
	}
	return Changed{}, fmt.Errorf("commit %s holds no edit or recall", id)
}

// findChanged looks for a change stored under the key, for a resend the
// rules now refuse.
func (c *changeMessage) findChanged(ctx context.Context, id string, key message.ClientID) (Changed, bool) {
	stored, err := c.conversations.findSaved(ctx, id)
	if err != nil {
		return Changed{}, false
	}
	return changedOf(stored, key)
}

func changedOf(stored ports.Commit, key message.ClientID) (Changed, bool) {
	for _, ev := range stored.Events {
		switch ev := ev.(type) {
		case conversation.MessageEdited:
			return Changed{ClientID: string(key), Conversation: ev.Conversation, Seq: ev.Seq, Rev: ev.Rev}, true
		case conversation.MessageRecalled:
			return Changed{ClientID: string(key), Conversation: ev.Conversation, Seq: ev.Seq, Rev: ev.Rev}, true
		}
	}
	return Changed{}, false
}

// changeIDFor is the commit id of author's change under an idempotency
// key: apart from message ids (message.IDFor), so that a client that uses
// one key for a send and for an edit has both.
func changeIDFor(author user.ID, key message.ClientID) string {
	sum := sha256.Sum256([]byte("change\x00" + string(author) + "\x00" + string(key)))
	return "ch_" + base64.RawURLEncoding.EncodeToString(sum[:16])
}
