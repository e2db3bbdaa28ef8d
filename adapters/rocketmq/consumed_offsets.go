package rocketmq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// consumedOffsets is how far a routed delivery consumer got on each queue,
// so that stopping it stores where it stopped. The client stores its
// offsets at shutdown with one-way requests on connections it closes at
// once, and leaves out a batch whose handler was still running. A node
// restarted after either got that batch again (2 runs in 20 of
// TestRocketMQRoutedGroupResumesAfterARestart) or, when the broker kept no
// offset for a queue, took the queue's end as a new group's floor and
// skipped what was sent while it was down (once in CI).
//
// A queue's offset is the start of the earliest batch still in hand, or
// else the one after the last message handled. A batch the client had
// pulled but not yet handed over when it stopped is not known here; the
// client hands a queue's batches over in order, one per pull at a
// routed consumer's sizes, so only one overtaken at that instant is missed.
type consumedOffsets struct {
	mu     sync.Mutex
	next   map[primitive.MessageQueue]int64
	inHand map[primitive.MessageQueue]map[int64]int // first offset of a batch -> batches
}

func newConsumedOffsets() *consumedOffsets {
	return &consumedOffsets{next: map[primitive.MessageQueue]int64{}, inHand: map[primitive.MessageQueue]map[int64]int{}}
}

// take records that msgs, one batch of one queue, are in hand; the
// returned func records that they are handled.
func (o *consumedOffsets) take(msgs []*primitive.MessageExt) (handled func()) {
	if len(msgs) == 0 || msgs[0].Queue == nil {
		return func() {}
	}
	q, first, last := *msgs[0].Queue, msgs[0].QueueOffset, msgs[0].QueueOffset
	for _, m := range msgs[1:] {
		first, last = min(first, m.QueueOffset), max(last, m.QueueOffset)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.inHand[q] == nil {
		o.inHand[q] = map[int64]int{}
	}
	o.inHand[q][first]++
	return func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.inHand[q][first]--; o.inHand[q][first] == 0 {
			delete(o.inHand[q], first)
		}
		o.next[q] = max(o.next[q], last+1)
	}
}

// stoppedAt returns each queue's offset to store, and how many batches
// are still in hand.
func (o *consumedOffsets) stoppedAt() (map[primitive.MessageQueue]int64, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	offsets, inHand := make(map[primitive.MessageQueue]int64, len(o.next)), 0
	for q, next := range o.next {
		offsets[q] = next
	}
	for q, batches := range o.inHand {
		for first, n := range batches {
			inHand += n
			if at, ok := offsets[q]; !ok || first < at {
				offsets[q] = first
			}
		}
	}
	return offsets, inHand
}

// store waits, until ctx ends, for the batches in hand to be handled, then
// stores the offsets on the brokers that hold the queues, waiting for each
// answer.
func (o *consumedOffsets) store(ctx context.Context, nameServers []string, topic, group string) error {
	offsets, inHand := o.stoppedAt()
	for inHand > 0 && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
		offsets, inHand = o.stoppedAt()
	}
	if len(offsets) == 0 {
		return nil
	}
	brokers, err := routedBrokers(ctx, nameServers, topic)
	if err != nil {
		return err
	}
	addrs := map[string]string{}
	for _, b := range brokers {
		addrs[b.name] = b.addr
	}
	var errs []error
	for q, offset := range offsets {
		addr, ok := addrs[q.BrokerName]
		if !ok {
			errs = append(errs, fmt.Errorf("broker %s: not in the route of %s", q.BrokerName, topic))
			continue
		}
		ext := map[string]string{"consumerGroup": group, "topic": q.Topic, "queueId": strconv.Itoa(q.QueueId),
			"commitOffset": strconv.FormatInt(offset, 10), "bname": q.BrokerName}
		res, _, err := askBroker(ctx, addr, reqUpdateConsumerOffset, ext, nil)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("broker %s queue %d: %w", q.BrokerName, q.QueueId, err))
		case res.Code != resSuccess:
			errs = append(errs, fmt.Errorf("broker %s queue %d: code %d: %s", q.BrokerName, q.QueueId, res.Code, res.Remark))
		}
	}
	return errors.Join(errs...)
}
