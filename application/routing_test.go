package application_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// testWindow is the propagation window of the routed clusters' nodes.
const testWindow = 400 * time.Millisecond

// routedCluster is nodes on one store and bus, each of whose delivery gets
// only the commits whose route reaches it, as a routed broker hands them.
type routedCluster struct {
	nodes map[string]*node
	// signals are each node's signal bus.
	signals map[string]*memory.Signals

	// counted is what each node's delivery told its observer it received.
	counted map[string]*receivedCounter
	// store is the nodes' shared store, which counts their reads.
	store *countingStore

	mu       sync.Mutex
	received map[string][]ports.Commit
}

// receivedCounter is a DeliveryObserver that adds up.
type receivedCounter struct{ commits atomic.Int64 }

func (r *receivedCounter) CommitsReceived(commits []ports.Commit) { r.commits.Add(int64(len(commits))) }

// newRoutedCluster builds the named nodes; signalsOf gives each its signal
// bus: one shared, and the nodes know of each other; one each, and they
// never do. Call it inside a synctest bubble.
func newRoutedCluster(t *testing.T, names []string, signalsOf func(name string) *memory.Signals) *routedCluster {
	t.Helper()
	store, rm := &countingStore{EventStore: memory.NewEventStore()}, memory.NewReadModel()
	bus := newBus(t, store, testConfig().TxTimeout)
	c := &routedCluster{nodes: map[string]*node{}, signals: map[string]*memory.Signals{},
		counted: map[string]*receivedCounter{}, store: store, received: map[string][]ports.Commit{}}
	for i, name := range names {
		cfg := testConfig()
		cfg.Presence = application.PresenceConfig{Node: name, Heartbeat: testHeartbeat, Grace: testGrace, PropagationWindow: testWindow}
		c.counted[name] = &receivedCounter{}
		cfg.DeliveryObserver = c.counted[name]
		signals := signalsOf(name)
		app, err := application.New(cfg, store, bus, rm, memory.Clock{}, memory.IDs{},
			application.PresencePorts{Signals: signals, LastSeen: memory.NewLastSeen()})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			bus.Cluster("projector", app.Projector.Handle)
		}
		bus.Deliver("delivery-"+name, func(ctx context.Context, commits []ports.Commit) error {
			reaching := slices.DeleteFunc(slices.Clone(commits), func(c ports.Commit) bool { return !c.Route.Reaches(name) })
			c.mu.Lock()
			c.received[name] = append(c.received[name], reaching...)
			c.mu.Unlock()
			_ = app.Presence.ObserveCommits(ctx, reaching)
			return app.Delivery.Handle(ctx, reaching)
		})
		c.nodes[name] = &node{app: app, store: store, rm: rm, bus: bus}
		c.signals[name] = signals
	}
	_ = bus.Start(context.Background())
	for _, s := range uniqueSignals(c.signals) {
		_ = s.Start(context.Background())
	}
	for _, n := range c.nodes {
		_ = n.app.Presence.Start(context.Background())
	}
	t.Cleanup(func() {
		ctx := context.Background()
		for _, n := range c.nodes {
			_ = n.app.Presence.Stop(ctx)
			n.app.Delivery.Wait(ctx)
		}
		for _, s := range uniqueSignals(c.signals) {
			_ = s.Stop(ctx)
		}
		_ = bus.Stop(ctx)
	})
	return c
}

