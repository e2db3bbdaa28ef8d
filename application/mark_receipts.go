package application

import (
	"context"
	"errors"
	"fmt"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// MarkReceipts moves a participant's markers, read ones on the reader's
// word (Handle) and delivered ones on the transport's (markDelivered), and
// publishes the receipt commit, so both participants' sessions on every
// node learn of it.
type MarkReceipts struct {
	conversations *conversationRepository
	clock         ports.Clock
	ids           ports.IDs
	attempts      int
}

// MarkReadCommand says reader has read conversation up to seq UpTo.
type MarkReadCommand struct {
	Reader       user.ID
	Conversation conversation.ID
	UpTo         uint64
}

// Handle marks the conversation read up to cmd.UpTo; a marker already there
// or past it changes nothing and succeeds.
func (m *MarkReceipts) Handle(ctx context.Context, cmd MarkReadCommand) error {
	return m.mark(ctx, cmd.Conversation, cmd.Reader, cmd.UpTo, (*conversation.Receipts).MarkRead)
}

// markDelivered moves the delivered markers of the users this node wrote
// the messages of written to, in one commit for the conversation. A user
// whose marker may not move (removed from the group since) does not hold
// back the others': the refusals come back joined once the rest is saved.
func (m *MarkReceipts) markDelivered(ctx context.Context, id conversation.ID, written map[user.ID][]conversation.SeqRange) error {
	var last uint64
	for _, ranges := range written {
		for _, w := range ranges {
			last = max(last, w.To)
		}
	}
	var refused error
	err := m.retrying(ctx, func(retry bool) error {
		refused = nil
		return m.conversations.withConversation(id, func(h *heldConversation) error {
			if err := h.catchUpFor(ctx, id, last, retry); err != nil {
				return err
			}
			next := h.receipts().Clone()
			for u, ranges := range written {
				if err := next.MarkWritten(h.conversation(), u, ranges); err != nil {
					refused = errors.Join(refused, fmt.Errorf("user %s: %w", u, err))
				}
			}
			return m.save(ctx, h, id, next)
		})
	})
	return errors.Join(err, refused)
}

type markFunc func(*conversation.Receipts, *conversation.Conversation, user.ID, uint64) error

func (m *MarkReceipts) mark(ctx context.Context, id conversation.ID, u user.ID, upTo uint64, mark markFunc) error {
	return m.retrying(ctx, func(retry bool) error { return m.try(ctx, id, u, upTo, mark, retry) })
}

// retrying runs try until it does not lose a version race, backing off
// between attempts.
func (m *MarkReceipts) retrying(ctx context.Context, try func(retry bool) error) error {
	for attempt := 0; attempt < m.attempts; attempt++ {
		err := try(attempt > 0)
		if !errors.Is(err, ports.ErrVersionConflict) {
			return err
		}
		if err := backOff(ctx, attempt); err != nil {
			return err
		}
	}
	return fmt.Errorf("%w: markers too busy, gave up after %d attempts", ports.ErrUnavailable, m.attempts)
}

// try commits the marker on the cached aggregates; a retry first reads the
// markers stored since, after the back-off (see SendMessage.try).
func (m *MarkReceipts) try(ctx context.Context, id conversation.ID, u user.ID, upTo uint64, mark markFunc, retry bool) error {
	return m.conversations.withReadable(ctx, id, u, func(h *heldConversation) error {
		if retry {
			if err := h.loadReceipts(ctx); err != nil {
				return err
			}
		}
		if upTo > h.conversation().LastSeq() {
			if err := h.loadMessages(ctx); err != nil {
				return err
			}
		}
		next := h.receipts().Clone()
		if err := mark(next, h.conversation(), u, upTo); err != nil {
			return err
		}
		return m.save(ctx, h, id, next)
	})
}

// save publishes the markers next recorded, if any.
func (m *MarkReceipts) save(ctx context.Context, h *heldConversation, id conversation.ID, next *conversation.Receipts) error {
	if len(next.Uncommitted()) == 0 {
		return nil
	}
	commit := ports.Commit{
		ID: m.ids.NewID(), Stream: conversation.ReceiptsStream(id), Version: next.Version() + 1,
		Events: next.Uncommitted(), CommittedAt: m.clock.Now(),
	}
	return h.saveReceipts(ctx, next, commit)
}
