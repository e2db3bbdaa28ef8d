package memory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evchat/chatd/adapters/txbatch"
	"github.com/evchat/chatd/ports"
)

// BusConfig tunes the in-process bus.
type BusConfig struct {
	// QueueSize bounds the commits waiting for dispatch; a full queue makes
	// Publish wait, which is the backpressure a sender should feel.
	QueueSize int
	// BatchSize bounds how many commits one handler call gets.
	BatchSize int
	// CheckInterval is how often half messages of unknown outcome are checked back.
	CheckInterval time.Duration
	// MaxReconsume bounds the redeliveries of a failed cluster batch.
	MaxReconsume int
	// Log hears of the handlers' failures; nil is slog.Default().
	Log *slog.Logger
}

// DefaultBusConfig suits one node.
func DefaultBusConfig() BusConfig {
	return BusConfig{QueueSize: 8192, BatchSize: 64, CheckInterval: time.Second, MaxReconsume: 3}
}

// Bus is the in-process transactional message bus: a half message waits in
// the bus while the local transaction runs, and only a commit reaches the
// subscribers, exactly as with RocketMQ's transactional producer. Cluster
// handlers see a batch before delivery handlers do, so on one node the read
// model is current by the time a session hears of a message.
//
// The bus's own Deliver handlers get every commit: the bus's node published
// each of them, and a node always gets back what it published, as on
// RocketMQ (its republisher waits for it). Other nodes in the process
// (OnNode, for tests) get only what is routed to them, as on RocketMQ.
type Bus struct {
	handler ports.TransactionHandler
	cfg     BusConfig

	queue chan ports.Commit

	// next names half messages: a batch's commits share one.
	next atomic.Uint64

	mu       sync.Mutex
	half     map[string][]ports.Commit
	delivery []nodeHandler
	cluster  map[string]ports.CommitHandler
	stop     chan struct{}
	done     sync.WaitGroup
}

var (
	_ ports.BatchPublisher = (*Bus)(nil)
	_ ports.Subscriber     = (*Bus)(nil)
)

// NewBus returns a bus that runs handler's local transaction and checkback.
func NewBus(handler ports.TransactionHandler, cfg BusConfig) (*Bus, error) {
	if handler == nil {
		return nil, errors.New("memory bus: a transaction handler is required")
	}
	def := DefaultBusConfig()
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = def.QueueSize
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = def.BatchSize
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = def.CheckInterval
	}
	if cfg.MaxReconsume <= 0 {
		cfg.MaxReconsume = def.MaxReconsume
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Bus{handler: handler, cfg: cfg, queue: make(chan ports.Commit, cfg.QueueSize), half: map[string][]ports.Commit{}, cluster: map[string]ports.CommitHandler{}}, nil
}

// nodeHandler is a Deliver handler and the node it delivers on.
type nodeHandler struct {
	node    string
	handler ports.CommitHandler
}

// Deliver implements ports.Subscriber for the bus's own node, the
// publisher of every commit, which therefore gets them all.
func (b *Bus) Deliver(_ string, h ports.CommitHandler) { b.deliverOn("", h) }

// Routed implements ports.Subscriber: the bus's own node gets every commit.
func (b *Bus) Routed() bool { return false }

func (b *Bus) deliverOn(node string, h ports.CommitHandler) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.delivery = append(b.delivery, nodeHandler{node: node, handler: h})
}

// OnNode is the bus as another node's subscriber sees it: its Deliver
// handlers get what is routed to node (not empty), and its cluster groups
// are the bus's. Several nodes in one process (tests) share one bus this way.
func (b *Bus) OnNode(node string) ports.Subscriber { return nodeView{bus: b, node: node} }

type nodeView struct {
	bus  *Bus
	node string
}

func (v nodeView) Deliver(_ string, h ports.CommitHandler)     { v.bus.deliverOn(v.node, h) }
func (v nodeView) Cluster(group string, h ports.CommitHandler) { v.bus.Cluster(group, h) }
func (v nodeView) Routed() bool                                { return true }

// Cluster implements ports.Subscriber. A group handles each commit once, so
// a second handler registered for a group already here is not called: with
// one process, the first member of the group does all of its work.
func (b *Bus) Cluster(group string, h ports.CommitHandler) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.cluster[group]; !ok {
		b.cluster[group] = h
	}
}

// Start runs the dispatcher and the checkback loop.
func (b *Bus) Start(context.Context) error {
	b.stop = make(chan struct{})
	b.done.Add(2)
	go b.dispatch()
	go b.checkback()
	return nil
}