func uniqueSignals(byNode map[string]*memory.Signals) []*memory.Signals {
	var out []*memory.Signals
	for _, s := range byNode {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// receivedMessages is the seqs of conv's messages node's delivery received.
func (c *routedCluster) receivedMessages(node string, conv conversation.ID) []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var seqs []uint64
	for _, commit := range c.received[node] {
		for _, ev := range commit.Events {
			if p, ok := ev.(conversation.MessagePosted); ok && p.Conversation == conv {
				seqs = append(seqs, p.Seq)
			}
		}
	}
	return seqs
}

// warmedUp is past every node's warm-up: a heartbeat and the window.
const warmedUp = testHeartbeat + testWindow

func TestSendsReachOnlyTheNodesOfTheirParticipants(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := memory.NewSignals()
		c := newRoutedCluster(t, []string{"n1", "n2", "n3"}, func(string) *memory.Signals { return shared })
		n1, n2 := c.nodes["n1"], c.nodes["n2"]
		var typingRoutes []ports.Route
		var typingMu sync.Mutex
		shared.Subscribe(func(_ context.Context, s ports.Signal) {
			if s.Kind == ports.SignalTyping {
				typingMu.Lock()
				typingRoutes = append(typingRoutes, s.Route)
				typingMu.Unlock()
			}
		})
		settle(warmedUp)
		alice := connect(t, n1, "alice-1", "alice")
		bob := connect(t, n2, "bob-1", "bob")
		// Past the window, the joins are settled entries everywhere.
		settle(testWindow + testHeartbeat)

		send(t, n1, "alice", "k1", "bob", "hi bob")
		send(t, n1, "alice", "k2", "carol", "hi carol")
		settle(time.Second)

		toBob, toCarol := conversation.IDFor("alice", "bob"), conversation.IDFor("alice", "carol")
		for _, tt := range []struct {
			node string
			conv conversation.ID
			want []uint64
		}{
			{"n1", toBob, []uint64{1}}, {"n2", toBob, []uint64{1}}, {"n3", toBob, nil},
			{"n1", toCarol, []uint64{1}}, {"n2", toCarol, nil}, {"n3", toCarol, nil},
		} {
			if got := c.receivedMessages(tt.node, tt.conv); !slices.Equal(got, tt.want) {
				t.Errorf("%s received %v of %s, want %v", tt.node, got, tt.conv, tt.want)
			}
		}
		if got := bob.seqs(); !slices.Equal(got, []uint64{1}) {
			t.Errorf("bob got %v live, want [1]", got)
		}
		for name, counter := range c.counted {
			c.mu.Lock()
			received := len(c.received[name])
			c.mu.Unlock()
			if got := counter.commits.Load(); got != int64(received) {
				t.Errorf("%s's delivery counted %d commits received, want %d", name, got, received)
			}
		}
		if got := c.counted["n3"].commits.Load(); got != 0 {
			t.Errorf("n3, which holds no session, received %d commits", got)
		}
		// Bob's node marks the message delivered; the receipt is routed
		// to alice's node too.
		if !slices.ContainsFunc(alice.receiptsSeen(), func(r ports.Receipt) bool { return r.User == "bob" && r.DeliveredUpTo == 1 }) {
			t.Errorf("alice saw receipts %+v, want bob's delivered marker at 1", alice.receiptsSeen())
		}

		if err := n2.app.Typing.Handle(context.Background(), application.TypingCommand{User: "bob", Conversation: toBob}); err != nil {
			t.Fatal(err)
		}
		settle(time.Millisecond)
		typingMu.Lock()
		defer typingMu.Unlock()
		if len(typingRoutes) != 1 || !typingRoutes[0].Limited || !slices.Equal(typingRoutes[0].Nodes, []string{"n1"}) {
			t.Errorf("typing routes %+v, want one to n1 only", typingRoutes)
		}
	})
}

func TestSendsGoEverywhereWhileTheSenderCannotBeSure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := memory.NewSignals()
		c := newRoutedCluster(t, []string{"n1", "n2", "n3"}, func(string) *memory.Signals { return shared })
		n1 := c.nodes["n1"]
		conv := conversation.IDFor("alice", "bob")

		send(t, n1, "alice", "warming", "bob", "1")
		settle(warmedUp)
		connect(t, c.nodes["n2"], "bob-1", "bob")
		settle(time.Millisecond)
		send(t, n1, "alice", "moving", "bob", "2")
		settle(testWindow)
		send(t, n1, "alice", "settled", "bob", "3")
		settle(time.Second)

		if got := c.receivedMessages("n3", conv); !slices.Equal(got, []uint64{1, 2}) {
			t.Errorf("n3 received %v, want [1 2]: sent while warming up and while bob moved, not once settled", got)
		}
	})
}

// catchUpDue is when a routed cluster's node catches a session up, after
// its open: the window, then as long as a lost end of transaction may
// take to be republished (four RepublishAfter and a sweep) and a second
// for the bus; catchUpDone is a tick of the hand-over's ticker later.
var (
	catchUpDue  = testWindow + 4*testConfig().RepublishAfter + testConfig().RepublishAfter/5 + time.Second
	catchUpDone = catchUpDue + testWindow/20
)

