package rocketmq

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
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
}

type subscription struct {
	group     string
	broadcast bool
	handler   ports.CommitHandler
	warm      atomic.Bool
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

// lateCounter counts events and tells, at most once a second, how many
// came since it last told.
type lateCounter struct {
	mu    sync.Mutex
	count int
	told  time.Time
}

func (c *lateCounter) add(now time.Time) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count++
	if now.Sub(c.told) < time.Second {
		return 0, false
	}
	n := c.count
	c.count, c.told = 0, now
	return n, true
}

type consumerGeneration struct {
	started time.Time
	queues  sync.Map // queue key -> struct{}
}

// firstBatch tells whether msgs are the first the running consumer brought
// of their queue, and how long after its start.
func (sub *subscription) firstBatch(msgs []*primitive.MessageExt) (string, time.Duration, bool) {
	g := sub.generation.Load()
	if g == nil || msgs[0].Queue == nil {
		return "", 0, false
	}
	q := msgs[0].Queue
	key := q.BrokerName + "/" + strconv.Itoa(q.QueueId)
	_, seen := g.queues.LoadOrStore(key, struct{}{})
	return key, time.Since(g.started), !seen
}

// handle runs the handler on commits through the gate of the queue msgs
// came from.
func (sub *subscription) handle(ctx context.Context, msgs []*primitive.MessageExt, commits []ports.Commit) error {
	if msgs[0].Queue == nil {
		return sub.handler(ctx, commits)
	}
	q := msgs[0].Queue
	v, _ := sub.queues.LoadOrStore(q.BrokerName+"/"+q.Topic+"/"+strconv.Itoa(q.QueueId), &queueGate{})
	return v.(*queueGate).run(ctx, commits, sub.linger, sub.handler)
}

var _ ports.Subscriber = (*Subscriber)(nil)

// NewSubscriber returns a subscriber; register handlers, then Start.
func NewSubscriber(cfg Config, log *slog.Logger) (*Subscriber, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Subscriber{cfg: cfg, log: log, nonce: cfg.NodeID + "-" + rand.Text()}, nil
}

// Broadcast implements ports.Subscriber with a BROADCASTING consumer: every
// node gets every commit. Its offsets live in a local file named after the
// node's instance, so a restarted node resumes where it stopped; a fresh one
// starts at the end of the topic, since its sessions catch up with sync.
func (s *Subscriber) Broadcast(name string, h ports.CommitHandler) {
	s.subs = append(s.subs, &subscription{group: s.groupName(name), broadcast: true, handler: h})
}

// Cluster implements ports.Subscriber with a CLUSTERING consumer group.
func (s *Subscriber) Cluster(group string, h ports.CommitHandler) {
	s.subs = append(s.subs, &subscription{group: s.groupName(group), handler: h, linger: s.cfg.ClusterLinger})
}

// groupName puts the topic in a consumer group's name: groups are the
// broker's, and two clusters on topics of their own must not share one.
func (s *Subscriber) groupName(name string) string { return s.cfg.Topic + "_" + name }

// Start creates and starts the consumers. The topic must exist: a push
// consumer cannot start on a topic the name server has no route for.
func (s *Subscriber) Start(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
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
// regained its master (MasterChange.movesReads), it rebuilds the broadcast
// consumers. The client would
// keep pulling a dead master until its route refresh, up to 30 s, after a
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
// Clustering consumers are left alone: their offsets live on the master,
// which a new consumer cannot read while the master is down.
func (s *Subscriber) FollowMasters(c MasterChange) error {
	changed := c.movesReads()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return nil
	}
	var errs []error
	for _, sub := range s.subs {
		if !sub.broadcast || (sub.consumer != nil && !changed) {
			continue
		}
		if sub.consumer != nil {
			errs = append(errs, sub.consumer.Shutdown())
			sub.consumer = nil
		}
		fresh, err := s.start(sub)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sub.consumer = fresh
		s.log.Info("broadcast consumer rebuilt", "group", sub.group, "lost", c.Lost, "regained", c.Regained)
	}
	return errors.Join(errs...)
}

