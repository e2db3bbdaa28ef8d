package rocketmq

import (
	"maps"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

func batchOf(q primitive.MessageQueue, offsets ...int64) []*primitive.MessageExt {
	msgs := make([]*primitive.MessageExt, len(offsets))
	for i, o := range offsets {
		msgs[i] = &primitive.MessageExt{QueueOffset: o}
		msgs[i].Queue = &q
	}
	return msgs
}

func TestConsumedOffsetsStopWhereTheEarliestBatchInHandStarts(t *testing.T) {
	q0 := primitive.MessageQueue{Topic: "t", BrokerName: "b", QueueId: 0}
	q1 := primitive.MessageQueue{Topic: "t", BrokerName: "b", QueueId: 1}
	type batch struct {
		msgs    []*primitive.MessageExt
		handled bool
	}
	tests := []struct {
		name    string
		batches []batch
		want    map[primitive.MessageQueue]int64
		inHand  int
	}{
		{"nothing consumed", nil, map[primitive.MessageQueue]int64{}, 0},
		{"one batch handled", []batch{{batchOf(q0, 4, 5, 6), true}}, map[primitive.MessageQueue]int64{q0: 7}, 0},
		{"a later batch handled before an earlier one", []batch{{batchOf(q0, 4, 5), false}, {batchOf(q0, 6, 7), true}},
			map[primitive.MessageQueue]int64{q0: 4}, 1},
		{"an earlier batch handled after a later one", []batch{{batchOf(q0, 6, 7), true}, {batchOf(q0, 4, 5), true}},
			map[primitive.MessageQueue]int64{q0: 8}, 0},
		{"queues apart", []batch{{batchOf(q0, 9), true}, {batchOf(q1, 2, 3), false}},
			map[primitive.MessageQueue]int64{q0: 10, q1: 2}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newConsumedOffsets()
			var pending []func()
			for _, b := range tt.batches {
				done := o.take(b.msgs)
				if b.handled {
					pending = append(pending, done)
				}
			}
			for _, done := range pending {
				done()
			}
			got, inHand := o.stoppedAt()
			if !maps.Equal(got, tt.want) || inHand != tt.inHand {
				t.Errorf("stoppedAt() = %v with %d in hand, want %v with %d", got, inHand, tt.want, tt.inHand)
			}
		})
	}
}
