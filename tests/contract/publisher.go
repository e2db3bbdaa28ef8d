package contract

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/evchat/chatd/ports"

	"github.com/evchat/chatd/tests/eventually"
)

// TxBus is one transactional bus under test: a publisher and several nodes
// that subscribe as separate chatd nodes would.
type TxBus struct {
	Publisher ports.BatchPublisher
	Nodes     []ports.Subscriber
	// NodeIDs are the Nodes' ids, which routes name; the publisher's is
	// none of them.
	NodeIDs []string
	// Start starts the publisher and the nodes, after the case subscribed.
	Start func(t *testing.T)
}

// TxBusFeatures says what a bus can be asked to do and how long it takes.
type TxBusFeatures struct {
	// Settle bounds how long delivery and checkback may take on this bus.
	Settle time.Duration
	// Quiet is how long a case waits to be sure something is not delivered.
	Quiet time.Duration
	// Routes says that Deliver gives a node only what is routed to it;
	// without it (broadcast mode) every node gets every commit.
	Routes bool
	// CrashProducer, when set, publishes commits as one batch from a
	// producer in another process and kills that process with SIGKILL right
	// after the local transaction (afterLocalCommit) or right before it, so
	// no end of transaction is sent. The in-process bus dies with its
	// producer and has no such case.
	CrashProducer func(t *testing.T, commits []ports.Commit, afterLocalCommit bool)
}

// TxBusFactory builds a bus whose producer runs handler, with the given
// number of subscribing nodes.
type TxBusFactory func(t *testing.T, handler ports.TransactionHandler, nodes int) TxBus

