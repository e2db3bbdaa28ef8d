package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/evchat/chatd/adapters/metrics"
	"github.com/evchat/chatd/adapters/rocketmq"
	"github.com/evchat/chatd/ports"
)

// RocketMQModule swaps the in-process bus for RocketMQ. Its hooks start the
// producers, make sure the topic is routed, and only then start the
// consumers, and then watch the brokers' masters; on stop, the watch goes
// first, then the consumers, and producers last, after the servers that
// publish have drained.
var RocketMQModule = fx.Module("rocketmq",
	fx.Provide(
		rocketmqConfig,
		newRocketMQPublisher,
		func(reg *prometheus.Registry, p *rocketmq.Publisher) (ports.TransactionalPublisher, error) {
			return measurePublisher(reg, p)
		},
		func(cfg rocketmq.Config, logger *slog.Logger) (*rocketmq.Subscriber, error) {
			return rocketmq.NewSubscriber(cfg, logger.With("component", "rocketmq"))
		},
		func(s *rocketmq.Subscriber) ports.Subscriber { return s },
		func(cfg rocketmq.Config, logger *slog.Logger) *rocketmq.MasterWatch {
			return rocketmq.NewMasterWatch(cfg, logger.With("component", "rocketmq"))
		},
	),
	fx.Invoke(startRocketMQ),
)

func rocketmqConfig(cfg Config, consumers *metrics.Consumers) (rocketmq.Config, error) {
	servers, err := rocketmq.ParseNameServers(cfg.RocketMQNamesrv)
	if err != nil {
		return rocketmq.Config{}, err
	}
	rc := rocketmq.DefaultConfig()
	rc.NameServers, rc.Topic, rc.NodeID = servers, cfg.RocketMQTopic, cfg.NodeID
	rc.ProducerGroup = cfg.RocketMQTopic + "_tx"
	rc.Retries, rc.SendTimeout, rc.MaxReconsume = cfg.RocketMQRetries, cfg.RocketMQSendTimeout, cfg.RocketMQReconsume
	rc.ClusterLinger = cfg.RocketMQLinger
	rc.Observe = func(kind string) rocketmq.ConsumeObserver { return consumers.Group(kind) }
	if rc.Delivery, err = rocketmq.ParseDeliveryMode(cfg.DeliveryMode); err != nil {
		return rocketmq.Config{}, fmt.Errorf("CHAT_DELIVERY_MODE: %w", err)
	}
	return rc, nil
}

func newRocketMQPublisher(cfg rocketmq.Config, handler ports.TransactionHandler, logger *slog.Logger) (*rocketmq.Publisher, error) {
	return rocketmq.NewPublisher(cfg, handler, logger.With("component", "rocketmq"))
}

func startRocketMQ(lc fx.Lifecycle, cfg Config, watch *rocketmq.MasterWatch, p *rocketmq.Publisher, s *rocketmq.Subscriber, logger *slog.Logger) {
	level, _ := parseLevel(cfg.RocketMQLogLevel)
	rocketmq.RouteLogs(logger, level)
	watch.Notify(p.FollowMasters)
	watch.Notify(s.FollowMasters)
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			if err := p.Start(ctx); err != nil {
				return err
			}
			if err := p.EnsureTopic(ctx); err != nil {
				return err
			}
			if err := s.Start(ctx); err != nil {
				return err
			}
			if err := s.WarmUp(ctx, p); err != nil {
				return err
			}
			return watch.Start(ctx)
		},
		OnStop: func(ctx context.Context) error {
			return errors.Join(watch.Stop(ctx), s.Stop(ctx), p.Stop(ctx))
		},
	})
}
