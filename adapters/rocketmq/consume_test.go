package rocketmq

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/evchat/chatd/ports"
)

// recordingObserver keeps what a consumer told it.
type recordingObserver struct {
	lags              []time.Duration
	redelivered, dead int
}

func (r *recordingObserver) Consumed(lag time.Duration) { r.lags = append(r.lags, lag) }
func (r *recordingObserver) Redelivered(n int)          { r.redelivered += n }
func (r *recordingObserver) DeadLettered(n int)         { r.dead += n }

func TestReconsumeSplit(t *testing.T) {
	tests := []struct {
		name        string
		reconsumed  []int32
		max         int
		again, dead int
	}{
		{"first failures", []int32{0, 0}, 3, 2, 0},
		{"the last try", []int32{2, 3}, 3, 1, 1},
		{"past the bound", []int32{4}, 3, 0, 1},
		{"no reconsume at all", []int32{0}, 0, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var msgs []*primitive.MessageExt
			for _, n := range tt.reconsumed {
				msgs = append(msgs, &primitive.MessageExt{ReconsumeTimes: n})
			}
			if again, dead := reconsumeSplit(msgs, tt.max); again != tt.again || dead != tt.dead {
				t.Fatalf("reconsumeSplit = %d again, %d dead; want %d, %d", again, dead, tt.again, tt.dead)
			}
		})
	}
}

// TestConsumeObservesLagAndFailedBatches: every message's lag is
// observed, and a failed cluster batch counts its messages as redelivered
// or, past the bound, dead-lettered; a failed delivery batch counts
// neither, since it is not handed back.
func TestConsumeObservesLagAndFailedBatches(t *testing.T) {
	body, err := encodeCommit(ports.Commit{ID: "c1-1", Stream: "c1", Version: 1}, "all")
	if err != nil {
		t.Fatal(err)
	}
	stored := time.Now().Add(-time.Minute).UnixMilli()
	batch := []*primitive.MessageExt{
		{Message: primitive.Message{Body: encodeBatch([][]byte{body})}, StoreTimestamp: stored, ReconsumeTimes: 0},
		{Message: primitive.Message{Body: encodeBatch([][]byte{body})}, StoreTimestamp: stored, ReconsumeTimes: 3},
	}
	tests := []struct {
		name              string
		delivery          bool
		handlerErr        error
		want              consumer.ConsumeResult
		redelivered, dead int
	}{
		{"cluster batch consumed", false, nil, consumer.ConsumeSuccess, 0, 0},
		{"cluster batch failed", false, errors.New("store down"), consumer.ConsumeRetryLater, 1, 1},
		{"delivery batch failed", true, errors.New("store down"), consumer.ConsumeSuccess, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.NameServers, cfg.NodeID = []string{"127.0.0.1:9876"}, "n1"
			observer := &recordingObserver{}
			cfg.Observe = func(kind string) ConsumeObserver {
				if kind != "projector" {
					t.Errorf("observer asked for kind %q, want projector", kind)
				}
				return observer
			}
			s, err := NewSubscriber(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			s.Cluster("projector", func(context.Context, []ports.Commit) error { return tt.handlerErr })
			sub := s.subs[0]
			sub.delivery = tt.delivery
			got, err := s.consume(sub)(context.Background(), batch...)
			if err != nil || got != tt.want {
				t.Fatalf("consume = %v, %v; want %v", got, err, tt.want)
			}
			if len(observer.lags) != len(batch) || observer.lags[0] < time.Minute || observer.lags[0] > 2*time.Minute {
				t.Fatalf("lags observed %v, want one of about a minute per message", observer.lags)
			}
			if observer.redelivered != tt.redelivered || observer.dead != tt.dead {
				t.Fatalf("redelivered %d, dead-lettered %d; want %d, %d", observer.redelivered, observer.dead, tt.redelivered, tt.dead)
			}
		})
	}
}
