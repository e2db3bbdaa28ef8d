package rocketmq

import (
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// brokerFailover is the producers' queue selector. It keeps a conversation
// on the queue its sharding key hashes to, as the client's hash selector
// does, but not on a broker that is known to be down: its queues are then
// left out and the key hashes over the queues that remain.
//
// The client's hash selector ignores the broker a send just failed on, so
// every retry goes to the same dead master, and that master's queues leave
// the producer's route only at the client's route refresh, every 30 s
// (hard-coded as _PullNameServerInterval in rocketmq-client-go/v2
// internal/client.go). The client's sendSync calls Select again for each
// retry with the broker of the failed try as lastBrokerName; that call is
// the failure report this selector acts on, for sends and for
// SendMessageInTransaction alike, which sends its half message through the
// same sendSync. A broker is known to be down when a send to it failed
// within the quarantine, or when the name servers route it without a master
// (routed, from the master watch).
//
// Moving a conversation to another broker gives up its queue order for the
// time of the switch; delivery orders by seq and the projector fills gaps
// from the store, so order on the bus is not what they rely on.
type brokerFailover struct {
	quarantine time.Duration
	now        func() time.Time

	mu sync.Mutex
	// failedUntil is when each broker that failed a send may be tried again.
	failedUntil map[string]time.Time
	// routed holds the brokers the name servers last routed with a master;
	// nil until the master watch has reported.
	routed map[string]bool

	// picked, if set, learns each choice (the publisher tracks which
	// broker each send in flight went to); abandoned, if set, tells a
	// message whose try the publisher has given up, which must not be
	// written to any broker.
	picked    func(msg *primitive.Message, broker string)
	abandoned func(msg *primitive.Message) bool
}

var _ producer.QueueSelector = (*brokerFailover)(nil)

func newBrokerFailover(quarantine time.Duration, now func() time.Time) *brokerFailover {
	return &brokerFailover{quarantine: quarantine, now: now, failedUntil: map[string]time.Time{}}
}

// Select implements producer.QueueSelector.
//
// For an abandoned try it returns no queue: the client's sendSync then
// skips the retry without writing to a broker, where it would otherwise
// send the half message under a cancelled context and leave it to
// checkback.
func (s *brokerFailover) Select(msg *primitive.Message, queues []*primitive.MessageQueue, lastBrokerName string) *primitive.MessageQueue {
	if s.abandoned != nil && s.abandoned(msg) {
		return nil
	}
	q := s.choose(msg, queues, lastBrokerName)
	if q != nil && s.picked != nil {
		s.picked(msg, q.BrokerName)
	}
	return q
}

func (s *brokerFailover) choose(msg *primitive.Message, queues []*primitive.MessageQueue, lastBrokerName string) *primitive.MessageQueue {
	if len(queues) == 0 {
		return nil
	}
	live := s.liveQueues(queues, lastBrokerName)
	key := msg.GetShardingKey()
	if key == "" {
		return live[rand.IntN(len(live))]
	}
	sum := shardingHash(key)
	// The same queue as the client's hash selector while every broker is up.
	preferred := queues[sum%uint32(len(queues))]
	for _, q := range live {
		if q == preferred {
			return q
		}
	}
	return live[sum%uint32(len(live))]
}

// liveQueues records lastBrokerName's failure and returns the queues of the
// brokers not known to be down. When every broker is, it returns those not
// on the broker that just failed, or, with one broker only, all of them:
// trying a broker that may be back beats failing without a try.
func (s *brokerFailover) liveQueues(queues []*primitive.MessageQueue, lastBrokerName string) []*primitive.MessageQueue {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if lastBrokerName != "" {
		s.failedUntil[lastBrokerName] = now.Add(s.quarantine)
	}
	for broker, until := range s.failedUntil {
		if !now.Before(until) {
			delete(s.failedUntil, broker)
		}
	}
	live := make([]*primitive.MessageQueue, 0, len(queues))
	for _, q := range queues {
		_, failed := s.failedUntil[q.BrokerName]
		if !failed && (s.routed == nil || s.routed[q.BrokerName]) {
			live = append(live, q)
		}
	}
	if len(live) > 0 {
		return live
	}
	for _, q := range queues {
		if q.BrokerName != lastBrokerName {
			live = append(live, q)
		}
	}
	if len(live) > 0 {
		return live
	}
	return queues
}

// setRouted records the brokers the name servers route with a master. A
// broker that regains its master is tried again at once.
func (s *brokerFailover) setRouted(brokers []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	routed := make(map[string]bool, len(brokers))
	for _, b := range brokers {
		routed[b] = true
		if !s.routed[b] {
			delete(s.failedUntil, b)
		}
	}
	s.routed = routed
}

// shardingHash is the client's hash of a sharding key, whose remainder by
// the number of queues picks the key's queue.
func shardingHash(key string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return h.Sum32()
}
