package contract_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evchat/chatd/adapters/rocketmq"
	"github.com/evchat/chatd/ports"
	"github.com/evchat/chatd/tests/eventually"
	"github.com/evchat/chatd/tests/infra"
)

// What routed delivery owes beyond the contract, on a real broker: a node's
// group resumes after a restart, a new one starts at the end, a broker
// that cannot filter makes the node broadcast, and typing is routed.

// routedNode is one node's delivery consumer, counting what it gets.
type routedNode struct {
	sub *rocketmq.Subscriber
	got *commitCounts
}

// commitCounts counts the commits a node got, by id.
type commitCounts struct {
	mu  sync.Mutex
	got map[string]int
}

func (c *commitCounts) add(_ context.Context, commits []ports.Commit) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cm := range commits {
		c.got[cm.ID]++
	}
	return nil
}

func (c *commitCounts) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got[id]
}

func startRoutedNode(t *testing.T, cfg rocketmq.Config, pub *rocketmq.Publisher, log *slog.Logger) *routedNode {
	t.Helper()
	sub, err := rocketmq.NewSubscriber(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	n := &routedNode{sub: sub, got: &commitCounts{got: map[string]int{}}}
	sub.Deliver("delivery", n.got.add)
	started(t, sub.Start, sub.Stop, func(ctx context.Context) error { return sub.WarmUp(ctx, pub) })
	return n
}

func startRoutedPublisher(t *testing.T, cfg rocketmq.Config) *rocketmq.Publisher {
	t.Helper()
	cfg.NodeID = "publisher_" + strings.ToLower(rand.Text()[:8])
	pub, err := rocketmq.NewPublisher(cfg, alwaysCommit{}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	started(t, pub.Start, pub.Stop, pub.EnsureTopic)
	return pub
}

func publishRouted(t *testing.T, pub *rocketmq.Publisher, c ports.Commit, route ports.Route) ports.Commit {
	t.Helper()
	c.Route = route
	if state, err := pub.Publish(context.Background(), c); state != ports.TxCommit {
		t.Fatalf("publish %s: %v, %v", c.ID, state, err)
	}
	return c
}

// oneRoutedNode is a case's publisher, its node's configuration, a route
// to that node and a stream.
func oneRoutedNode(t *testing.T) (rocketmq.Config, *rocketmq.Publisher, ports.Route, string) {
	cfg := caseConfig(t)
	pub := startRoutedPublisher(t, cfg)
	cfg.NodeID = "node_" + strings.ToLower(rand.Text()[:8])
	return cfg, pub, ports.RouteTo(cfg.NodeID), caseName(t, "s")
}

func TestRocketMQRoutedGroupResumesAfterARestart(t *testing.T) {
	t.Parallel()
	cfg, pub, route, stream := oneRoutedNode(t)

	first := startRoutedNode(t, cfg, pub, quietLogger())
	before := publishRouted(t, pub, commitOf(stream, 1), route)
	eventually.Within(t, 30*time.Second, "the node to get the commit sent before its stop", func() bool { return first.got.count(before.ID) == 1 })
	if err := first.sub.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	var whileDown []ports.Commit
	for v := uint64(2); v <= 6; v++ {
		whileDown = append(whileDown, publishRouted(t, pub, commitOf(stream, v), route))
	}
	again := startRoutedNode(t, cfg, pub, quietLogger())
	for _, c := range whileDown {
		eventually.Within(t, 30*time.Second, "the restarted node to get "+c.ID+", sent while it was down", func() bool { return again.got.count(c.ID) == 1 })
	}
	if n := again.got.count(before.ID); n != 0 {
		t.Errorf("the restarted node got %s, consumed before its stop, %d times; it resumes where it stopped", before.ID, n)
	}
}

// A topic's first messages are still in the broker's memory, which is when
// the broker answers a new group's offset query with 0 instead of the end.
func TestRocketMQRoutedNewGroupStartsAtTheEnd(t *testing.T) {
	t.Parallel()
	cfg, pub, route, stream := oneRoutedNode(t)
	var history []ports.Commit
	for v := uint64(1); v <= 8; v++ {
		history = append(history, publishRouted(t, pub, commitOf(stream, v), route))
	}
	node := startRoutedNode(t, cfg, pub, quietLogger())
	after := publishRouted(t, pub, commitOf(stream, 9), route)
	eventually.Within(t, 30*time.Second, "the new node to get the commit sent after its start", func() bool { return node.got.count(after.ID) == 1 })
	time.Sleep(3 * time.Second)
	for _, c := range history {
		if n := node.got.count(c.ID); n != 0 {
			t.Errorf("a new node got %s, sent before its group existed, %d times; a new group starts at the end", c.ID, n)
		}
	}
}

// lockedBuffer is a log sink several goroutines may write.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// It runs before the parallel cases, so that its broker does not start
// while theirs does.
func TestRocketMQRoutedNodeBroadcastsWhenTheBrokerCannotFilter(t *testing.T) {
	mq, err := infra.LaunchRocketMQ("enablePropertyFilter=false")
	if err != nil {
		t.Fatalf("RocketMQ: %v", err)
	}
	t.Cleanup(mq.Close)
	cfg := rocketmq.DefaultConfig()
	cfg.NameServers = []string{mq.NamesrvAddr()}
	cfg.Topic, cfg.ProducerGroup = "nofilter", "nofilter_tx"
	if err := mq.CreateTopic(cfg.Topic); err != nil {
		t.Fatal(err)
	}
	pub := startRoutedPublisher(t, cfg)
	cfg.NodeID = "node_nofilter"
	logs := &lockedBuffer{}
	node := startRoutedNode(t, cfg, pub, slog.New(slog.NewTextHandler(logs, nil)))
	signals := startSignals(t, cfg, slog.New(slog.NewTextHandler(logs, nil)))

	if node.sub.Mode() != rocketmq.DeliveryBroadcast || signals.Mode() != rocketmq.DeliveryBroadcast {
		t.Fatalf("modes %s (delivery) and %s (signals) on a broker without property filtering, want broadcast", node.sub.Mode(), signals.Mode())
	}
	for _, consumers := range []string{"delivery consumer", "signals consumer"} {
		if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "enablePropertyFilter=true") ||
			!strings.Contains(logs.String(), consumers) {
			t.Errorf("no warning naming enablePropertyFilter=true for the %s; logs:\n%s", consumers, logs)
		}
	}
	elsewhere := publishRouted(t, pub, commitOf(caseName(t, "s"), 1), ports.RouteTo("another_node"))
	eventually.Within(t, 30*time.Second, "the broadcasting node to get a commit routed elsewhere", func() bool { return node.got.count(elsewhere.ID) == 1 })
}

// signalInbox records the signals a node got, by user.
type signalInbox struct {
	mu  sync.Mutex
	got map[string]int
}

func (in *signalInbox) add(_ context.Context, s ports.Signal) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.got[string(s.Kind)+"/"+string(s.User)]++
}

