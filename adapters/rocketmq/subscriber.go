package rocketmq

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/evchat/chatd/ports"
)

// clusterBatchFactor makes clustering batches larger than broadcast ones:
// the projector writes each conversation of a batch once, so the larger the
// batch, the more commits of a busy conversation share one write, while a
// broadcast batch is delivered message by message and only waits longer.
const clusterBatchFactor = 8

// commitTags are the tags delivery and cluster groups take: commits, and
// the warm-ups by which a starting node learns that its consumers consume.
var commitTags = []string{tagMessage, tagReceipt, tagWarmUp}

// lateBatch is how long after its storing a batch is logged as late.
const lateBatch = 2 * time.Second

// Subscriber runs one push consumer per registered handler.
type Subscriber struct {
	cfg  Config
	log  *slog.Logger
	subs []*subscription
	// mu keeps a rebuild (FollowMasters), Start and Shutdown apart;
	// running is true between a Start that succeeded and Shutdown.
	mu      sync.Mutex
	running bool
	// nonce is what this node's warm-up messages carry, so that a consumer
	// knows the one it waits for from another node's.
	nonce string
	// mode is how delivery consumes: cfg.Delivery, unless Start found
	// that the brokers cannot filter (resolveDelivery).
	mode DeliveryMode
}

type subscription struct {
	group string
	// delivery: a Deliver subscription (routed or broadcast by the
	// Subscriber's mode), not a cluster group's.
	delivery bool
	handler  ports.CommitHandler
	observe  ConsumeObserver
	warm     atomic.Bool
	// floors is the history a new routed group skips (newGroupFloors).
	floors atomic.Pointer[map[string]int64]
	// offsets is how far a routed delivery consumer got, stored when it
	// stops.
	offsets *consumedOffsets
	// linger is how long a call of the handler waits for more of its
	// queue's batches (queueGate).
	linger time.Duration
	queues sync.Map // queue key -> *queueGate
	// consumer is the running consumer, nil before Start, after Shutdown
	// and after a rebuild that failed.
	consumer rocketmq.PushConsumer
	// generation is the running consumer's start, with the queues it has
	// brought a batch of: the log tells how long each queue took to move
	// again after a rebuild.
	generation atomic.Pointer[consumerGeneration]
	// lateBatches counts the batches that came late, for a log line at
	// most once a second.
	lateBatches lateCounter
}

var _ ports.Subscriber = (*Subscriber)(nil)

// NewSubscriber returns a subscriber; register handlers, then Start.
func NewSubscriber(cfg Config, log *slog.Logger) (*Subscriber, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Subscriber{cfg: cfg, log: log, nonce: cfg.NodeID + "-" + rand.Text()}, nil
}

// Deliver implements ports.Subscriber. Routed, it is a CLUSTERING group of
// this node's own whose selector takes what is routed to it: its offsets
// live on the broker, so a restarted node resumes where it stopped, and a
// new node starts at the end of the topic (newGroupFloors), since its
// sessions catch up with sync. Broadcast, it is a BROADCASTING consumer
// that gets every commit, whose offsets live in a local file named after
// the node's instance, with the same effect.
func (s *Subscriber) Deliver(name string, h ports.CommitHandler) {
	s.subs = append(s.subs, &subscription{group: s.groupName(name), delivery: true, handler: h, observe: s.cfg.observer(name),
		offsets: newConsumedOffsets()})
}

// Mode is how delivery consumes, once Start has run.
func (s *Subscriber) Mode() DeliveryMode { return s.mode }

// Routed implements ports.Subscriber: true once Start has run in routed
// mode.
func (s *Subscriber) Routed() bool { return s.Mode() == DeliveryRouted }

// Cluster implements ports.Subscriber with a CLUSTERING consumer group.
func (s *Subscriber) Cluster(group string, h ports.CommitHandler) {
	s.subs = append(s.subs, &subscription{group: s.groupName(group), handler: h, observe: s.cfg.observer(group), linger: s.cfg.ClusterLinger})
}

// groupName puts the topic in a consumer group's name: groups are the
// broker's, and two clusters on topics of their own must not share one.
func (s *Subscriber) groupName(name string) string { return s.cfg.Topic + "_" + name }

// Start settles the delivery mode (resolveDelivery), then creates and
// starts the consumers. The topic must exist: a push consumer cannot start
// on a topic the name server has no route for.
func (s *Subscriber) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	mode, err := resolveDelivery(ctx, s.cfg, s.log, "delivery consumer",
		routedGroup(s.groupName("filter_check"), s.cfg.NodeID), routedExpression(commitTags, s.cfg.NodeID))
	if err != nil {
		return err
	}
	s.mode = mode
	for _, sub := range s.subs {
		c, err := s.start(sub)
		if err != nil {
			return errors.Join(err, s.shutdown())
		}
		sub.consumer = c
	}
	s.running = true
	return nil
}