// TestTransactionalPublisher runs the transactional publisher contract.
func TestTransactionalPublisher(t *testing.T, features TxBusFeatures, newBus TxBusFactory) {
	t.Run("a committed event reaches every broadcast node once", func(t *testing.T) {
		t.Parallel()
		handler := newScriptedHandler(ports.TxCommit, ports.TxCommit)
		bus := newBus(t, handler, 2)
		inboxes := subscribeDelivery(bus)
		bus.Start(t)
		c := sampleCommit(uniqueName(t, "s"), 1)
		state, err := bus.Publisher.Publish(context.Background(), c)
		if state != ports.TxCommit || err != nil {
			t.Fatalf("publish: %v, %v", state, err)
		}
		for i, in := range inboxes {
			eventually.Within(t, features.Settle, fmt.Sprintf("node %d to receive the commit", i), func() bool { return in.count(c.ID) >= 1 })
		}
		time.Sleep(features.Quiet)
		for i, in := range inboxes {
			if n := in.count(c.ID); n != 1 {
				t.Errorf("node %d received the commit %d times, want once", i, n)
			}
			assertCommits(t, []ports.Commit{in.get(c.ID)}, []ports.Commit{c})
		}
	})

	t.Run("a rolled-back event is never delivered", func(t *testing.T) {
		t.Parallel()
		handler := newScriptedHandler(ports.TxRollback, ports.TxRollback)
		bus := newBus(t, handler, 1)
		inboxes := subscribeDelivery(bus)
		bus.Start(t)
		c := sampleCommit(uniqueName(t, "s"), 1)
		handler.localErr = ports.ErrVersionConflict
		state, err := bus.Publisher.Publish(context.Background(), c)
		if state != ports.TxRollback || !errors.Is(err, ports.ErrVersionConflict) {
			t.Fatalf("publish: %v, %v; want rollback with the local error", state, err)
		}
		time.Sleep(features.Quiet)
		if n := inboxes[0].count(c.ID); n != 0 {
			t.Fatalf("rolled-back commit delivered %d times", n)
		}
	})

	t.Run("an unknown outcome is settled by checkback", func(t *testing.T) {
		t.Parallel()
		handler := newScriptedHandler(ports.TxUnknown, ports.TxCommit)
		bus := newBus(t, handler, 1)
		inboxes := subscribeDelivery(bus)
		bus.Start(t)
		c := sampleCommit(uniqueName(t, "s"), 1)
		state, err := bus.Publisher.Publish(context.Background(), c)
		if state != ports.TxUnknown {
			t.Fatalf("publish: %v, %v; want unknown", state, err)
		}
		eventually.Within(t, features.Settle, "checkback to commit and deliver", func() bool { return inboxes[0].count(c.ID) == 1 })
		checked := handler.checkedCommit(c.ID)
		assertCommits(t, []ports.Commit{checked}, []ports.Commit{c})
	})

	t.Run("an unknown outcome checked back as rollback is never delivered", func(t *testing.T) {
		t.Parallel()
		handler := newScriptedHandler(ports.TxUnknown, ports.TxRollback)
		bus := newBus(t, handler, 1)
		inboxes := subscribeDelivery(bus)
		bus.Start(t)
		c := sampleCommit(uniqueName(t, "s"), 1)
		if state, _ := bus.Publisher.Publish(context.Background(), c); state != ports.TxUnknown {
			t.Fatalf("publish: %v, want unknown", state)
		}
		eventually.Within(t, features.Settle, "checkback", func() bool { return handler.checks(c.ID) > 0 })
		time.Sleep(features.Quiet)
		if n := inboxes[0].count(c.ID); n != 0 {
			t.Fatalf("commit checked back as rollback delivered %d times", n)
		}
	})

	t.Run("a cluster group handles each commit on one node, retrying failures", func(t *testing.T) {
		t.Parallel()
		handler := newScriptedHandler(ports.TxCommit, ports.TxCommit)
		bus := newBus(t, handler, 2)
		group := uniqueName(t, "group")
		seen := newInbox()
		var failOnce sync.Once
		for _, node := range bus.Nodes {
			node.Cluster(group, func(_ context.Context, commits []ports.Commit) error {
				failed := false
				failOnce.Do(func() { failed = true })
				if failed {
					return errors.New("first attempt fails on purpose")
				}
				seen.add(commits)
				return nil
			})
		}
		bus.Start(t)
		stream := uniqueName(t, "s")
		var ids []string
		for v := uint64(1); v <= 3; v++ {
			c := sampleCommit(stream, v)
			ids = append(ids, c.ID)
			if state, err := bus.Publisher.Publish(context.Background(), c); state != ports.TxCommit {
				t.Fatalf("publish v%d: %v, %v", v, state, err)
			}
		}
		for _, id := range ids {
			eventually.Within(t, features.Settle, "the cluster group to handle "+id, func() bool { return seen.count(id) >= 1 })
		}
		time.Sleep(features.Quiet)
		for _, id := range ids {
			if n := seen.count(id); n > 2 {
				t.Errorf("commit %s handled %d times in the group; once, or twice for the failed batch", id, n)
			}
		}
	})

	t.Run("a republished commit reaches every broadcast node and a cluster group, ending no transaction", func(t *testing.T) {
		t.Parallel()
		// Any transaction of this bus would roll back: only the republish
		// can deliver.
		handler := newScriptedHandler(ports.TxRollback, ports.TxRollback)
		bus := newBus(t, handler, 2)
		inboxes := subscribeDelivery(bus)
		grouped := subscribeGroup(t, bus)
		bus.Start(t)
		c := sampleCommit(uniqueName(t, "s"), 1)
		if err := bus.Publisher.Republish(context.Background(), c); err != nil {
			t.Fatalf("republish: %v", err)
		}
		for i, in := range inboxes {
			eventually.Within(t, features.Settle, fmt.Sprintf("node %d to receive the republished commit", i), func() bool { return in.count(c.ID) >= 1 })
		}
		eventually.Within(t, features.Settle, "the cluster group to receive the republished commit", func() bool { return grouped.count(c.ID) >= 1 })
		time.Sleep(features.Quiet)
		for i, in := range inboxes {
			if n := in.count(c.ID); n != 1 {
				t.Errorf("node %d received the republished commit %d times, want once", i, n)
			}
			assertCommits(t, []ports.Commit{in.get(c.ID)}, []ports.Commit{c})
		}
		if n := handler.checks(c.ID); n != 0 {
			t.Errorf("a republish was checked back %d times; it ends no transaction", n)
		}
	})

	t.Run("a commit whose end of transaction was lost is delivered by its republish", func(t *testing.T) {
		t.Parallel()
		// The end never comes and checkback never settles it, as when the
		// broker that holds the half message is gone.
		handler := newScriptedHandler(ports.TxUnknown, ports.TxUnknown)
		bus := newBus(t, handler, 2)
		inboxes := subscribeDelivery(bus)
		bus.Start(t)
		c := sampleCommit(uniqueName(t, "s"), 1)
		if state, err := bus.Publisher.Publish(context.Background(), c); state != ports.TxUnknown {
			t.Fatalf("publish: %v, %v; want unknown", state, err)
		}
		time.Sleep(features.Quiet)
		if n := inboxes[0].count(c.ID); n != 0 {
			t.Fatalf("a transaction never settled was delivered %d times", n)
		}
		if err := bus.Publisher.Republish(context.Background(), c); err != nil {
			t.Fatalf("republish: %v", err)
		}
		for i, in := range inboxes {
			eventually.Within(t, features.Settle, fmt.Sprintf("node %d to receive the republished commit", i), func() bool { return in.count(c.ID) == 1 })
		}
	})

	testDeliveryRoutes(t, features, newBus)
	testBatches(t, features, newBus)

	if features.CrashProducer == nil {
		return
	}

	t.Run("a producer killed after its local commit still delivers by checkback", func(t *testing.T) {
		t.Parallel()
		c := sampleCommit(uniqueName(t, "s"), 1)
		handler := newScriptedHandler(ports.TxUnknown, ports.TxCommit)
		bus := newBus(t, handler, 1)
		inboxes := subscribeDelivery(bus)
		bus.Start(t)
		features.CrashProducer(t, []ports.Commit{c}, true)
		eventually.Within(t, features.Settle, "checkback to deliver the crashed producer's commit", func() bool { return inboxes[0].count(c.ID) == 1 })
	})

	t.Run("a producer killed before its local commit never delivers", func(t *testing.T) {
		t.Parallel()
		c := sampleCommit(uniqueName(t, "s"), 1)
		handler := newScriptedHandler(ports.TxUnknown, ports.TxRollback)
		bus := newBus(t, handler, 1)
		inboxes := subscribeDelivery(bus)
		bus.Start(t)
		features.CrashProducer(t, []ports.Commit{c}, false)
		eventually.Within(t, features.Settle, "checkback of the crashed producer's half message", func() bool { return handler.checks(c.ID) > 0 })
		time.Sleep(features.Quiet)
		if n := inboxes[0].count(c.ID); n != 0 {
			t.Fatalf("half message of a producer killed before its local commit delivered %d times", n)
		}
	})
}

