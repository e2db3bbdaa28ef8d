package bootstrap

import (
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/adapters/metrics"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/ports"
)

// NewLogger makes the process's slog logger at the configured level.
func NewLogger(cfg Config) *slog.Logger {
	level, _ := parseLevel(cfg.LogLevel)
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// Node is the whole fx graph of one chatd node for cfg: the embedded default
// adapters where cfg names no MongoDB or RocketMQ.
func Node(cfg Config, logger *slog.Logger) fx.Option {
	return fx.Options(
		fx.Supply(cfg, logger),
		fx.WithLogger(func() fxevent.Logger {
			// fx narrates every hook; that is debug detail, errors stay errors.
			l := &fxevent.SlogLogger{Logger: logger.With("component", "fx")}
			l.UseLogLevel(slog.LevelDebug)
			return l
		}),
		fx.StopTimeout(cfg.ShutdownTimeout+cfg.ShutdownTimeout/2),
		// Migrations, a broker's route and the consumers' first rebalance
		// all come before the node serves.
		fx.StartTimeout(startTimeout),
		SystemModule,
		// Each piece of infrastructure configured replaces its embedded default.
		pick(cfg.MongoURI != "", MongoModule, MemoryStoreModule),
		pick(cfg.RocketMQNamesrv != "", RocketMQModule, MemoryBusModule),
		ApplicationModule,
		pick(cfg.RocketMQNamesrv != "", RocketMQSignalsModule, MemorySignalsModule),
		pick(cfg.MongoURI != "", mongoLastSeenModule, memoryLastSeenModule),
		PresenceModule,
		AuthModule,
		MetricsModule,
		WebSocketModule,
		HTTPAPIModule,
		HTTPServerModule,
	)
}

// startTimeout bounds a node's start-up.
const startTimeout = 90 * time.Second

// pick returns configured when the node is configured for that piece of
// infrastructure (CHAT_MONGO_URI, CHAT_ROCKETMQ_NAMESRV), else embedded.
func pick(isConfigured bool, configured, embedded fx.Option) fx.Option {
	if isConfigured {
		return configured
	}
	return embedded
}

// SystemModule provides the clock and the id source.
var SystemModule = fx.Module("system",
	fx.Provide(
		func() ports.Clock { return memory.Clock{} },
		func() ports.IDs { return memory.IDs{} },
	),
)

// ApplicationModule builds the use cases, subscribes the projector (once
// per cluster) and the delivery (every node) to the bus, and runs the
// republisher of what this node acked and the bus did not bring back.
var ApplicationModule = fx.Module("application",
	fx.Provide(
		newTransactions,
		func(t *application.Transactions) ports.TransactionHandler { return t },
		newApplication,
	),
	fx.Invoke((*application.Application).Subscribe, runRepublisher),
)

func newTransactions(cfg Config, store ports.EventStore, clock ports.Clock) (*application.Transactions, error) {
	return application.NewTransactions(store, clock, cfg.TxTimeout)
}

func newApplication(cfg Config, store ports.EventStore, publisher ports.TransactionalPublisher, readModel ports.ReadModel, clock ports.Clock, ids ports.IDs, presence application.PresencePorts, delivery *metrics.Delivery, logger *slog.Logger) (*application.Application, error) {
	appCfg := application.DefaultConfig()
	appCfg.TxTimeout, appCfg.SendRate, appCfg.SendBurst = cfg.TxTimeout, cfg.SendRate, cfg.SendBurst
	appCfg.RepublishAfter, appCfg.EditWindow, appCfg.MaxGroupMembers = cfg.RepublishAfter, cfg.EditWindow, cfg.MaxGroupMembers
	appCfg.Log = logger.With("component", "application")
	appCfg.Presence.Node, appCfg.Presence.Heartbeat, appCfg.Presence.Grace = cfg.NodeID, cfg.PresenceHeartbeat, cfg.PresenceGrace
	appCfg.Presence.PropagationWindow = cfg.PropagationWindow
	appCfg.DeliveryObserver = delivery
	return application.New(appCfg, store, publisher, readModel, clock, ids, presence)
}

// runRepublisher sweeps while the bus runs: its hooks come after the bus's,
// so it starts after the bus and stops before it.
func runRepublisher(lc fx.Lifecycle, app *application.Application) {
	lc.Append(fx.StartStopHook(app.Republisher.Start, app.Republisher.Stop))
}

// MemoryStoreModule provides the in-memory event store and read model.
var MemoryStoreModule = fx.Module("memory-store",
	fx.Provide(
		memory.NewEventStore,
		func(reg *prometheus.Registry, s *memory.EventStore) (ports.EventStore, error) {
			return measureStore(reg, s)
		},
		func(s *memory.EventStore) ports.StreamScanner { return s },
		memory.NewReadModel,
		func(r *memory.ReadModel) ports.ReadModel { return r },
	),
)

// MemoryBusModule provides the in-process transactional bus, started before
// and stopped after the servers that publish on it.
var MemoryBusModule = fx.Module("memory-bus",
	fx.Provide(
		func(h ports.TransactionHandler, logger *slog.Logger) (*memory.Bus, error) {
			cfg := memory.DefaultBusConfig()
			cfg.Log = logger.With("component", "memory-bus")
			return memory.NewBus(h, cfg)
		},
		func(reg *prometheus.Registry, b *memory.Bus) (ports.TransactionalPublisher, error) {
			return measurePublisher(reg, b)
		},
		func(b *memory.Bus) ports.Subscriber { return b },
	),
	fx.Invoke(func(lc fx.Lifecycle, b *memory.Bus) {
		lc.Append(fx.StartStopHook(b.Start, b.Stop))
	}),
)