func (in *signalInbox) count(kind ports.SignalKind, user string) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.got[string(kind)+"/"+user]
}

func startSignals(t *testing.T, cfg rocketmq.Config, log *slog.Logger) *rocketmq.Signals {
	t.Helper()
	s, err := rocketmq.NewSignals(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	return startedSignals(t, s)
}

func startedSignals(t *testing.T, s *rocketmq.Signals) *rocketmq.Signals {
	t.Helper()
	started(t, s.Start, s.Stop, s.WarmUp)
	return s
}

func TestRocketMQTypingIsRoutedPresenceReachesEveryNode(t *testing.T) {
	t.Parallel()
	cfg := caseConfig(t)
	startRoutedPublisher(t, cfg)
	ids := []string{"node_a_" + strings.ToLower(rand.Text()[:6]), "node_b_" + strings.ToLower(rand.Text()[:6])}
	var nodes []*rocketmq.Signals
	var inboxes []*signalInbox
	for _, id := range ids {
		node := cfg
		node.NodeID = id
		s, err := rocketmq.NewSignals(node, quietLogger())
		if err != nil {
			t.Fatal(err)
		}
		in := &signalInbox{got: map[string]int{}}
		s.Subscribe(in.add)
		nodes, inboxes = append(nodes, startedSignals(t, s)), append(inboxes, in)
		if s.Mode() != rocketmq.DeliveryRouted {
			t.Fatalf("signals of %s in %s mode, want routed", id, s.Mode())
		}
	}
	ctx := context.Background()
	typing := ports.Signal{Kind: ports.SignalTyping, Node: ids[1], At: time.Now(), User: "typist", Conversation: "c_1", To: "reader", Route: ports.RouteTo(ids[0])}
	join := ports.Signal{Kind: ports.SignalJoin, Node: ids[1], Seq: 1, At: time.Now(), User: "joiner"}
	for _, s := range []ports.Signal{typing, join} {
		if err := nodes[1].Publish(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	for i := range ids {
		eventually.Within(t, 30*time.Second, ids[i]+" to get the join", func() bool { return inboxes[i].count(ports.SignalJoin, "joiner") == 1 })
	}
	eventually.Within(t, 30*time.Second, ids[0]+" to get the typing routed to it", func() bool { return inboxes[0].count(ports.SignalTyping, "typist") == 1 })
	time.Sleep(3 * time.Second)
	if n := inboxes[1].count(ports.SignalTyping, "typist"); n != 0 {
		t.Errorf("%s got a typing signal routed to %s %d times", ids[1], ids[0], n)
	}
}

// caseName is unique to the case and the run.
func caseName(t *testing.T, prefix string) string {
	return prefix + "_" + strings.ToLower(rand.Text()[:10])
}

// commitOf is a commit of stream at version with no events: routing looks
// at none.
func commitOf(stream string, version uint64) ports.Commit {
	return ports.Commit{ID: fmt.Sprintf("%s-%d", stream, version), Stream: stream, Version: version, CommittedAt: time.Now()}
}