// Stop ends both loops after the dispatcher has drained the queue.
func (b *Bus) Stop(ctx context.Context) error {
	close(b.stop)
	finished := make(chan struct{})
	go func() { b.done.Wait(); close(finished) }()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Ping implements ports.TransactionalPublisher; the bus is always there.
func (b *Bus) Ping(context.Context) error { return nil }

// Publish implements ports.TransactionalPublisher. Concurrent calls do
// not share a half message here: in the process a half message costs a
// map entry, not a round trip to a broker, and a store that groups
// appends (MongoDB's) groups concurrent calls' appends all the same.
func (b *Bus) Publish(ctx context.Context, c ports.Commit) (ports.TxState, error) {
	out := b.PublishBatch(ctx, []ports.Commit{c})[0]
	return out.State, out.Err
}

// PublishBatch implements ports.TransactionalPublisher: one half message
// for commits, then one for its survivors, until none is left.
func (b *Bus) PublishBatch(ctx context.Context, commits []ports.Commit) []ports.TxOutcome {
	members := make([]*txbatch.Member, len(commits))
	for i, c := range commits {
		members[i] = &txbatch.Member{Ctx: ctx, Commit: c}
	}
	for pending := members; len(pending) > 0; {
		key := strconv.FormatUint(b.next.Add(1), 36)
		batch := make([]ports.Commit, len(pending))
		for i, m := range pending {
			batch[i] = m.Commit
		}
		b.mu.Lock()
		b.half[key] = batch
		b.mu.Unlock()
		end := txbatch.RunLocal(b.handler, pending)
		if end == ports.TxCommit {
			end = b.end(ctx, key, end, batch)
		} else {
			end = b.end(ctx, key, end, nil)
		}
		pending = txbatch.Settle(pending, end)
	}
	return txbatch.Outcomes(members)
}

// Republish implements ports.TransactionalPublisher: c goes to the
// subscribers as a committed commit does. A full queue makes it wait, as it
// makes Publish wait, but only until ctx ends: a republish is a repair that
// may be tried again, not a commit the subscribers would otherwise miss.
func (b *Bus) Republish(ctx context.Context, c ports.Commit) error {
	select {
	case b.queue <- c:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: memory bus queue full: %v", ports.ErrUnavailable, ctx.Err())
	}
}

// end settles the half message key as state says, and hands deliver to
// the subscribers; an unknown one stays for checkback.
func (b *Bus) end(ctx context.Context, key string, state ports.TxState, deliver []ports.Commit) ports.TxState {
	if state == ports.TxUnknown {
		return state
	}
	b.mu.Lock()
	_, pending := b.half[key]
	delete(b.half, key)
	b.mu.Unlock()
	// A half message no longer pending was settled by checkback while the
	// local transaction ran: committed, and queued then, never rolled back
	// while the local transaction committed, because an append ends before
	// checkback may roll it back (see application.Transactions.Check).
	if !pending {
		return state
	}
	for _, c := range deliver {
		select {
		case b.queue <- c:
		case <-ctx.Done():
			// The commit is stored: hand it over without the caller's
			// deadline, or subscribers would miss a message the store has.
			b.queue <- c
		}
	}
	return state
}

// checkback settles the half messages of unknown outcome. A batch rolled
// back while some of its commits are stored delivers those: no other half
// message carries them.
func (b *Bus) checkback() {
	defer b.done.Done()
	ticker := time.NewTicker(b.cfg.CheckInterval)
	defer ticker.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-ticker.C:
		}
		b.mu.Lock()
		pending := make(map[string][]ports.Commit, len(b.half))
		maps.Copy(pending, b.half)
		b.mu.Unlock()
		for key, batch := range pending {
			ctx, cancel := context.WithTimeout(context.Background(), b.cfg.CheckInterval)
			state, stored := txbatch.Check(ctx, b.handler, batch)
			if state == ports.TxCommit {
				stored = batch
			}
			b.end(ctx, key, state, stored)
			cancel()
		}
	}
}

func (b *Bus) dispatch() {
	defer b.done.Done()
	batch := make([]ports.Commit, 0, b.cfg.BatchSize)
	for {
		select {
		case c := <-b.queue:
			batch = append(batch[:0], c)
		case <-b.stop:
			if len(b.queue) == 0 {
				return
			}
			continue
		}
		for len(batch) < b.cfg.BatchSize && len(b.queue) > 0 {
			batch = append(batch, <-b.queue)
		}
		b.deliver(batch)
	}
}

func (b *Bus) deliver(batch []ports.Commit) {
	b.mu.Lock()
	cluster, delivery := b.cluster, b.delivery
	b.mu.Unlock()
	ctx := context.Background()
	for _, h := range cluster {
		var err error
		for attempt := 0; attempt <= b.cfg.MaxReconsume; attempt++ {
			if err = h(ctx, batch); err == nil {
				break
			}
		}
		if err != nil {
			b.cfg.Log.Error("cluster handler gave up on a batch", "commits", len(batch), "first", batch[0].ID, "err", err)
		}
	}
	for _, d := range delivery {
		routed := routedTo(d.node, batch)
		if len(routed) == 0 {
			continue
		}
		if err := d.handler(ctx, routed); err != nil {
			b.cfg.Log.Warn("delivery handler failed", "commits", len(routed), "err", err)
		}
	}
}

// routedTo keeps the commits of batch whose route reaches node; every one
// for the bus's own node, unnamed.
func routedTo(node string, batch []ports.Commit) []ports.Commit {
	if node == "" {
		return batch
	}
	routed := make([]ports.Commit, 0, len(batch))
	for _, c := range batch {
		if c.Route.Reaches(node) {
			routed = append(routed, c)
		}
	}
	return routed
}
