package rocketmq

import (
	"context"
	"crypto/rand"
	"encoding/json"
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
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// Tags of the ephemeral signals on the topic. They ride the commits' topic,
// which every node has a route for already, as ordinary messages: the
// commits' consumers select their own tags and never see these.
const (
	tagPresence     = "presence"
	tagTyping       = "typing"
	tagSignalWarmUp = "signal_warmup"
)

// The signals' consumer group (in routed mode, one per node:
// routedGroup) and the plain producer's group (which no broker calls back)
// carry the topic's name, as every group of the adapter does, so clusters
// on one broker stay apart.
// signalsKind is the signals consumer's kind for its ConsumeObserver.
const signalsKind = "signals"

func signalsGroup(topic string) string         { return topic + "_signals" }
func signalsProducerGroup(topic string) string { return topic + "_signals_producer" }

// Signals carries presence and typing between nodes: a plain producer (a
// lost signal is repaired by the next heartbeat or not worth repairing, so
// no transaction) and a consumer, with instance names of their own so that
// neither shares a connection with the commits' clients. The consumer is
// routed as delivery is (DeliveryMode): typing goes to the nodes of its
// recipient's sessions, presence, whose Route is zero, to every node.
type Signals struct {
	cfg      Config
	log      *slog.Logger
	producer rocketmq.Producer
	selector *brokerFailover

	mu       sync.Mutex
	handlers []ports.SignalHandler
	// consumer is nil after a rebuild that failed; running is true between
	// a Start that succeeded and Shutdown.
	consumer rocketmq.PushConsumer
	running  bool

	nonce   string
	warm    atomic.Bool
	observe ConsumeObserver
	// floors is the history a new routed group skips (newGroupFloors).
	floors atomic.Pointer[map[string]int64]
	// mode is cfg.Delivery, unless Start found that the brokers cannot
	// filter.
	mode DeliveryMode
}

var _ ports.Signals = (*Signals)(nil)

// NewSignals builds the producer; Start connects it and starts consuming.
func NewSignals(cfg Config, log *slog.Logger) (*Signals, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	selector := newBrokerFailover(cfg.BrokerQuarantine, time.Now)
	p, err := rocketmq.NewProducer(
		producer.WithNsResolver(primitive.NewPassthroughResolver(cfg.NameServers)),
		producer.WithRetry(cfg.Retries),
		producer.WithSendMsgTimeout(cfg.SendTimeout),
		producer.WithQueueSelector(selector),
		producer.WithGroupName(signalsProducerGroup(cfg.Topic)),
		producer.WithInstanceName(cfg.NodeID+"_signals_producer"))
	if err != nil {
		return nil, fmt.Errorf("rocketmq signals producer: %w", err)
	}
	return &Signals{cfg: cfg, log: log, producer: p, selector: selector, nonce: cfg.NodeID + "-" + rand.Text(),
		observe: cfg.observer(signalsKind)}, nil
}

// Subscribe implements ports.Signals.
func (s *Signals) Subscribe(h ports.SignalHandler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers = append(s.handlers, h)
}

// Start connects the producer and starts the consumer; the topic must be
// routed already (the commits' publisher makes sure of it).
func (s *Signals) Start(ctx context.Context) error {
	if err := s.producer.Start(); err != nil {
		return fmt.Errorf("rocketmq signals producer start: %w", err)
	}
	mode, err := resolveDelivery(ctx, s.cfg, s.log, "signals consumer", s.group(DeliveryRouted), s.messageSelector(DeliveryRouted).Expression)
	if err != nil {
		return errors.Join(err, s.producer.Shutdown())
	}
	s.mode = mode
	c, err := s.startConsumer()
	if err != nil {
		return errors.Join(err, s.producer.Shutdown())
	}
	s.mu.Lock()
	s.consumer, s.running = c, true
	s.mu.Unlock()
	return nil
}

// signalTags are the tags the signals consumer takes.
var signalTags = []string{tagPresence, tagTyping, tagSignalWarmUp}

func (s *Signals) group(mode DeliveryMode) string {
	if mode == DeliveryRouted {
		return routedGroup(signalsGroup(s.cfg.Topic), s.cfg.NodeID)
	}
	return signalsGroup(s.cfg.Topic)
}

func (s *Signals) messageSelector(mode DeliveryMode) consumer.MessageSelector {
	if mode == DeliveryRouted {
		return consumer.MessageSelector{Type: consumer.SQL92, Expression: routedExpression(signalTags, s.cfg.NodeID)}
	}
	return consumer.MessageSelector{Type: consumer.TAG, Expression: strings.Join(signalTags, " || ")}
}

// Mode is how the signals consumer consumes, once Start has run.
func (s *Signals) Mode() DeliveryMode { return s.mode }

// startConsumer starts the consumer of the mode. A new routed group skips
// the history the broker would hand it (newGroupFloors): old signals are
// worthless, and a node's first rebalance would wade through them.
func (s *Signals) startConsumer() (rocketmq.PushConsumer, error) {
	model := consumer.BroadCasting
	if s.mode == DeliveryRouted {
		model = consumer.Clustering
		takeFloorsOnce(&s.floors, s.cfg, s.group(s.mode))
	}
	c, err := rocketmq.NewPushConsumer(
		consumer.WithNsResolver(primitive.NewPassthroughResolver(s.cfg.NameServers)),
		consumer.WithGroupName(s.group(s.mode)),
		consumer.WithInstance(s.cfg.NodeID+"_signals"),
		consumer.WithConsumerModel(model),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromLastOffset),
		consumer.WithConsumeMessageBatchMaxSize(s.cfg.BatchSize),
	)
	if err != nil {
		return nil, fmt.Errorf("rocketmq signals consumer: %w", err)
	}
	if err := c.Subscribe(s.cfg.Topic, s.messageSelector(s.mode), s.consume); err != nil {
		return nil, fmt.Errorf("rocketmq signals subscribe: %w", err)
	}
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("rocketmq signals consumer start: %w", err)
	}
	return c, nil
}

