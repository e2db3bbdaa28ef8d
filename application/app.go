// Package application holds the chat service's use cases: sending a message
// through the transactional publisher, editing and recalling it (on the
// conversation's changes stream, the same way), delivering committed messages to the
// sessions of this node in order, marking messages delivered and read,
// syncing and paging history, listing conversations, making and changing
// groups (each change one commit of the conversation's changes stream, its
// member frames delivered like messages), projecting the read model, and
// relaying presence and typing between nodes. Each commit and
// typing signal is routed to the nodes that hold its users' sessions
// (routing.go), and a session that opens catches up on what was routed
// before the other nodes knew of it (hand_over.go). It depends on
// domain/ and ports/ only; inbound adapters call it and outbound adapters are
// handed to it. New builds every use case once, presence and typing included,
// the ones transports call wrapped in a logging decorator (decorators.go), and
// Subscribe hands the bus a node's consumers, so that bootstrap and the
// tests' embedded node run the same node.
package application

import (
	"errors"
	"log/slog"
	"time"

	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// ErrRateLimited refuses a send when the user sends faster than the configured rate.
var ErrRateLimited = errors.New("sending too fast, slow down")

// Config tunes the use cases.
type Config struct {
	// TxTimeout is how long a transaction may stay unsettled before checkback
	// rolls back a half message whose commit is not in the store.
	TxTimeout time.Duration
	// SendRate and SendBurst bound each user's sends per second.
	SendRate  float64
	SendBurst int
	// MaxAttempts bounds the retries of a command that lost a version race.
	MaxAttempts int
	// EditWindow is how long after its sentAt a message may be edited or
	// recalled by its author.
	EditWindow time.Duration
	// MaxGroupMembers caps a group's members (CHAT_MAX_GROUP_MEMBERS).
	MaxGroupMembers int
	// RepublishAfter is how long a commit this node acked may take to come
	// back on its own consumer before it is sent again (Republisher).
	RepublishAfter time.Duration
	// Presence tunes presence; its zero fields take their defaults.
	Presence PresenceConfig
	// DeliveryObserver hears how many commits delivery receives; bootstrap
	// injects the node's metrics, nil measures nothing.
	DeliveryObserver DeliveryObserver
	// Log hears what the use cases cannot tell a caller: failures of
	// their background work. bootstrap injects the node's; nil is slog.Default().
	Log *slog.Logger
}

// DefaultConfig is what PROTOCOL.md promises when nothing is configured.
func DefaultConfig() Config {
	return Config{TxTimeout: 6 * time.Second, SendRate: 50, SendBurst: 200, MaxAttempts: 20, EditWindow: DefaultEditWindow,
		MaxGroupMembers: DefaultMaxGroupMembers, RepublishAfter: DefaultRepublishAfter, Presence: DefaultPresenceConfig()}
}

// Application gathers the use cases that inbound adapters drive.
type Application struct {
	// Send and the queries are logged (decorators.go); a transport
	// measures Send by wrapping it once more.
	Send          SendHandler
	Edit          EditHandler
	Recall        RecallHandler
	MarkReceipts  *MarkReceipts
	Sync          SyncHandler
	History       HistoryHandler
	Conversations ConversationsHandler
	// Receipts answers every member's markers of a conversation.
	Receipts ReceiptsHandler
	// Groups are the group commands and query, logged like the others.
	Groups    GroupHandlers
	Delivery  *Delivery
	Projector *Projector
	Sessions  *Sessions
	// Republisher sends again what this node acked and the bus did not
	// bring back; it runs between Start and Stop.
	Republisher *Republisher
	// Presence runs its goroutines between Start and Stop, after the
	// signals adapter starts; Typing relays through them.
	Presence *Presence
	Typing   *Typing
}

// New builds the use cases over the given ports. The publisher must have been
// built with a Transactions handler over the same store. Presence and typing
// subscribe to presencePorts.Signals here, so New comes before the signals
// adapter starts.
func New(cfg Config, store ports.EventStore, publisher ports.TransactionalPublisher, readModel ports.ReadModel, clock ports.Clock, ids ports.IDs, presencePorts PresencePorts) (*Application, error) {
	if store == nil || publisher == nil || readModel == nil || clock == nil || ids == nil {
		return nil, errors.New("application: every port is required")
	}
	if presencePorts.Signals == nil || presencePorts.LastSeen == nil {
		return nil, errors.New("application: presence needs signals and a last-seen store")
	}
	presenceCfg := cfg.Presence.withDefaults(ids)
	observer := orNoObserver[PresenceObserver](presencePorts.Observer)
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultConfig().MaxAttempts
	}
	if cfg.EditWindow <= 0 {
		cfg.EditWindow = DefaultEditWindow
	}
	if cfg.MaxGroupMembers <= 0 {
		cfg.MaxGroupMembers = DefaultMaxGroupMembers
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	republisher := newRepublisher(publisher, clock, cfg.RepublishAfter, log)
	conversations := newConversationRepository(store, publisher, republisher)
	sessions := NewSessions(clock)
	groups := newGroupMembers(store)
	positions := newRecentPositions(clock, sessions, groups)
	conversations.afterCommit(positions.committed)
	conversations.afterObserve(positions.delivered)
	changes := &changeMessage{conversations: conversations, messages: store, clock: clock, window: cfg.EditWindow, attempts: cfg.MaxAttempts}
	markReceipts := &MarkReceipts{conversations: conversations, clock: clock, ids: ids, attempts: cfg.MaxAttempts}
	app := &Application{
		Send:         logged[SendMessageCommand, Ack](log, "send", newSendMessage(cfg, conversations, clock, ids)),
		Edit:         logged[EditMessageCommand, Changed](log, "edit", &EditMessage{changes: changes}),
		Recall:       logged[RecallMessageCommand, Changed](log, "recall", &RecallMessage{changes: changes}),
		MarkReceipts: markReceipts,
		Sync:         logged[SyncQuery, Page](log, "sync", &Sync{conversations: conversations, messages: store, positions: positions}),
		History:      logged[HistoryQuery, Page](log, "history", &History{conversations: conversations, messages: store, positions: positions}),
		Conversations: logged[user.ID, []ConversationSummary](log, "list conversations",
			&ListConversations{readModel: readModel, streams: store, positions: positions}),
		Receipts:    logged[ReceiptsQuery, []MemberReceipt](log, "receipts", &Receipts{conversations: conversations}),
		Groups:      newGroupHandlers(log, groupCommands{conversations, clock, ids, cfg.MaxGroupMembers, cfg.MaxAttempts}),
		Sessions:    sessions,
		Projector:   &Projector{streams: store, readModel: readModel},
		Republisher: republisher,
	}
	app.Delivery = &Delivery{conversations: conversations, messages: store, readModel: readModel, sessions: sessions,
		observer: orNoObserver[DeliveryObserver](cfg.DeliveryObserver),
		marks:    newDeliveredMarks(markReceipts, log), log: log, starts: newDeliveryStarts(), changes: newRecentChanges(),
		groups: groups, appendBudget: cfg.TxTimeout / 2}
	outbox := newSignalOutbox(presencePorts.Signals, presenceCfg.Heartbeat, log)
	peers := newPeerCache(readModel, presenceCfg.PeersTTL)
	app.Presence = newPresence(presenceCfg, presencePorts.LastSeen, observer, outbox, sessions, peers, clock, log)
	app.Typing = newTyping(presenceCfg.Node, conversations.othersOf, app.Presence.routeOf, sessions, outbox, clock, observer)
	presencePorts.Signals.Subscribe(app.Presence.handle)
	presencePorts.Signals.Subscribe(app.Typing.handle)
	sessions.observe(app.Presence)
	conversations.afterCommit(app.Presence.learnStarted)
	conversations.routeOf = app.Presence.routeOfCommit
	app.Presence.routed = func() bool { return presencePorts.Routing == nil || presencePorts.Routing.Routed() }
	app.Presence.handOver = newHandOver(app.Delivery, sessions, clock, presenceCfg.PropagationWindow, republisher.republishedBy(), app.Presence.routed, log)
	sessions.afterOpen(app.Presence.handOver.opened)
	app.Presence.forwarder = newRouteForwarder(publisher, clock, presenceCfg.PropagationWindow, app.Presence.holdersOf, app.Delivery.usersOf, log)
	conversations.afterCommit(app.Delivery.groups.committed)
	conversations.afterCommit(app.Presence.forwarder.sent)
	return app, nil
}
