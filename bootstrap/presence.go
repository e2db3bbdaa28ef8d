package bootstrap

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	driver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.uber.org/fx"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/adapters/metrics"
	"github.com/evchat/chatd/adapters/mongo"
	"github.com/evchat/chatd/adapters/rocketmq"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/ports"
)

// PresenceModule gives the application the ports of presence and typing,
// and runs presence. Its hooks come after the signals' (started first,
// stopped last) and before the HTTP server's, so presence heartbeats only
// once the signals flow, and on stop publishes the leaves of the sessions
// the drain closed before the signals stop.
var PresenceModule = fx.Module("presence",
	fx.Provide(newPresencePorts),
	fx.Invoke(func(lc fx.Lifecycle, app *application.Application) {
		lc.Append(fx.StartStopHook(app.Presence.Start, app.Presence.Stop))
	}),
)

func newPresencePorts(signals ports.Signals, lastSeen ports.LastSeenStore, delivery ports.Subscriber, reg *prometheus.Registry) (application.PresencePorts, error) {
	m, err := metrics.NewPresence(reg)
	if err != nil {
		return application.PresencePorts{}, err
	}
	return application.PresencePorts{Signals: signals, LastSeen: lastSeen, Observer: m, Routing: delivery}, nil
}

// mongoLastSeenModule keeps last-seen times in MongoDB when it is the store;
// memoryLastSeenModule keeps them in memory otherwise.
var (
	mongoLastSeenModule = fx.Module("mongo-last-seen", fx.Provide(
		func(db *driver.Database) ports.LastSeenStore { return mongo.NewLastSeen(db) },
	))
	memoryLastSeenModule = fx.Module("memory-last-seen", fx.Provide(
		func() ports.LastSeenStore { return memory.NewLastSeen() },
	))
)

// MemorySignalsModule provides the in-process signal bus.
var MemorySignalsModule = fx.Module("memory-signals",
	fx.Provide(
		memory.NewSignals,
		func(s *memory.Signals) ports.Signals { return s },
	),
	fx.Invoke(func(lc fx.Lifecycle, s *memory.Signals) {
		lc.Append(fx.StartStopHook(s.Start, s.Stop))
	}),
)

// RocketMQSignalsModule provides signals on RocketMQ. It starts after the
// commits' clients, which make sure the topic is routed, and waits until
// its consumer consumes, as they do, before the node serves.
var RocketMQSignalsModule = fx.Module("rocketmq-signals",
	fx.Provide(
		func(cfg rocketmq.Config, logger *slog.Logger) (*rocketmq.Signals, error) {
			return rocketmq.NewSignals(cfg, logger.With("component", "rocketmq-signals"))
		},
		func(s *rocketmq.Signals) ports.Signals { return s },
	),
	fx.Invoke(func(lc fx.Lifecycle, s *rocketmq.Signals, _ *rocketmq.Publisher, watch *rocketmq.MasterWatch) {
		watch.Notify(s.FollowMasters)
		lc.Append(fx.Hook{
			OnStart: func(ctx context.Context) error {
				if err := s.Start(ctx); err != nil {
					return err
				}
				return s.WarmUp(ctx)
			},
			OnStop: s.Stop,
		})
	}),
)