func TestHandOverCatchesUpWhatWasRoutedElsewhere(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Apart, the nodes never learn of each other's sessions: every
		// commit alice's node sends goes to it alone, and it never forwards.
		c := newRoutedCluster(t, []string{"n1", "n2"}, func(string) *memory.Signals { return memory.NewSignals() })
		n1, n2 := c.nodes["n1"], c.nodes["n2"]
		conv := conversation.IDFor("alice", "bob")
		settle(warmedUp)
		send(t, n1, "alice", "before", "bob", "before bob connected")
		// Older than any message that may be stored after the open.
		settle(testConfig().TxTimeout)

		opened := time.Now()
		bob := connect(t, n2, "bob-1", "bob")
		gone, unregister := register(n2, "bob-2", "bob")
		send(t, n1, "alice", "k2", "bob", "2")
		send(t, n1, "alice", "k3", "bob", "3")
		settle(testWindow / 2)
		send(t, n1, "alice", "k4", "bob", "4")
		settle(testWindow/2 + time.Millisecond)
		// Past the window every node knows of bob's session and routes
		// to it: this one is not the catch-up's.
		send(t, n1, "alice", "k5", "bob", "5")
		unregister()
		settle(catchUpDue - time.Since(opened) - time.Millisecond)
		if got := bob.seqs(); len(got) != 0 {
			t.Fatalf("bob got %v before the catch-up, which leaves a lost end of transaction to the republisher", got)
		}
		settle(catchUpDone - time.Since(opened))
		if got := bob.seqs(); !slices.Equal(got, []uint64{2, 3, 4}) {
			t.Fatalf("bob got %v once caught up, want [2 3 4], each once", got)
		}
		if got := gone.seqs(); len(got) != 0 {
			t.Fatalf("a session closed before its catch-up got %v", got)
		}
		if got := c.receivedMessages("n2", conv); len(got) != 0 {
			t.Fatalf("bob's node received %v: the test routes nothing to it", got)
		}
	})
}

// TestTheHandOverReadsNothingForASessionThatHasOnlySent: a session's own
// messages reach its node and move its cursor, so its catch-up finds
// nothing past it and reads no message back.
func TestTheHandOverReadsNothingForASessionThatHasOnlySent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := memory.NewSignals()
		c := newRoutedCluster(t, []string{"n1", "n2"}, func(string) *memory.Signals { return shared })
		n1, n2 := c.nodes["n1"], c.nodes["n2"]
		settle(warmedUp)
		opened := time.Now()
		connect(t, n1, "alice-1", "alice")
		bob := connect(t, n2, "bob-1", "bob")
		for i := range 3 {
			cmd := application.SendMessageCommand{Sender: "alice", ClientID: message.ClientID(rune('a' + i)), To: "bob", Body: "x", Origin: "alice-1"}
			if _, err := n1.app.Send.Handle(context.Background(), cmd); err != nil {
				t.Fatal(err)
			}
			settle(testWindow / 4)
		}
		settle(catchUpDue - time.Since(opened) - time.Millisecond)
		before := c.store.loadsSoFar()
		settle(catchUpDone - time.Since(opened))
		if got := c.store.loadsSoFar() - before; got != 0 {
			t.Errorf("the catch-ups read the store %d times, want none", got)
		}
		if got := bob.seqs(); !slices.Equal(got, []uint64{1, 2, 3}) {
			t.Errorf("bob got %v, want [1 2 3], each once", got)
		}
	})
}

