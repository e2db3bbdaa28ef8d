package rocketmq

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/evchat/chatd/adapters/txbatch"
	"github.com/evchat/chatd/ports"
)

// propFlight names the message property that ties a half message to the
// Publish call waiting for it: ExecuteLocalTransaction gets only the message,
// and it must run the local transaction under the caller's context and hand
// its error back.
const propFlight = "CHAT_FLIGHT"

// checkTimeout bounds one checkback's read of the store.
const checkTimeout = 5 * time.Second

// Publisher is the transactional producer of a node.
type Publisher struct {
	cfg     Config
	handler ports.TransactionHandler
	log     *slog.Logger
	tx      rocketmq.TransactionProducer
	// selector moves sends off a broker that is down (brokerFailover).
	selector *brokerFailover

	flights sync.Map // flight token -> *flight
	next    atomic.Uint64
	// tokens is this process's prefix of flight tokens, so that a
	// checkback of another process's half message never matches one of
	// this process's flights.
	tokens string
	// rolledBack remembers for a while the batches this producer rolled
	// back and whose stored commits it publishes again itself.
	rolledBack rolledBackFlights

	// lanes gathers concurrent Publish calls into batches, a lane per
	// queue of the topic; queues is the topic's number of queues, which
	// EnsureTopic learns (until then every commit shares one lane).
	lanes  txbatch.Lanes
	queues atomic.Int32

	// plain republishes commits whose end of transaction may be lost.
	plain rocketmq.Producer
}

// flight is one batch's half message in progress.
type flight struct {
	members []*txbatch.Member

	// mu guards broker, the broker the client last chose for the half
	// message, and the current try, which abandon ends.
	mu      sync.Mutex
	broker  string
	try     context.Context
	abandon context.CancelFunc
}

// tryAbandoned tells whether the current try was given up.
func (f *flight) tryAbandoned() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.try != nil && f.try.Err() != nil
}

// onBroker records that the client sends the flight's half message to
// broker now.
func (f *flight) onBroker(broker string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.broker = broker
}

// abandonIfOn ends the current try if it went to one of brokers.
func (f *flight) abandonIfOn(brokers []string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.abandon == nil || !slices.Contains(brokers, f.broker) {
		return false
	}
	f.abandon()
	return true
}

var _ ports.BatchPublisher = (*Publisher)(nil)

// NewPublisher builds the producers; Start connects them.
func NewPublisher(cfg Config, handler ports.TransactionHandler, log *slog.Logger) (*Publisher, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if handler == nil {
		return nil, errors.New("rocketmq: a transaction handler is required")
	}
	p := &Publisher{cfg: cfg, handler: handler, log: log, selector: newBrokerFailover(cfg.BrokerQuarantine, time.Now),
		tokens: rand.Text()[:8] + "."}
	p.trackFlights()
	tx, err := rocketmq.NewTransactionProducer(listener{p},
		producer.WithNsResolver(primitive.NewPassthroughResolver(cfg.NameServers)),
		producer.WithRetry(cfg.Retries),
		producer.WithSendMsgTimeout(cfg.SendTimeout),
		producer.WithQueueSelector(p.selector),
		producer.WithGroupName(cfg.ProducerGroup),
		producer.WithInstanceName(cfg.NodeID+"_tx"))
	if err != nil {
		return nil, fmt.Errorf("rocketmq transactional producer: %w", err)
	}
	p.tx = tx
	if p.plain, err = newRepublisher(cfg); err != nil {
		return nil, err
	}
	return p, nil
}

// trackFlights has the selector tell each flight where its half message
// goes, and refuse a queue to a flight whose try was abandoned.
func (p *Publisher) trackFlights() {
	p.selector.picked = func(msg *primitive.Message, broker string) {
		if v, ok := p.flights.Load(msg.GetProperty(propFlight)); ok {
			v.(*flight).onBroker(broker)
		}
	}
	p.selector.abandoned = func(msg *primitive.Message) bool {
		v, ok := p.flights.Load(msg.GetProperty(propFlight))
		return ok && v.(*flight).tryAbandoned()
	}
}

// Start connects the producer. It is not yet known to any broker: that takes
// a first send (EnsureTopic makes one), after which the client heartbeats to
// the topic's brokers and they can ask it for checkback.
func (p *Publisher) Start(context.Context) error {
	if err := p.tx.Start(); err != nil {
		return fmt.Errorf("rocketmq transactional producer start: %w", err)
	}
	if err := p.plain.Start(); err != nil {
		return errors.Join(fmt.Errorf("rocketmq republish producer start: %w", err), p.tx.Shutdown())
	}
	return nil
}

// FollowMasters is the master watch's listener: sends leave out the brokers
// routed without a master before a send to one has to fail, and the tries in
// flight to a master that died are abandoned and sent again at once
// (sendHalf). The client's remoting layer does not fail a request whose
// connection closed: such a try would wait out the whole send timeout, and
// the caller's deadline with it, before the client's own retry.
func (p *Publisher) FollowMasters(c MasterChange) error {
	p.selector.setRouted(c.Brokers)
	if len(c.Lost) == 0 {
		return nil
	}
	abandoned := 0
	p.flights.Range(func(_, v any) bool {
		if v.(*flight).abandonIfOn(c.Lost) {
			abandoned++
		}
		return true
	})
	if abandoned > 0 {
		p.log.Info("sends in flight to a dead master sent again", "brokers", c.Lost, "sends", abandoned)
	}
	return nil
}

