package application

import (
	"context"
	"log/slog"
	"time"

	"github.com/evchat/chatd/domain/user"
)

// Handler is a use case that takes a command or query C and answers R. The
// decorators below wrap one, so that what every use case does around its
// work (logging, measuring) is written once instead of in each use case or
// in each transport that calls it.
type Handler[C, R any] interface {
	Handle(ctx context.Context, cmd C) (R, error)
}

// The use cases as transports see them, possibly decorated.
type (
	// SendHandler is SendMessage.
	SendHandler = Handler[SendMessageCommand, Ack]
	// SyncHandler is Sync.
	SyncHandler = Handler[SyncQuery, Page]
	// HistoryHandler is History.
	HistoryHandler = Handler[HistoryQuery, Page]
	// ConversationsHandler is ListConversations.
	ConversationsHandler = Handler[user.ID, []ConversationSummary]
	// ReceiptsHandler is Receipts.
	ReceiptsHandler = Handler[ReceiptsQuery, []MemberReceipt]
)

// HandlerFunc adapts a function to a Handler.
type HandlerFunc[C, R any] func(ctx context.Context, cmd C) (R, error)

// Handle calls f.
func (f HandlerFunc[C, R]) Handle(ctx context.Context, cmd C) (R, error) { return f(ctx, cmd) }

// logged traces every call of the named use case at debug level, with
// how long it took and how it failed. A failure is no more than debug here:
// the transport that answers decides whether it is the server's fault
// (an error), a dependency's (a warning) or the client's (nothing).
func logged[C, R any](log *slog.Logger, useCase string, next Handler[C, R]) Handler[C, R] {
	return HandlerFunc[C, R](func(ctx context.Context, cmd C) (R, error) {
		start := time.Now()
		r, err := next.Handle(ctx, cmd)
		if log.Enabled(ctx, slog.LevelDebug) {
			log.DebugContext(ctx, "command handled", "use_case", useCase, "took", time.Since(start), "err", err)
		}
		return r, err
	})
}