// scriptedHandler answers the local transaction and checkback as a case
// scripts, and records what it was asked.
type scriptedHandler struct {
	local, check ports.TxState
	localErr     error
	// losers lost their version race: never stored, whatever is scripted.
	losers map[string]bool

	mu      sync.Mutex
	checked map[string][]ports.Commit
}

func newScriptedHandler(local, check ports.TxState) *scriptedHandler {
	return &scriptedHandler{local: local, check: check, checked: map[string][]ports.Commit{}, losers: map[string]bool{}}
}

// lose makes the commits of ids lose their version race; call it before
// the bus starts.
func (h *scriptedHandler) lose(ids ...string) {
	for _, id := range ids {
		h.losers[id] = true
	}
}

func (h *scriptedHandler) ExecuteLocal(_ context.Context, c ports.Commit) (ports.TxState, error) {
	if h.losers[c.ID] {
		return ports.TxRollback, ports.ErrVersionConflict
	}
	return h.local, h.localErr
}

func (h *scriptedHandler) Check(_ context.Context, c ports.Commit) ports.TxState {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checked[c.ID] = append(h.checked[c.ID], c)
	if h.losers[c.ID] {
		return ports.TxRollback
	}
	return h.check
}

func (h *scriptedHandler) checks(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.checked[id])
}

func (h *scriptedHandler) checkedCommit(id string) ports.Commit {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.checked[id][0]
}

// inbox records the commits a subscriber received, by id.
type inbox struct {
	mu      sync.Mutex
	commits map[string][]ports.Commit
}

func newInbox() *inbox { return &inbox{commits: map[string][]ports.Commit{}} }

func (in *inbox) add(commits []ports.Commit) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, c := range commits {
		in.commits[c.ID] = append(in.commits[c.ID], c)
	}
}

func (in *inbox) count(id string) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.commits[id])
}

func (in *inbox) get(id string) ports.Commit {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.commits[id][0]
}

// subscribeGroup subscribes every node to one cluster group of the case.
func subscribeGroup(t *testing.T, bus TxBus) *inbox {
	group, grouped := uniqueName(t, "group"), newInbox()
	for _, node := range bus.Nodes {
		node.Cluster(group, func(_ context.Context, commits []ports.Commit) error {
			grouped.add(commits)
			return nil
		})
	}
	return grouped
}

func subscribeDelivery(bus TxBus) []*inbox {
	inboxes := make([]*inbox, len(bus.Nodes))
	for i, node := range bus.Nodes {
		in := newInbox()
		inboxes[i] = in
		node.Deliver("contract", func(_ context.Context, commits []ports.Commit) error {
			in.add(commits)
			return nil
		})
	}
	return inboxes
}
