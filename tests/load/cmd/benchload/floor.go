package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evchat/chatd/adapters/rocketmq"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
	"github.com/evchat/chatd/tests/infra"
	"github.com/evchat/chatd/tests/load"
)

// floorResult is the raw cross-node path without chatd: from a commit's
// scheduled publish time to a broadcast consumer's handler.
type floorResult struct {
	Rate            float64
	Duration        time.Duration // of the measured part
	Sent, Received  int
	Failed          int // Publish calls that did not commit
	Duplicates      int
	E2E, PublishLat load.Percentiles
}

func (f *floorResult) Text() string {
	return fmt.Sprintf("sent %d, received %d, failed %d, duplicates %d\n    e2e     %s\n    publish %s",
		f.Sent, f.Received, f.Failed, f.Duplicates, f.E2E, f.PublishLat)
}

// commitAtOnce is a local transaction with nothing to do: the floor is the
// broker's half message, the end-transaction call and the delivery.
type commitAtOnce struct{}

func (commitAtOnce) ExecuteLocal(context.Context, ports.Commit) (ports.TxState, error) {
	return ports.TxCommit, nil
}
func (commitAtOnce) Check(context.Context, ports.Commit) ports.TxState { return ports.TxCommit }

// floorStreams spreads the commits over conversations, hence over the
// topic's queues, as the chat's pairs are.
const floorStreams = 200

// floorRun is the floor's load: rate for d after an unmeasured prelude,
// with drain for the last commits to arrive; measureStart, when set, is
// called as the measured part starts.
type floorRun struct {
	rate         float64
	prelude, d   time.Duration
	drain        time.Duration
	measureStart func()
}

// measureFloor publishes MessagePosted commits at run's rate, through
// adapters/rocketmq's transactional Publisher, on a topic of its own on
// rmq, and times them to a BROADCASTING Subscriber in this process. Like
// the load client it is open-loop: each publish has its own goroutine and
// the latency is counted from its scheduled time.
func measureFloor(ctx context.Context, rmq *infra.RocketMQ, run floorRun) (*floorResult, error) {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rocketmq.RouteLogs(logger, slog.LevelError)
	cfg := rocketmq.DefaultConfig()
	cfg.NameServers = []string{rmq.NamesrvAddr()}
	cfg.Topic = "bench_floor"
	cfg.ProducerGroup = "bench_floor_tx"
	cfg.NodeID = "bench_floor"
	if err := rmq.CreateTopic(cfg.Topic); err != nil {
		return nil, err
	}
	pub, err := rocketmq.NewPublisher(cfg, commitAtOnce{}, logger)
	if err != nil {
		return nil, err
	}
	if err := pub.Start(ctx); err != nil {
		return nil, err
	}
	defer func() { _ = pub.Stop(context.WithoutCancel(ctx)) }()
	setup, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := pub.EnsureTopic(setup); err != nil {
		return nil, err
	}

	var (
		mu       sync.Mutex
		seen     = map[string]bool{}
		e2e      []time.Duration
		dups     atomic.Int64
		received atomic.Int64
	)
	sub, err := rocketmq.NewSubscriber(cfg, logger)
	if err != nil {
		return nil, err
	}
	sub.Deliver("bench_floor", func(_ context.Context, commits []ports.Commit) error {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range commits {
			if c.Origin != originMeasured {
				continue
			}
			if seen[c.ID] {
				dups.Add(1)
				continue
			}
			seen[c.ID] = true
			e2e = append(e2e, now.Sub(c.CommittedAt))
			received.Add(1)
		}
		return nil
	})
	if err := sub.Start(ctx); err != nil {
		return nil, err
	}
	defer func() { _ = sub.Stop(context.WithoutCancel(ctx)) }()
	// The consumer starts at the end of the topic once its first rebalance
	// is done; WarmUp returns when it consumes.
	if err := sub.WarmUp(setup, pub); err != nil {
		return nil, err
	}

	p := &floorPublisher{pub: pub}
	// A broker fresh from its start answers its first seconds of load far
	// slower than its steady state (the JVM compiles its hot paths then),
	// which is what the floor is about.
	p.run(ctx, run.rate, run.prelude, originPrelude)
	res := &floorResult{Rate: run.rate, Duration: run.d}
	if run.measureStart != nil {
		run.measureStart()
	}
	pubLat := p.run(ctx, run.rate, run.d, originMeasured)
	res.Sent, res.Failed = p.sent, p.failed
	deadline := time.Now().Add(run.drain)
	for int(received.Load()) < res.Sent-res.Failed && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	res.Received, res.Duplicates = int(received.Load()), int(dups.Load())
	res.E2E = load.Summarize(e2e)
	mu.Unlock()
	res.PublishLat = load.Summarize(pubLat)
	return res, ctx.Err()
}

// The commits of the prelude and of the measured run are told apart by
// their Origin, which the bus carries.
const (
	originPrelude  = "bench-floor-prelude"
	originMeasured = "bench-floor"
)

type floorPublisher struct {
	pub          *rocketmq.Publisher
	n            int
	version      [floorStreams]uint64
	sent, failed int
}

// run publishes at rate for d, open-loop, and returns the publish latencies;
// sent and failed count the run's commits.
func (p *floorPublisher) run(ctx context.Context, rate float64, d time.Duration, origin string) []time.Duration {
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		lat    []time.Duration
		failed atomic.Int64
		sent   int
	)
	// Publishes in flight are bounded so that a broker that stops
	// answering cannot pile up goroutines; a full set delays the schedule,
	// which then shows in the latency.
	inflight := make(chan struct{}, 512)
	interval := time.Duration(float64(time.Second) / rate)
	t0 := time.Now()
	for due := t0; due.Before(t0.Add(d)) && ctx.Err() == nil; due = due.Add(interval) {
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		i := p.n % floorStreams
		p.version[i]++
		c := floorCommit(i, p.version[i], p.n, due, origin)
		p.n++
		sent++
		inflight <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-inflight }()
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			state, err := p.pub.Publish(pctx, c)
			if err != nil || state != ports.TxCommit {
				failed.Add(1)
				return
			}
			mu.Lock()
			lat = append(lat, time.Since(c.CommittedAt))
			mu.Unlock()
		}()
	}
	wg.Wait()
	p.sent, p.failed = sent, int(failed.Load())
	return lat
}

// floorCommit is a MessagePosted commit like the chat's, with its
// scheduled time as CommittedAt, which the subscriber reads back.
func floorCommit(stream int, version uint64, n int, due time.Time, origin string) ports.Commit {
	from, to := user.ID(fmt.Sprintf("floor-s%d", stream)), user.ID(fmt.Sprintf("floor-r%d", stream))
	conv := conversation.IDFor(from, to)
	id := message.IDFor(from, message.ClientID(fmt.Sprintf("f%d", n)))
	return ports.Commit{
		ID: string(id), Stream: conversation.MessagesStream(conv), Version: version, CommittedAt: due, Origin: origin,
		Events: []conversation.Event{conversation.MessagePosted{Conversation: conv, Seq: version, MessageID: id,
			From: from, To: to, Body: message.Body(fmt.Sprintf("floor %d %s", n, "................................................")), SentAt: due}},
	}
}
