package failover

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/evchat/chatd/tests/infra"
)

// brokerSelector sends each message to the first queue of the group its
// "group" property names, so that a test decides which master it goes
// through.
type brokerSelector struct{}

func (brokerSelector) Select(m *primitive.Message, queues []*primitive.MessageQueue, _ string) *primitive.MessageQueue {
	for _, q := range queues {
		if q.BrokerName == m.GetProperty("group") {
			return q
		}
	}
	return queues[0]
}

// TestLayout checks, in order, on the package's layout: both groups route,
// with their slaves; a message through a master is read from its slave
// once the master is dead; the killed master restarts on its store; and what
// a slave's death does to sends on its master under the shipped durability
// settings.
func TestLayout(t *testing.T) {
	r := wholeLayout(t)
	pids := r.Pids()
	seen := map[int]bool{}
	for _, role := range infra.HARoles {
		if pids[role] == 0 || seen[pids[role]] {
			t.Fatalf("pids %v: %s has none or another's", pids, role)
		}
		seen[pids[role]] = true
	}
	const topic = "ha_events"
	if err := r.CreateTopic(topic); err != nil {
		t.Fatal(err)
	}
	for _, ns := range r.NamesrvAddrs() {
		route, err := infra.QueryRoute(ns, topic)
		if err != nil {
			t.Fatal(err)
		}
		addrs := route.BrokerAddrs()
		for _, role := range []infra.HARole{infra.BrokerAMaster, infra.BrokerASlave, infra.BrokerBMaster, infra.BrokerBSlave} {
			if !containsValue(addrs[role.BrokerName()], r.Addr(role)) {
				t.Errorf("name server %s routes %v, not %s at %s", ns, addrs, role, r.Addr(role))
			}
		}
		for _, group := range []string{"broker-a", "broker-b"} {
			if n := route.WriteQueues(group); n != 8 {
				t.Errorf("name server %s: %s has %d write queues of %s, want 8", ns, group, n, topic)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	p := startHAProducer(t, r)
	send := func(group string, n int, tag string) []string {
		var bodies []string
		for i := range n {
			body := fmt.Sprintf("%s-%s-%d", tag, group, i)
			m := primitive.NewMessage(topic, []byte(body))
			m.WithProperty("group", group)
			// A master that waits for its slave answers "flush slave
			// timeout" when the slave is slow to ack (a loaded machine);
			// the copy is stored all the same, and the set read back
			// ignores the resend's duplicate.
			for attempt := 1; ; attempt++ {
				res, err := p.SendSync(context.Background(), m)
				if err == nil && res.Status == primitive.SendOK {
					break
				}
				if attempt == 5 {
					t.Fatalf("send %s: %v %v", body, res, err)
				}
				t.Logf("send %s, attempt %d: %v %v", body, attempt, res, err)
			}
			bodies = append(bodies, body)
		}
		return bodies
	}
	before := append(send("broker-a", 10, "before"), send("broker-b", 10, "before")...)

	t.Run("DeadMastersMessagesAreReadFromItsSlave", func(t *testing.T) {
		if err := r.Kill(infra.BrokerAMaster); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		got := consumeAll(t, r, topic, "ha_from_slave", len(before))
		assertSameSet(t, got, before)
		t.Logf("all %d messages read with broker-a's master dead after %v", len(got), time.Since(start).Round(time.Millisecond))
	})

	t.Run("KilledMasterRestartsOnItsStore", func(t *testing.T) {
		if err := r.Kill(infra.BrokerAMaster); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := r.Start(infra.BrokerAMaster); err != nil {
			t.Fatal(err)
		}
		t.Logf("broker-a's master routed again %v after its start", time.Since(start).Round(time.Millisecond))
		after := send("broker-a", 5, "after")
		got := consumeAll(t, r, topic, "ha_after_restart", len(before)+len(after))
		assertSameSet(t, got, append(append([]string{}, before...), after...))
	})

	t.Run("SlaveDeathUnderTheShippedDurability", func(t *testing.T) {
		m := measureSlaveDeath(t, r, p, topic)
		t.Logf("broker-a's slave killed under %s: %d of %d sends to broker-a failed (%v), failing from %v to %v after the kill; slowest send %v, median before %v, after %v",
			m.setting, m.failed, m.sent, m.statuses, m.firstFailure, m.lastFailure, m.slowest, m.medianBefore, m.medianAfter)
		// A send the master took before it saw the slave's connection
		// close waits for the slave's ack until slaveTimeout; later ones
		// are acked by the master alone.
		if m.failed > 0 && m.lastFailure > slaveDeathNoticed {
			t.Errorf("a slave's death failed sends to its master until %v after the kill; the shipped settings degrade to the master alone once it notices, within %v",
				m.lastFailure, slaveDeathNoticed)
		}
		if err := r.Start(infra.BrokerASlave); err != nil {
			t.Fatal(err)
		}
	})
}

func containsValue(m map[int64]string, v string) bool {
	for _, x := range m {
		if x == v {
			return true
		}
	}
	return false
}

func startHAProducer(t *testing.T, r *infra.RocketMQHA) rocketmq.Producer {
	t.Helper()
	p, err := rocketmq.NewProducer(
		producer.WithNsResolver(primitive.NewPassthroughResolver(r.NamesrvAddrs())),
		producer.WithGroupName("ha_producer"),
		producer.WithInstanceName(infra.ClientInstance(t, "producer")),
		producer.WithQueueSelector(brokerSelector{}),
		// One attempt, so that what the broker answers is what is counted.
		producer.WithRetry(0),
		producer.WithSendMsgTimeout(5*time.Second),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

// consumeAll reads topic from its beginning with a new broadcast consumer
// until it has want distinct messages, or fails the test after 60 s.
func consumeAll(t *testing.T, r *infra.RocketMQHA, topic, group string, want int) []string {
	t.Helper()
	var mu sync.Mutex
	got := map[string]bool{}
	done := make(chan struct{})
	c, err := rocketmq.NewPushConsumer(
		consumer.WithNsResolver(primitive.NewPassthroughResolver(r.NamesrvAddrs())),
		consumer.WithGroupName(group),
		consumer.WithInstance(infra.ClientInstance(t, group)),
		consumer.WithConsumerModel(consumer.BroadCasting),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			got[string(m.Body)] = true
		}
		if len(got) == want {
			close(done)
		}
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Shutdown() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
	}
	mu.Lock()
	defer mu.Unlock()
	var out []string
	for b := range got {
		out = append(out, b)
	}
	return out
}

func assertSameSet(t *testing.T, got, want []string) {
	t.Helper()
	sort.Strings(got)
	w := append([]string{}, want...)
	sort.Strings(w)
	if fmt.Sprint(got) != fmt.Sprint(w) {
		t.Fatalf("read %d messages %v, want %d %v", len(got), got, len(w), w)
	}
}

// slaveDeathNoticed bounds how long after a slave's kill its master may
// still take sends that wait for it (measured: up to 26 ms).
const slaveDeathNoticed = time.Second

type slaveDeath struct {
	setting                   string
	sent, failed              int
	statuses                  map[string]int
	firstFailure, lastFailure time.Duration
	slowest                   time.Duration
	medianBefore, medianAfter time.Duration
}

// measureSlaveDeath sends steadily to broker-a from four senders, kills its
// slave 3 s in and keeps sending for 12 s more.
func measureSlaveDeath(t *testing.T, r *infra.RocketMQHA, p rocketmq.Producer, topic string) slaveDeath {
	t.Helper()
	conf, err := os.ReadFile(r.ConfPath(infra.BrokerAMaster))
	if err != nil {
		t.Fatal(err)
	}
	c := infra.ParseConf(conf)
	m := slaveDeath{statuses: map[string]int{}, firstFailure: -1}
	m.setting = fmt.Sprintf("brokerRole=%s inSyncReplicas=%s minInSyncReplicas=%s enableAutoInSyncReplicas=%s enableSlaveActingMaster=%s",
		c["brokerRole"], c["inSyncReplicas"], c["minInSyncReplicas"], c["enableAutoInSyncReplicas"], c["enableSlaveActingMaster"])
	var (
		mu            sync.Mutex
		before, after []time.Duration
		killAt        time.Time
		wg            sync.WaitGroup
	)
	start := time.Now()
	end := start.Add(15 * time.Second)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(end); i++ {
				msg := primitive.NewMessage(topic, []byte(fmt.Sprintf("slave-death-%d-%d", w, i)))
				msg.WithProperty("group", "broker-a")
				sentAt := time.Now()
				res, err := p.SendSync(context.Background(), msg)
				took := time.Since(sentAt)
				mu.Lock()
				m.sent++
				m.slowest = max(m.slowest, took)
				if killAt.IsZero() {
					before = append(before, took)
				} else {
					after = append(after, took)
				}
				if err != nil || res.Status != primitive.SendOK {
					m.failed++
					status := "error"
					if err == nil {
						status = fmt.Sprintf("status %d", res.Status)
					}
					m.statuses[status]++
					if !killAt.IsZero() {
						at := sentAt.Sub(killAt)
						if m.firstFailure < 0 {
							m.firstFailure = at
						}
						m.lastFailure = at
					}
				}
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	time.Sleep(3 * time.Second)
	mu.Lock()
	killAt = time.Now()
	mu.Unlock()
	if err := r.Kill(infra.BrokerASlave); err != nil {
		t.Error(err)
	}
	wg.Wait()
	m.medianBefore, m.medianAfter = median(before), median(after)
	return m
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}