// Stop disconnects the producer.
func (p *Publisher) Stop(context.Context) error {
	return errors.Join(p.tx.Shutdown(), p.plain.Shutdown())
}

// Publish implements ports.TransactionalPublisher: c waits on the lane of
// its queue for the batch in flight there, if any, and goes out in the next.
func (p *Publisher) Publish(ctx context.Context, c ports.Commit) (ports.TxState, error) {
	body, err := encodeCommit(c, nodesProperty(c.Route, p.cfg.NodeID))
	if err != nil {
		return ports.TxRollback, err
	}
	m := &txbatch.Member{Ctx: ctx, Commit: c, Body: body}
	p.lanes.Publish(p.laneOf(c), m, batchBounds, p.publishBatch)
	return m.State, m.Err
}

// The pauses before a half message the broker did not take is sent again.
const (
	resendPauseFirst = 100 * time.Millisecond
	resendPauseMax   = time.Second
)

// sendHalf sends a half message, and sends it again, while ctx allows,
// when the broker did not take it for a passing reason:
//   - its try was abandoned because its master died (FollowMasters): at
//     once, to a live broker. The half message may have reached the dead
//     master; if so, that master settles it by checkback when it returns,
//     as it would after the client's own retry.
//   - SYSTEM_BUSY, after a growing pause: a broker under flow control
//     ([TIMEOUT_CLEAN_QUEUE] when its send queue waits over 200 ms, as the
//     surviving master of a group does when it takes the dead one's sends on
//     a loaded machine). The Go client does not retry that code
//     (needRetryCode in producer/producer.go); the Java client does since
//     apache/rocketmq#5838.
//   - FLUSH_SLAVE_TIMEOUT, SLAVE_NOT_AVAILABLE or FLUSH_DISK_TIMEOUT, after
//     a growing pause: the master stored the half message without the
//     replica or flush it waits for (a slave that just died), and the
//     client rolled it back at once without running the local transaction.
//
// In each case nothing was stored locally, so sending again is safe.
func (p *Publisher) sendHalf(ctx context.Context, f *flight, msg *primitive.Message) (*primitive.TransactionSendResult, error) {
	pause := resendPauseFirst
	for {
		try, abandon := context.WithCancel(ctx)
		f.mu.Lock()
		f.try, f.abandon = try, abandon
		f.mu.Unlock()
		res, err := p.tx.SendMessageInTransaction(try, msg)
		abandoned := try.Err() != nil && ctx.Err() == nil
		abandon()
		switch {
		case err != nil && abandoned:
			continue
		case err != nil && !brokerBusy(err):
			return nil, err
		case err == nil && !notReplicated(res):
			return res, nil
		}
		p.log.Debug("half message not taken; sending it again", "pause", pause, "err", err)
		select {
		case <-ctx.Done():
			if err == nil {
				return res, nil
			}
			return nil, err
		case <-time.After(pause):
		}
		pause = min(2*pause, resendPauseMax)
	}
}

// brokerBusy tells the broker's SYSTEM_BUSY answer (code 2) from other
// failures. The client reports a broker's refusal only as text, "CODE: 2,
// DESC: ..." (rmqClient.ProcessSendResponse).
func brokerBusy(err error) bool { return strings.HasPrefix(err.Error(), "CODE: 2,") }

// notReplicated: the master stored the half message without the replica or
// flush it waits for, and the client rolled it back unexecuted.
func notReplicated(res *primitive.TransactionSendResult) bool {
	if res == nil || res.SendResult == nil {
		return false
	}
	switch res.Status {
	case primitive.SendFlushDiskTimeout, primitive.SendFlushSlaveTimeout, primitive.SendSlaveNotAvailable:
		return true
	}
	return false
}

// Ping implements ports.TransactionalPublisher: a probe half message, rolled
// back at once, proves a broker takes messages now, which a name server
// alone cannot; it also keeps this producer known to the topic's brokers.
func (p *Publisher) Ping(ctx context.Context) error {
	msg := primitive.NewMessage(p.cfg.Topic, []byte("probe"))
	msg.WithTag(tagProbe)
	if _, err := p.tx.SendMessageInTransaction(ctx, msg); err != nil {
		return fmt.Errorf("%w: rocketmq: %v", ports.ErrUnavailable, err)
	}
	return nil
}

// tagProbe marks readiness probes; no consumer subscribes to it and no
// transaction of one ever commits. tagWarmUp marks the committed messages a
// starting node sends itself to learn that its consumers consume.
const (
	tagProbe  = "probe"
	tagWarmUp = "warmup"
)

// sendWarmUp publishes one committed warm-up message carrying nonce.
func (p *Publisher) sendWarmUp(ctx context.Context, nonce string) error {
	msg := primitive.NewMessage(p.cfg.Topic, []byte(nonce))
	msg.WithTag(tagWarmUp)
	msg.WithShardingKey(nonce)
	_, err := p.tx.SendMessageInTransaction(ctx, msg)
	return err
}
