package rocketmq

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/evchat/chatd/ports"
)

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
	v, _ := sub.queues.LoadOrStore(queueKey(q.BrokerName, q.Topic, q.QueueId), &queueGate{})
	return v.(*queueGate).run(ctx, commits, sub.linger, sub.handler)
}

// consume decodes a batch and hands it to the handler. A delivery batch is
// not retried (a broadcast one cannot be, and a routed one need not: the
// store fills the gap), so its failure is only logged; a cluster group's
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
		if sub.delivery && s.mode == DeliveryRouted {
			defer sub.offsets.take(msgs)()
		}
		if queue, after, first := sub.firstBatch(msgs); first {
			s.log.Info("first batch of a queue since the consumer started", "group", sub.group, "queue", queue,
				"after", after, "offset", msgs[0].QueueOffset, "stored", time.UnixMilli(msgs[0].StoreTimestamp))
		}
		now := time.Now()
		observeLags(sub.observe, now, msgs)
		if lag := now.Sub(time.UnixMilli(msgs[0].StoreTimestamp)); lag > lateBatch {
			if late, ok := sub.lateBatches.add(time.Now()); ok {
				s.log.Warn("consumer behind: batches stored over 2 s before", "group", sub.group, "batches", late, "lag", lag)
			}
		}
		commits := make([]ports.Commit, 0, len(msgs))
		for _, m := range msgs {
			if belowFloor(sub.floors.Load(), m) {
				continue
			}
			if m.GetTags() == tagWarmUp {
				if string(m.Body) == s.nonce {
					sub.warm.Store(true)
				}
				continue
			}
			batch, err := decodeWire(m.Body)
			if err != nil {
				// Retrying cannot make it readable; drop it loudly.
				s.log.Error("dropping an unreadable message", "group", sub.group, "msgId", m.MsgId, "err", err)
				continue
			}
			commits = s.unpack(sub, commits, batch)
		}
		if len(commits) == 0 {
			return consumer.ConsumeSuccess, nil
		}
		if err := sub.handle(ctx, msgs, commits); err != nil {
			if sub.delivery {
				s.log.Warn("delivery batch failed; the store fills the gap later", "group", sub.group, "commits", len(commits), "err", err)
				return consumer.ConsumeSuccess, nil
			}
			again, dead := reconsumeSplit(msgs, s.cfg.MaxReconsume)
			sub.observe.Redelivered(again)
			sub.observe.DeadLettered(dead)
			if dead > 0 {
				s.log.Error("batch failed past the reconsume bound: its messages go to the dead-letter queue",
					"group", sub.group, "messages", dead, "err", err)
			}
			s.log.Warn("batch failed, asking for it again", "group", sub.group, "commits", len(commits), "err", err)
			return consumer.ConsumeRetryLater, nil
		}
		return consumer.ConsumeSuccess, nil
	}
}

// observeLags records how long after the broker stored it each message
// was taken.
func observeLags(observe ConsumeObserver, now time.Time, msgs []*primitive.MessageExt) {
	for _, m := range msgs {
		observe.Consumed(now.Sub(time.UnixMilli(m.StoreTimestamp)))
	}
}

// reconsumeSplit counts the messages of a failed clustering batch that the
// broker hands out again and those it moves to the dead-letter queue: a
// message sent back once it has been reconsumed maxReconsume times is the
// broker's to dead-letter.
func reconsumeSplit(msgs []*primitive.MessageExt, maxReconsume int) (again, dead int) {
	for _, m := range msgs {
		if int(m.ReconsumeTimes) >= maxReconsume {
			dead++
		} else {
			again++
		}
	}
	return again, dead
}

// belowFloor tells whether m lies below its queue's floor: history that a
// new routed group must not read (newGroupFloors).
func belowFloor(floors *map[string]int64, m *primitive.MessageExt) bool {
	if floors == nil || m.Queue == nil {
		return false
	}
	floor, ok := (*floors)[queueKey(m.Queue.BrokerName, m.Queue.Topic, m.Queue.QueueId)]
	return ok && m.QueueOffset < floor
}

// unpack appends the commits of a message to commits. A routed delivery
// consumer takes only those routed to its node: a batch's message is
// selected by the union of its commits' routes.
func (s *Subscriber) unpack(sub *subscription, commits []ports.Commit, batch []wireCommit) []ports.Commit {
	routed := sub.delivery && s.mode == DeliveryRouted
	for _, w := range batch {
		if routed && !nodesReach(w.Nodes, s.cfg.NodeID) {
			continue
		}
		c, err := fromWire(w)
		if err != nil {
			s.log.Error("dropping an unreadable commit", "group", sub.group, "commit", w.ID, "err", err)
			continue
		}
		commits = append(commits, c)
	}
	return commits
}