// FollowMasters is the master watch's listener: when a broker lost or
// regained its master (MasterChange.movesReads), it rebuilds the delivery
// consumers. The client would keep pulling a dead master until its route refresh, up to 30 s, after a
// pull in flight has waited out its fixed 30 s timeout; and it may never
// pull a restarted master's queues again (apache/rocketmq-client-go#1071,
// #1085). A new consumer has a new client, which reads the route afresh:
// it pulls a dead master's queues from its slave (slaveReadEnable on the
// broker; the client falls back to any address of the broker when the
// master has none) and a restarted master's from the master. It starts
// from the offsets the old one stored on its way out, so what was pulled
// and not yet handled comes again, and delivery drops what it has sent.
//
// A consumer that cannot start (a topic with no route while its only
// broker is down) is started again at the next report.
//
// Cluster groups' consumers are left alone: their offsets live on the
// master, which a new consumer cannot read while the master is down. A
// routed delivery consumer, alone in its group, is rebuilt all the same:
// the slave answers for its offsets with the copy it syncs from the
// master, at worst seconds old, and delivery drops what comes twice.
func (s *Subscriber) FollowMasters(c MasterChange) error {
	changed := c.movesReads()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return nil
	}
	var errs []error
	for _, sub := range s.subs {
		if !sub.delivery || (sub.consumer != nil && !changed) {
			continue
		}
		if sub.consumer != nil {
			errs = append(errs, s.stopConsumer(sub))
		}
		fresh, err := s.start(sub)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sub.consumer = fresh
		s.log.Info("delivery consumer rebuilt", "group", sub.group, "lost", c.Lost, "regained", c.Regained)
	}
	return errors.Join(errs...)
}

func (s *Subscriber) start(sub *subscription) (rocketmq.PushConsumer, error) {
	group, model, batch := sub.group, consumer.Clustering, s.cfg.BatchSize*clusterBatchFactor
	selector := consumer.MessageSelector{Type: consumer.TAG, Expression: strings.Join(commitTags, " || ")}
	switch {
	case sub.delivery && s.mode == DeliveryRouted:
		group, batch = routedGroup(sub.group, s.cfg.NodeID), s.cfg.BatchSize
		selector = consumer.MessageSelector{Type: consumer.SQL92, Expression: routedExpression(commitTags, s.cfg.NodeID)}
		takeFloorsOnce(&sub.floors, s.cfg, group)
	case sub.delivery:
		model, batch = consumer.BroadCasting, s.cfg.BatchSize
	}
	sub.generation.Store(&consumerGeneration{started: time.Now()})
	c, err := rocketmq.NewPushConsumer(
		consumer.WithNsResolver(primitive.NewPassthroughResolver(s.cfg.NameServers)),
		consumer.WithGroupName(group),
		consumer.WithInstance(s.cfg.NodeID+"_"+sub.group),
		consumer.WithConsumerModel(model),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromLastOffset),
		consumer.WithConsumeMessageBatchMaxSize(batch),
		consumer.WithPullBatchSize(int32(batch)),
		consumer.WithMaxReconsumeTimes(int32(s.cfg.MaxReconsume)),
	)
	if err != nil {
		return nil, fmt.Errorf("rocketmq consumer %s: %w", sub.group, err)
	}
	if err := c.Subscribe(s.cfg.Topic, selector, s.consume(sub)); err != nil {
		return nil, fmt.Errorf("rocketmq consumer %s subscribe: %w", sub.group, err)
	}
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("rocketmq consumer %s start: %w", sub.group, err)
	}
	return c, nil
}

// WarmUp sends this node committed warm-up messages until every delivery
// consumer has received one. A delivery consumer that starts at the end of
// the topic consumes only once its first rebalance is done; a message
// committed before then would never reach this node's sessions live. A node
// that waits here before it serves has no such window.
func (s *Subscriber) WarmUp(ctx context.Context, p *Publisher) error {
	return warmUp(ctx, s.log, "delivery consumers", s.warm, func(ctx context.Context) error {
		return p.sendWarmUp(ctx, s.nonce)
	})
}

// warmUp sends warm-up messages until warm reports that they arrive.
func warmUp(ctx context.Context, log *slog.Logger, consumers string, warm func() bool, send func(context.Context) error) error {
	for !warm() {
		if err := send(ctx); err != nil && ctx.Err() == nil {
			log.Debug("warm-up message not sent", "consumers", consumers, "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("rocketmq %s did not start consuming: %w", consumers, ctx.Err())
		case <-time.After(300 * time.Millisecond):
		}
	}
	return nil
}

func (s *Subscriber) warm() bool {
	for _, sub := range s.subs {
		if sub.delivery && !sub.warm.Load() {
			return false
		}
	}
	return true
}

// Stop stops every consumer that started.
func (s *Subscriber) Stop(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutdown()
}

func (s *Subscriber) shutdown() error {
	s.running = false
	var errs []error
	for _, sub := range s.subs {
		if sub.consumer != nil {
			errs = append(errs, s.stopConsumer(sub))
		}
	}
	return errors.Join(errs...)
}

// stopConsumer shuts sub's consumer down. A routed delivery consumer then
// stores its offsets itself (consumedOffsets): its group is this node's
// alone, and a restart resumes from them. Failing to is only logged: the
// client stored its own on the way out, and sessions catch up from the
// store.
func (s *Subscriber) stopConsumer(sub *subscription) error {
	err := sub.consumer.Shutdown()
	sub.consumer = nil
	if sub.delivery && s.mode == DeliveryRouted {
		ctx, cancel := context.WithTimeout(context.Background(), brokerQueryTimeout)
		defer cancel()
		group := routedGroup(sub.group, s.cfg.NodeID)
		if serr := sub.offsets.store(ctx, s.cfg.NameServers, s.cfg.Topic, group); serr != nil {
			s.log.Warn("delivery consumer's offsets not stored; the client's own are used", "group", group, "err", serr)
		}
	}
	return err
}