func TestTheSenderForwardsWhatItRoutedBeforeItLearntOfASession(t *testing.T) {
	for _, learnt := range []ports.SignalKind{ports.SignalJoin, ports.SignalHeartbeat} {
		t.Run(string(learnt), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// Apart, so that the test says when alice's node learns.
				c := newRoutedCluster(t, []string{"n1", "n2"}, func(string) *memory.Signals { return memory.NewSignals() })
				n1, n2 := c.nodes["n1"], c.nodes["n2"]
				settle(warmedUp)
				opened := time.Now()
				bob := connect(t, n2, "bob-1", "bob")
				send(t, n1, "alice", "k1", "bob", "1")
				send(t, n1, "alice", "k2", "bob", "2")
				settle(time.Millisecond)
				if got := bob.seqs(); len(got) != 0 {
					t.Fatalf("bob got %v before alice's node knew of his session", got)
				}

				late := ports.Signal{Kind: learnt, Node: "n2", Seq: 1, At: time.Now(), User: "bob", Users: []user.ID{"bob"}}
				if err := c.signals["n1"].Publish(context.Background(), late); err != nil {
					t.Fatal(err)
				}
				settle(time.Millisecond)
				if got := bob.seqs(); !slices.Equal(got, []uint64{1, 2}) {
					t.Fatalf("bob got %v once alice's node learnt of his session, want [1 2]", got)
				}
				send(t, n1, "alice", "k3", "bob", "3")
				settle(catchUpDone - time.Since(opened))
				if got := bob.seqs(); !slices.Equal(got, []uint64{1, 2, 3}) {
					t.Fatalf("bob got %v after the catch-up, want [1 2 3], each once", got)
				}
			})
		})
	}
}

// routingSays is a ports.Routing that says what it is told.
type routingSays bool

func (r routingSays) Routed() bool { return bool(r) }

// countingListings counts the reads of users' conversation lists.
type countingListings struct {
	ports.ReadModel
	listings atomic.Int64
}

func (c *countingListings) ListFor(ctx context.Context, u user.ID, limit int) ([]ports.ConversationView, error) {
	c.listings.Add(1)
	return c.ReadModel.ListFor(ctx, u, limit)
}

// TestANodeThatReceivesEverythingDoesNoHandOverWork: on a bus that delivers
// every commit to every node, routes would be ignored and the hand-over
// would only repeat what delivery already brought, so commits go to every
// node and an opening session costs no catch-up read.
func TestANodeThatReceivesEverythingDoesNoHandOverWork(t *testing.T) {
	for _, tc := range []struct {
		name             string
		routed           bool
		wantLimitedRoute bool
		wantCatchUpReads int64
	}{
		{name: "routed", routed: true, wantLimitedRoute: true, wantCatchUpReads: 1},
		{name: "every commit everywhere", routed: false, wantLimitedRoute: false, wantCatchUpReads: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store, rm := memory.NewEventStore(), memory.NewReadModel()
				listings := &countingListings{ReadModel: rm}
				bus := newBus(t, store, testConfig().TxTimeout)
				cfg := testConfig()
				cfg.Presence = application.PresenceConfig{Node: "n1", Heartbeat: testHeartbeat, Grace: testGrace, PropagationWindow: testWindow}
				signals := memory.NewSignals()
				app, err := application.New(cfg, store, bus, listings, memory.Clock{}, memory.IDs{},
					application.PresencePorts{Signals: signals, LastSeen: memory.NewLastSeen(), Routing: routingSays(tc.routed)})
				if err != nil {
					t.Fatal(err)
				}
				var routes []ports.Route
				var routesMu sync.Mutex
				bus.Cluster("routes", func(_ context.Context, commits []ports.Commit) error {
					routesMu.Lock()
					defer routesMu.Unlock()
					for _, c := range commits {
						routes = append(routes, c.Route)
					}
					return nil
				})
				n := startNode(t, app, store, rm, bus)
				_ = signals.Start(context.Background())
				_ = app.Presence.Start(context.Background())
				t.Cleanup(func() {
					_ = app.Presence.Stop(context.Background())
					_ = signals.Stop(context.Background())
				})
				settle(warmedUp)

				opened := time.Now()
				connect(t, n, "bob-1", "bob")
				send(t, n, "alice", "k1", "bob", "1")
				settle(catchUpDue - time.Since(opened) - time.Millisecond)
				before := listings.listings.Load()
				settle(catchUpDone - time.Since(opened))
				if got := listings.listings.Load() - before; got != tc.wantCatchUpReads {
					t.Errorf("%d catch-up reads of bob's conversations, want %d", got, tc.wantCatchUpReads)
				}
				routesMu.Lock()
				defer routesMu.Unlock()
				if len(routes) == 0 {
					t.Fatal("no commit came back on the bus")
				}
				for _, r := range routes {
					if r.Limited != tc.wantLimitedRoute {
						t.Errorf("a commit routed %+v, want limited %v", r, tc.wantLimitedRoute)
					}
				}
			})
		})
	}
}
