package failover

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evchat/chatd/adapters/rocketmq"
	"github.com/evchat/chatd/ports"
	"github.com/evchat/chatd/tests/infra"
)

// failoverConversations send steadily, failoverSendEvery apart each: 100
// sends a second in all, as the measurements did.
const (
	failoverConversations = 20
	failoverSendEvery     = 200 * time.Millisecond
	// failoverBound is what the issue allows after a fault: sends succeed
	// again, and every conversation is delivered again, within it.
	failoverBound = 10 * time.Second
)

// failoverSend is one Publish of the steady senders.
type failoverSend struct {
	stream     string
	version    uint64
	start, end time.Time
	state      ports.TxState
	err        error
}

// arrivals records when the broadcast consumer got each commit.
type arrivals struct {
	mu sync.Mutex
	at map[string][]time.Time // stream -> arrival times, in arrival order
	by map[string]time.Time   // commit id -> first arrival
}

func (a *arrivals) handle(_ context.Context, commits []ports.Commit) error {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range commits {
		a.at[c.Stream] = append(a.at[c.Stream], now)
		if _, seen := a.by[c.ID]; !seen {
			a.by[c.ID] = now
		}
	}
	return nil
}

// pause is the longest time, from fault on, that a conversation went
// without an arrival, up to until.
func (a *arrivals) pause(stream string, fault, until time.Time) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	last, longest := fault, time.Duration(0)
	for _, t := range a.at[stream] {
		if t.Before(fault) || t.After(until) {
			continue
		}
		longest = max(longest, t.Sub(last))
		last = t
	}
	return max(longest, until.Sub(last))
}

func (a *arrivals) arrived(id string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.by[id]
	return t, ok
}

// commitAll is a local transaction that always commits: this test measures
// the bus, not the store.
type commitAll struct{}

func (commitAll) ExecuteLocal(context.Context, ports.Commit) (ports.TxState, error) {
	return ports.TxCommit, nil
}

func (commitAll) Check(context.Context, ports.Commit) ports.TxState { return ports.TxCommit }

