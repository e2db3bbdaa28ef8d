package rocketmq

import (
	"fmt"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// queuesOf lists the queues of brokers, perQueue each, in the order the
// client's route gives them (sorted by broker).
func queuesOf(perBroker int, brokers ...string) []*primitive.MessageQueue {
	var out []*primitive.MessageQueue
	for _, b := range brokers {
		for i := range perBroker {
			out = append(out, &primitive.MessageQueue{Topic: "t", BrokerName: b, QueueId: i})
		}
	}
	return out
}

func keyed(key string) *primitive.Message {
	m := primitive.NewMessage("t", nil)
	m.WithShardingKey(key)
	return m
}

// keyOn finds a sharding key the client's hash selector puts on broker.
func keyOn(t *testing.T, broker string, queues []*primitive.MessageQueue) string {
	t.Helper()
	hash := producer.NewHashQueueSelector()
	for i := range 1000 {
		key := fmt.Sprintf("conv-%d", i)
		if hash.Select(keyed(key), queues, "").BrokerName == broker {
			return key
		}
	}
	t.Fatalf("no key hashes to %s", broker)
	return ""
}

// selection is one Select call of a scenario: at is the time since the
// scenario began, routed (when not nil) what the master watch reported just
// before it.
type selection struct {
	at         time.Duration
	routed     []string
	key        string
	lastBroker string
	// wantBroker is the broker the queue must be on; wantSame asks for the
	// very queue the client's hash selector picks.
	wantBroker string
	wantSame   bool
}

func TestBrokerFailoverSelect(t *testing.T) {
	queues := queuesOf(8, "broker-a", "broker-b")
	onA, onB := keyOn(t, "broker-a", queues), keyOn(t, "broker-b", queues)
	const quarantine = 5 * time.Second

	tests := []struct {
		name  string
		calls []selection
	}{
		{"every broker up: the client's hash queue", []selection{
			{key: onA, wantBroker: "broker-a", wantSame: true},
			{key: onB, wantBroker: "broker-b", wantSame: true},
		}},
		{"a retry leaves the broker that failed", []selection{
			{key: onA, lastBroker: "broker-a", wantBroker: "broker-b"},
		}},
		{"a failed broker is skipped by later sends, and only it", []selection{
			{key: onA, lastBroker: "broker-a", wantBroker: "broker-b"},
			{at: time.Second, key: onA, wantBroker: "broker-b"},
			{at: time.Second, key: onB, wantBroker: "broker-b", wantSame: true},
		}},
		{"a failed broker is probed again after the quarantine", []selection{
			{key: onA, lastBroker: "broker-a", wantBroker: "broker-b"},
			{at: quarantine - time.Millisecond, key: onA, wantBroker: "broker-b"},
			{at: quarantine, key: onA, wantBroker: "broker-a", wantSame: true},
		}},
		{"a failed probe quarantines the broker again", []selection{
			{key: onA, lastBroker: "broker-a", wantBroker: "broker-b"},
			{at: quarantine, key: onA, lastBroker: "broker-a", wantBroker: "broker-b"},
			{at: 2*quarantine - time.Millisecond, key: onA, wantBroker: "broker-b"},
		}},
		{"a broker routed without a master is skipped until it has one again", []selection{
			{routed: []string{"broker-b"}, key: onA, wantBroker: "broker-b"},
			{at: time.Minute, key: onA, wantBroker: "broker-b"},
			{at: time.Minute, routed: []string{"broker-a", "broker-b"}, key: onA, wantBroker: "broker-a", wantSame: true},
		}},
		{"a regained master ends the quarantine", []selection{
			{routed: []string{"broker-a", "broker-b"}, key: onA, lastBroker: "broker-a", wantBroker: "broker-b"},
			{at: time.Second, routed: []string{"broker-b"}, key: onA, wantBroker: "broker-b"},
			{at: 2 * time.Second, routed: []string{"broker-a", "broker-b"}, key: onA, wantBroker: "broker-a", wantSame: true},
		}},
		{"every broker down: not the one that just failed", []selection{
			{key: onB, lastBroker: "broker-b", wantBroker: "broker-a"},
			{at: time.Second, key: onB, lastBroker: "broker-a", wantBroker: "broker-b"},
		}},
		{"no broker routed with a master: the hash queue all the same", []selection{
			{routed: []string{}, key: onA, wantBroker: "broker-a", wantSame: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Unix(1_700_000_000, 0)
			now := start
			s := newBrokerFailover(quarantine, func() time.Time { return now })
			hash := producer.NewHashQueueSelector()
			for i, c := range tt.calls {
				now = start.Add(c.at)
				if c.routed != nil {
					s.setRouted(c.routed)
				}
				got := s.Select(keyed(c.key), queues, c.lastBroker)
				if got.BrokerName != c.wantBroker {
					t.Fatalf("call %d: queue on %s, want %s", i, got.BrokerName, c.wantBroker)
				}
				if c.wantSame && got != hash.Select(keyed(c.key), queues, "") {
					t.Fatalf("call %d: queue %d, not the hash selector's", i, got.QueueId)
				}
			}
		})
	}
}

// TestBrokerFailoverKeepsAConversationTogether: while a broker is down, each
// of its conversations still goes to one queue, so a conversation moves
// once and its commits stay together on the other broker.
func TestBrokerFailoverKeepsAConversationTogether(t *testing.T) {
	queues := queuesOf(8, "broker-a", "broker-b")
	now := time.Unix(1_700_000_000, 0)
	s := newBrokerFailover(time.Minute, func() time.Time { return now })
	s.Select(keyed("x"), queues, "broker-a")
	for i := range 50 {
		key := fmt.Sprintf("conv-%d", i)
		first := s.Select(keyed(key), queues, "")
		for range 3 {
			if again := s.Select(keyed(key), queues, ""); again != first {
				t.Fatalf("%s went to queue %s/%d, then %s/%d", key, first.BrokerName, first.QueueId, again.BrokerName, again.QueueId)
			}
		}
		if first.BrokerName != "broker-b" {
			t.Fatalf("%s went to %s, which is down", key, first.BrokerName)
		}
	}
}

// TestBrokerFailoverWithoutKeySkipsFailedBroker: unkeyed messages (probes,
// warm-ups) go to a random live queue.
func TestBrokerFailoverWithoutKeySkipsFailedBroker(t *testing.T) {
	queues := queuesOf(4, "broker-a", "broker-b")
	now := time.Unix(1_700_000_000, 0)
	s := newBrokerFailover(time.Minute, func() time.Time { return now })
	s.Select(primitive.NewMessage("t", nil), queues, "broker-a")
	for range 100 {
		if q := s.Select(primitive.NewMessage("t", nil), queues, ""); q.BrokerName != "broker-b" {
			t.Fatalf("unkeyed message went to %s, which is down", q.BrokerName)
		}
	}
}

func TestBrokerFailoverNoQueues(t *testing.T) {
	s := newBrokerFailover(time.Minute, time.Now)
	if q := s.Select(keyed("x"), nil, ""); q != nil {
		t.Fatalf("got %v without queues", q)
	}
}
