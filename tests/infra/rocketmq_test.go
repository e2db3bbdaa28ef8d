package infra_test

import (
	"context"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/evchat/chatd/tests/infra"

	"github.com/evchat/chatd/tests/eventually"
)

type commitListener struct{}

func (commitListener) ExecuteLocalTransaction(*primitive.Message) primitive.LocalTransactionState {
	return primitive.CommitMessageState
}

func (commitListener) CheckLocalTransaction(*primitive.MessageExt) primitive.LocalTransactionState {
	return primitive.CommitMessageState
}

func TestRocketMQTransactionalBroadcast(t *testing.T) {
	rlog.SetLogLevel("error")
	r := infra.StartRocketMQ(t)
	const topic = "infra_chat_events"
	for range 2 { // the second call proves CreateTopic idempotent
		if err := r.CreateTopic(topic); err != nil {
			t.Fatal(err)
		}
	}
	resolver := primitive.NewPassthroughResolver([]string{r.NamesrvAddr()})

	received := make(chan string, 16)
	c, err := rocketmq.NewPushConsumer(
		consumer.WithNsResolver(resolver),
		consumer.WithGroupName("infra_broadcast"),
		consumer.WithInstance(infra.ClientInstance(t, "consumer")),
		consumer.WithConsumerModel(consumer.BroadCasting),
		// A fresh topic: start at its beginning so that a message sent
		// before the first rebalance finishes is not skipped.
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, m := range msgs {
			received <- string(m.Body)
		}
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatalf("consumer start: %v", err)
	}
	t.Cleanup(func() { _ = c.Shutdown() })

	p, err := rocketmq.NewTransactionProducer(commitListener{},
		producer.WithNsResolver(resolver),
		producer.WithGroupName("infra_tx_producer"),
		producer.WithInstanceName(infra.ClientInstance(t, "producer")),
		producer.WithRetry(1),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatalf("producer start: %v", err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sent := time.Now()
	res, err := p.SendMessageInTransaction(ctx, primitive.NewMessage(topic, []byte("hello")))
	if err != nil {
		t.Fatalf("transactional send: %v", err)
	}
	if res.State != primitive.CommitMessageState {
		t.Fatalf("transaction state %v, want commit", res.State)
	}
	select {
	case body := <-received:
		if body != "hello" {
			t.Fatalf("received %q, want hello", body)
		}
		t.Logf("committed message delivered in %v", time.Since(sent).Round(time.Millisecond))
	case <-time.After(30 * time.Second):
		t.Fatal("committed message not delivered to the broadcast consumer within 30 s")
	}
}

// TestRocketMQRestart takes the broker down and brings it back on the same
// port and store: the topic must survive and take messages again.
func TestRocketMQRestart(t *testing.T) {
	rlog.SetLogLevel("error")
	r := infra.StartRocketMQ(t)
	const topic = "infra_restart"
	if err := r.CreateTopic(topic); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if err := r.StopBroker(); err != nil {
		t.Fatal(err)
	}
	t.Logf("broker stopped in %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	if err := r.StartBroker(); err != nil {
		t.Fatalf("broker start again: %v", err)
	}
	t.Logf("broker started again in %v", time.Since(start).Round(time.Millisecond))

	p, err := rocketmq.NewProducer(
		producer.WithNsResolver(primitive.NewPassthroughResolver([]string{r.NamesrvAddr()})),
		producer.WithGroupName("infra_restart_producer"),
		producer.WithInstanceName(infra.ClientInstance(t, "producer")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte("after restart"))); err != nil {
		t.Fatalf("send after broker restart: %v", err)
	}

	// And the whole pair: Stop then Start keeps both addresses, and the
	// producer that was connected all along carries on.
	r.Stop()
	start = time.Now()
	if err := r.Start(); err != nil {
		t.Fatalf("start again: %v", err)
	}
	t.Logf("name server and broker started again in %v", time.Since(start).Round(time.Millisecond))
	if err := r.CreateTopic(topic); err != nil {
		t.Fatalf("topic after full restart: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	var sendErr error
	if err := eventually.Poll(40*time.Second, func() (bool, error) {
		_, sendErr = p.SendSync(ctx, primitive.NewMessage(topic, []byte("after full restart")))
		return sendErr == nil, nil
	}); err != nil {
		t.Fatalf("send after full restart: %v", sendErr)
	}
	t.Logf("old producer sending again %v after the restart", time.Since(start).Round(time.Millisecond))
}
