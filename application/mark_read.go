package application

import (
	"context"
	"errors"
	"fmt"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// MarkRead moves a participant's read or delivered marker and publishes the
// receipt commit, so both participants' sessions on every node learn of it.
type MarkRead struct {
	aggregates *aggregates
	clock      ports.Clock
	ids        ports.IDs
	attempts   int
}

// MarkReadCommand says reader has read conversation up to seq UpTo.
type MarkReadCommand struct {
	Reader       user.ID
	Conversation conversation.ID
	UpTo         uint64
}

// Handle marks the conversation read up to cmd.UpTo; a marker already there
// or past it changes nothing and succeeds.
func (m *MarkRead) Handle(ctx context.Context, cmd MarkReadCommand) error {
	return m.mark(ctx, cmd.Conversation, cmd.Reader, cmd.UpTo, (*conversation.Receipts).MarkRead)
}

// markDelivered moves the recipient's delivered marker after this node
// wrote the messages of written to its sessions' connections.
func (m *MarkRead) markDelivered(ctx context.Context, id conversation.ID, u user.ID, written []conversation.SeqRange) error {
	var last uint64
	for _, w := range written {
		last = max(last, w.To)
	}
	return m.mark(ctx, id, u, last, func(r *conversation.Receipts, c *conversation.Conversation, u user.ID, _ uint64) error {
		return r.MarkWritten(c, u, written)
	})
}

type markFunc func(*conversation.Receipts, *conversation.Conversation, user.ID, uint64) error

func (m *MarkRead) mark(ctx context.Context, id conversation.ID, u user.ID, upTo uint64, mark markFunc) error {
	for attempt := 0; attempt < m.attempts; attempt++ {
		err := m.try(ctx, id, u, upTo, mark, attempt > 0)
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
func (m *MarkRead) try(ctx context.Context, id conversation.ID, u user.ID, upTo uint64, mark markFunc, retry bool) error {
	e, err := m.aggregates.readable(ctx, id, u)
	if err != nil {
		return err
	}
	defer e.mu.Unlock()
	if retry {
		if err := m.aggregates.refreshReceipts(ctx, e); err != nil {
			return err
		}
	}
	if upTo > e.conv.LastSeq() {
		if err := m.aggregates.refreshConversation(ctx, e); err != nil {
			return err
		}
	}
	next := e.receipts.Clone()
	if err := mark(next, e.conv, u, upTo); err != nil {
		return err
	}
	if len(next.Uncommitted()) == 0 {
		return nil
	}
	commit := ports.Commit{
		ID: m.ids.NewID(), Stream: conversation.ReceiptsStream(id), Version: next.Version() + 1,
		Events: next.Uncommitted(), CommittedAt: m.clock.Now(),
	}
	if err := m.aggregates.publish(ctx, commit); err != nil {
		return err
	}
	next.Committed()
	e.receipts = next
	return nil
}