// FollowMasters is the master watch's listener, as the commits' clients
// have (Publisher.FollowMasters, Subscriber.FollowMasters): signals leave
// out masterless brokers, and the consumer is rebuilt on a change of
// masters so that it reads a dead master's queues from its slave and a
// restarted master's from the master.
func (s *Signals) FollowMasters(c MasterChange) error {
	s.selector.setRouted(c.Brokers)
	changed := c.movesReads()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running || (s.consumer != nil && !changed) {
		return nil
	}
	var errs []error
	if s.consumer != nil {
		errs = append(errs, s.consumer.Shutdown())
		s.consumer = nil
	}
	fresh, err := s.startConsumer()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	s.consumer = fresh
	return errors.Join(errs...)
}

// WarmUp sends this node warm-up signals until its consumer has received
// one: a consumer that starts at the end of the topic consumes
// only once its first rebalance is done, and a node that serves before then
// would miss the joins of the moment.
func (s *Signals) WarmUp(ctx context.Context) error {
	return warmUp(ctx, s.log, "signals consumer", s.warm.Load, func(ctx context.Context) error {
		msg := primitive.NewMessage(s.cfg.Topic, []byte(s.nonce))
		msg.WithTag(tagSignalWarmUp)
		_, err := s.producer.SendSync(ctx, msg)
		return err
	})
}

// Stop stops the consumer, then the producer.
func (s *Signals) Stop(context.Context) error {
	s.mu.Lock()
	c := s.consumer
	s.consumer, s.running = nil, false
	s.mu.Unlock()
	var errs []error
	if c != nil {
		errs = append(errs, c.Shutdown())
	}
	errs = append(errs, s.producer.Shutdown())
	return errors.Join(errs...)
}

// Publish implements ports.Signals with one synchronous send, bounded by
// ctx; its retries are the producer's.
func (s *Signals) Publish(ctx context.Context, sig ports.Signal) error {
	body, err := json.Marshal(wireSignalOf(sig))
	if err != nil {
		return err
	}
	msg := primitive.NewMessage(s.cfg.Topic, body)
	if sig.Kind == ports.SignalTyping {
		msg.WithTag(tagTyping)
	} else {
		msg.WithTag(tagPresence)
	}
	msg.WithProperty(propNodes, nodesProperty(sig.Route, ""))
	res, err := s.producer.SendSync(ctx, msg)
	if err != nil {
		return fmt.Errorf("%w: rocketmq signal: %v", ports.ErrUnavailable, err)
	}
	if res.Status != primitive.SendOK {
		return fmt.Errorf("%w: rocketmq signal: send status %d", ports.ErrUnavailable, res.Status)
	}
	return nil
}

func (s *Signals) consume(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	s.mu.Lock()
	handlers := s.handlers
	s.mu.Unlock()
	observeLags(s.observe, time.Now(), msgs)
	for _, m := range msgs {
		if belowFloor(s.floors.Load(), m) {
			continue
		}
		if m.GetTags() == tagSignalWarmUp {
			if string(m.Body) == s.nonce {
				s.warm.Store(true)
			}
			continue
		}
		var w wireSignal
		if err := json.Unmarshal(m.Body, &w); err != nil {
			// Retrying cannot make it readable; drop it loudly.
			s.log.Error("dropping an unreadable signal", "msgId", m.MsgId, "err", err)
			continue
		}
		sig := w.signal()
		for _, h := range handlers {
			h(ctx, sig)
		}
	}
	return consumer.ConsumeSuccess, nil
}

// wireSignal is a signal as a message body.
type wireSignal struct {
	Kind         ports.SignalKind `json:"kind"`
	Node         string           `json:"node"`
	Seq          uint64           `json:"seq,omitempty"`
	At           time.Time        `json:"at"`
	User         user.ID          `json:"user,omitempty"`
	Users        []user.ID        `json:"users,omitempty"`
	Conversation string           `json:"conversation,omitempty"`
	To           user.ID          `json:"to,omitempty"`
}

func wireSignalOf(s ports.Signal) wireSignal {
	return wireSignal{Kind: s.Kind, Node: s.Node, Seq: s.Seq, At: s.At, User: s.User, Users: s.Users,
		Conversation: s.Conversation, To: s.To}
}

func (w wireSignal) signal() ports.Signal {
	return ports.Signal{Kind: w.Kind, Node: w.Node, Seq: w.Seq, At: w.At, User: w.User, Users: w.Users,
		Conversation: w.Conversation, To: w.To}
}