// TestRocketMQSendsSurviveAMastersDeath runs the adapter, as a node wires
// it (publisher, broadcast consumer, master watch), on the deployed layout
// of two masters with slaves, with steady transactional sends from 20
// conversations, and kills broker-a's master a few seconds after the
// clients' route refresh, the worst point of their 30 s cycle. Sends must
// succeed again within 10 s of the kill, none may wait longer than the send
// timeout times the tries, and every conversation must be delivered again
// within 10 s. Then the master comes back on its store, and a producer that
// routes to it must reach the running consumer through its queues.
func TestRocketMQSendsSurviveAMastersDeath(t *testing.T) {
	rocketmq.RouteLogs(slog.New(slog.NewTextHandler(os.Stderr, nil)), slog.LevelError)
	ha := wholeLayout(t)
	suffix := strings.ToLower(rand.Text()[:10])
	cfg := rocketmq.DefaultConfig()
	cfg.NameServers = ha.NamesrvAddrs()
	cfg.Topic, cfg.ProducerGroup, cfg.NodeID = "failover_"+suffix, "failover_tx_"+suffix, "sender_"+suffix
	if err := ha.CreateTopic(cfg.Topic); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	pub, err := rocketmq.NewPublisher(cfg, commitAll{}, log)
	if err != nil {
		t.Fatal(err)
	}
	recvCfg := cfg
	recvCfg.NodeID = "receiver_" + suffix
	sub, err := rocketmq.NewSubscriber(recvCfg, log)
	if err != nil {
		t.Fatal(err)
	}
	got := &arrivals{at: map[string][]time.Time{}, by: map[string]time.Time{}}
	sub.Deliver("deliver", got.handle)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := pub.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Stop(context.Background()) })
	refreshed := time.Now() // the client's first route refresh runs 10 ms after its start
	if err := pub.EnsureTopic(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sub.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Stop(context.Background()) })
	if err := sub.WarmUp(ctx, pub); err != nil {
		t.Fatal(err)
	}
	watch := rocketmq.NewMasterWatch(cfg, log)
	watch.Notify(pub.FollowMasters)
	watch.Notify(sub.FollowMasters)
	_ = watch.Start(context.Background())
	t.Cleanup(func() { _ = watch.Stop(context.Background()) })

	var (
		mu    sync.Mutex
		sends []failoverSend
	)
	stop := make(chan struct{})
	var senders sync.WaitGroup
	streams := make([]string, failoverConversations)
	for i := range streams {
		streams[i] = fmt.Sprintf("c_%s_%02d", suffix, i)
		senders.Add(1)
		go func(stream string) {
			defer senders.Done()
			tick := time.NewTicker(failoverSendEvery)
			defer tick.Stop()
			for version := uint64(1); ; version++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				c := ports.Commit{ID: fmt.Sprintf("%s-%d", stream, version), Stream: stream, Version: version, CommittedAt: time.Now()}
				s := failoverSend{stream: stream, version: version, start: time.Now()}
				sctx, cancel := context.WithTimeout(context.Background(), cfg.SendTimeout*time.Duration(cfg.Retries+1))
				s.state, s.err = pub.Publish(sctx, c)
				cancel()
				s.end = time.Now()
				mu.Lock()
				sends = append(sends, s)
				mu.Unlock()
			}
		}(streams[i])
	}

	time.Sleep(2 * time.Second)
	killed := time.Now()
	if err := ha.Kill(infra.BrokerAMaster); err != nil {
		t.Fatal(err)
	}
	t.Logf("broker-a's master killed %v after the clients' route refresh", killed.Sub(refreshed).Round(time.Millisecond))
	time.Sleep(failoverBound)
	restarted := time.Now()
	if err := ha.Start(infra.BrokerAMaster); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	t.Logf("broker-a's master back in %v", back.Sub(restarted).Round(time.Millisecond))
	time.Sleep(failoverBound / 2)
	close(stop)
	senders.Wait()
	stopped := time.Now()

	// A producer that starts now routes to the restarted master: each
	// conversation's commit must reach the consumer that lived through the
	// master's death, through broker-a's queues too.
	lateCfg := cfg
	lateCfg.NodeID = "late_" + suffix
	late, err := rocketmq.NewPublisher(lateCfg, commitAll{}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := late.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = late.Stop(context.Background()) })
	lateSent := map[string]time.Time{}
	for _, stream := range streams {
		c := ports.Commit{ID: stream + "-late", Stream: stream, Version: 1_000_000, CommittedAt: time.Now()}
		sctx, cancel := context.WithTimeout(context.Background(), cfg.SendTimeout*time.Duration(cfg.Retries+1))
		if state, err := late.Publish(sctx, c); err != nil || state != ports.TxCommit {
			t.Errorf("late send of %s: %v %v", stream, state, err)
		}
		cancel()
		lateSent[c.ID] = time.Now()
	}

	// Let delivery catch up before judging it.
	deadline := time.Now().Add(failoverBound)
	for time.Now().Before(deadline) {
		missing := 0
		mu.Lock()
		for _, s := range sends {
			if s.err == nil && s.state == ports.TxCommit {
				if _, ok := got.arrived(fmt.Sprintf("%s-%d", s.stream, s.version)); !ok {
					missing++
				}
			}
		}
		mu.Unlock()
		for id := range lateSent {
			if _, ok := got.arrived(id); !ok {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}

	var (
		failed, acked, undelivered   int
		firstFail, lastFail, slowest time.Duration
	)
	firstFail = -1
	limit := cfg.SendTimeout * time.Duration(cfg.Retries+1)
	for _, s := range sends {
		slowest = max(slowest, s.end.Sub(s.start))
		if s.err != nil {
			failed++
			if failed <= 5 {
				t.Logf("send %s v%d failed after %v, at +%v from the kill: %v", s.stream, s.version,
					s.end.Sub(s.start).Round(time.Millisecond), s.end.Sub(killed).Round(time.Millisecond), s.err)
			}
			if s.start.After(killed) {
				if firstFail < 0 {
					firstFail = s.end.Sub(killed)
				}
				lastFail = max(lastFail, s.end.Sub(killed))
			}
			continue
		}
		if s.state != ports.TxCommit {
			continue
		}
		acked++
		if _, ok := got.arrived(fmt.Sprintf("%s-%d", s.stream, s.version)); !ok {
			undelivered++
		}
	}
	var killPause, restartPause time.Duration
	var killPaused, restartPaused []string
	for _, stream := range streams {
		if p := got.pause(stream, killed, restarted); p > killPause {
			killPause = p
		}
		if p := got.pause(stream, killed, restarted); p > failoverBound {
			killPaused = append(killPaused, stream)
		}
		if p := got.pause(stream, back, stopped); p > restartPause {
			restartPause = p
		}
		if p := got.pause(stream, back, stopped); p > failoverBound {
			restartPaused = append(restartPaused, stream)
		}
	}
	lateSlowest := time.Duration(0)
	for id, sent := range lateSent {
		if at, ok := got.arrived(id); ok {
			lateSlowest = max(lateSlowest, at.Sub(sent))
		}
	}
	failWindow := "none started after the kill"
	if firstFail >= 0 {
		failWindow = fmt.Sprintf("those started after the kill ended from +%v to +%v", firstFail.Round(time.Millisecond), lastFail.Round(time.Millisecond))
	}
	t.Logf("sends: %d, %d failed (%s), slowest %v; acked %d, not delivered %d",
		len(sends), failed, failWindow, slowest.Round(time.Millisecond), acked, undelivered)
	t.Logf("longest delivery pause: %v after the kill, %v after the restart; late producer's slowest delivery %v",
		killPause.Round(time.Millisecond), restartPause.Round(time.Millisecond), lateSlowest.Round(time.Millisecond))

	if lastFail > failoverBound {
		t.Errorf("sends failed until %v after the kill, more than %v", lastFail, failoverBound)
	}
	if slowest > limit+time.Second {
		t.Errorf("a send took %v, more than the send timeout times the tries (%v)", slowest, limit)
	}
	if len(killPaused) > 0 || len(restartPaused) > 0 {
		t.Errorf("delivery paused over %v: after the kill for %v, after the restart for %v", failoverBound, killPaused, restartPaused)
	}
	for id := range lateSent {
		if _, ok := got.arrived(id); !ok {
			t.Errorf("%s, sent through the restarted layout, never reached the consumer", id)
		}
	}
	if slices.ContainsFunc(sends, func(s failoverSend) bool { return s.err != nil && s.end.Before(killed) }) {
		t.Error("a send failed before any fault")
	}
}