func (s *Subscriber) start(sub *subscription) (rocketmq.PushConsumer, error) {
	model, batch := consumer.Clustering, s.cfg.BatchSize*clusterBatchFactor
	if sub.broadcast {
		model, batch = consumer.BroadCasting, s.cfg.BatchSize
	}
	sub.generation.Store(&consumerGeneration{started: time.Now()})
	c, err := rocketmq.NewPushConsumer(
		consumer.WithNsResolver(primitive.NewPassthroughResolver(s.cfg.NameServers)),
		consumer.WithGroupName(sub.group),
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
	selector := consumer.MessageSelector{Type: consumer.TAG, Expression: tagMessage + " || " + tagReceipt + " || " + tagWarmUp}
	if err := c.Subscribe(s.cfg.Topic, selector, s.consume(sub)); err != nil {
		return nil, fmt.Errorf("rocketmq consumer %s subscribe: %w", sub.group, err)
	}
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("rocketmq consumer %s start: %w", sub.group, err)
	}
	return c, nil
}

// consume decodes a batch and hands it to the handler. A broadcast batch is
// never retried by the broker, so its failure is only logged; a clustering
// batch is asked for again later, up to the reconsume bound, then goes to
// the dead-letter queue.
//
// Both consume concurrently. Orderly consumption would keep a
// conversation's batches in queue order, but this client, after an orderly
// batch fails, consumes that queue again only when new messages arrive, and
// with several nodes it can leave a queue unlocked, and so unconsumed, for a
// minute after a rebalance. Handlers cope with order instead: delivery per
// session, the projector by filling gaps from the store.
func (s *Subscriber) consume(sub *subscription) func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	return func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		if queue, after, first := sub.firstBatch(msgs); first {
			s.log.Info("first batch of a queue since the consumer started", "group", sub.group, "queue", queue,
				"after", after, "offset", msgs[0].QueueOffset, "stored", time.UnixMilli(msgs[0].StoreTimestamp))
		}
		if lag := time.Since(time.UnixMilli(msgs[0].StoreTimestamp)); lag > lateBatch {
			if late, ok := sub.lateBatches.add(time.Now()); ok {
				s.log.Warn("consumer behind: batches stored over 2 s before", "group", sub.group, "batches", late, "lag", lag)
			}
		}
		commits := make([]ports.Commit, 0, len(msgs))
		for _, m := range msgs {
			if m.GetTags() == tagWarmUp {
				if string(m.Body) == s.nonce {
					sub.warm.Store(true)
				}
				continue
			}
			c, err := decodeCommit(m.Body)
			if err != nil {
				// Retrying cannot make it readable; drop it loudly.
				s.log.Error("dropping an unreadable message", "group", sub.group, "msgId", m.MsgId, "err", err)
				continue
			}
			commits = append(commits, c)
		}
		if len(commits) == 0 {
			return consumer.ConsumeSuccess, nil
		}
		if err := sub.handle(ctx, msgs, commits); err != nil {
			if sub.broadcast {
				s.log.Warn("broadcast batch failed; the store fills the gap later", "group", sub.group, "commits", len(commits), "err", err)
				return consumer.ConsumeSuccess, nil
			}
			s.log.Warn("batch failed, asking for it again", "group", sub.group, "commits", len(commits), "err", err)
			return consumer.ConsumeRetryLater, nil
		}
		return consumer.ConsumeSuccess, nil
	}
}

// WarmUp sends this node committed warm-up messages until every broadcast
// consumer has received one. A broadcast consumer that starts at the end of
// the topic consumes only once its first rebalance is done; a message
// committed before then would never reach this node's sessions live. A node
// that waits here before it serves has no such window.
func (s *Subscriber) WarmUp(ctx context.Context, p *Publisher) error {
	return warmUp(ctx, s.log, "broadcast consumers", s.warm, func(ctx context.Context) error {
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
		if sub.broadcast && !sub.warm.Load() {
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
			errs = append(errs, sub.consumer.Shutdown())
			sub.consumer = nil
		}
	}
	return errors.Join(errs...)
}
