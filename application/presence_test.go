package application_test

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain"
	"github.com/evchat/chatd/domain/presence"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
	"github.com/evchat/chatd/tests/eventually"
)

func (s *fakeSession) PushPresence(p ports.PresenceView) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.presence = append(s.presence, p)
	return true
}

func (s *fakeSession) PushTyping(t ports.TypingView) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.typing = append(s.typing, t)
	return true
}

func (s *fakeSession) presenceSeen() []ports.PresenceView {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ports.PresenceView(nil), s.presence...)
}

func (s *fakeSession) typingSeen() []ports.TypingView {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ports.TypingView(nil), s.typing...)
}

const (
	testHeartbeat = 250 * time.Millisecond
	testGrace     = 500 * time.Millisecond
)

// presenceCluster is two nodes on one store, bus and signal bus, each with
// sessions and presence of its own, as two processes would have. The tests
// of grace and heartbeats build it inside a synctest bubble, where these
// pass on the bubble's clock, at once and to the nanosecond.
type presenceCluster struct {
	n1, n2   *node
	p1, p2   *application.Presence
	lastSeen *memory.LastSeen
}

func newPresenceCluster(t *testing.T) *presenceCluster {
	t.Helper()
	store, rm := memory.NewEventStore(), memory.NewReadModel()
	bus := newBus(t, store, testConfig().TxTimeout)
	signals, lastSeen := memory.NewSignals(), memory.NewLastSeen()
	c := &presenceCluster{lastSeen: lastSeen}
	for i, name := range []string{"node1", "node2"} {
		cfg := testConfig()
		cfg.Presence = application.PresenceConfig{Node: name, Heartbeat: testHeartbeat, Grace: testGrace}
		app, err := application.New(cfg, store, bus, rm, memory.Clock{}, memory.IDs{},
			application.PresencePorts{Signals: signals, LastSeen: lastSeen})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			bus.Cluster("projector", app.Projector.Handle)
		}
		// As bootstrap chains them on one delivery consumer.
		bus.Deliver("delivery-"+name, func(ctx context.Context, commits []ports.Commit) error {
			_ = app.Presence.ObserveCommits(ctx, commits)
			return app.Delivery.Handle(ctx, commits)
		})
		n := &node{app: app, store: store, rm: rm, bus: bus}
		if i == 0 {
			c.n1, c.p1 = n, app.Presence
		} else {
			c.n2, c.p2 = n, app.Presence
		}
	}
	_ = bus.Start(context.Background())
	_ = signals.Start(context.Background())
	for _, n := range []*node{c.n1, c.n2} {
		_ = n.app.Presence.Start(context.Background())
	}
	t.Cleanup(func() {
		ctx := context.Background()
		for _, n := range []*node{c.n1, c.n2} {
			_ = n.app.Presence.Stop(ctx)
			n.app.Delivery.Wait(ctx)
		}
		_ = signals.Stop(ctx)
		_ = bus.Stop(ctx)
	})
	return c
}

// settle lets d pass on the bubble's clock, then waits until every
// goroutine of the bubble is idle, so that what d made due has happened.
func settle(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// sendProjected sends a message and waits until the read model lists the
// conversation, where presence finds a user's peers.
func sendProjected(t *testing.T, n *node, from user.ID, key, to string) application.Ack {
	t.Helper()
	ack := send(t, n, from, key, to, "hi")
	eventually.True(t, "the conversation to be projected", func() bool {
		views, err := n.rm.ListFor(context.Background(), from, 10)
		return err == nil && len(views) > 0
	})
	return ack
}

// register opens a session that the test closes itself.
func register(n *node, id string, u user.ID) (*fakeSession, func()) {
	s := &fakeSession{id: id, user: u}
	return s, n.app.Sessions.Register(s)
}

func lastPresence(s *fakeSession, u user.ID) (ports.PresenceView, bool) {
	seen := s.presenceSeen()
	for i := len(seen) - 1; i >= 0; i-- {
		if seen[i].User == u {
			return seen[i], true
		}
	}
	return ports.PresenceView{}, false
}

func TestPresenceAcrossNodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newPresenceCluster(t)
		alice := connect(t, c.n1, "a1", "alice")
		sendProjected(t, c.n1, "alice", "k1", "bob")

		bob, closeBob := register(c.n2, "b1", "bob")
		eventually.True(t, "alice to see bob online", func() bool {
			p, ok := lastPresence(alice, "bob")
			return ok && p.Online
		})
		closeBob()
		closed := time.Now()
		eventually.True(t, "alice to see bob offline", func() bool {
			p, ok := lastPresence(alice, "bob")
			return ok && !p.Online
		})
		if waited := time.Since(closed); waited < testGrace {
			t.Errorf("bob went offline %v after closing, before the grace of %v", waited, testGrace)
		}
		p, _ := lastPresence(alice, "bob")
		if p.LastSeen.IsZero() {
			t.Error("the offline push has no last-seen time")
		}
		answer, err := c.p1.Query(context.Background(), "alice", presence.Users{"bob", "alice"})
		if err != nil {
			t.Fatal(err)
		}
		if answer[0].Online || answer[0].LastSeen.IsZero() || !answer[1].Online {
			t.Errorf("query: %+v, want bob offline with a last-seen time and alice online", answer)
		}
		// Written by bob's node, which notices the end of the grace itself.
		eventually.True(t, "bob's last-seen time to be stored", func() bool {
			stored, _ := c.lastSeen.Get(context.Background(), []user.ID{"bob"})
			_, ok := stored["bob"]
			return ok
		})
		if _, ok := lastPresence(bob, "bob"); ok {
			t.Errorf("bob's own session got presence frames of himself: %+v", bob.presenceSeen())
		}
	})
}

func TestPresenceReconnectWithinTheGraceDoesNotFlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newPresenceCluster(t)
		alice := connect(t, c.n1, "a1", "alice")
		sendProjected(t, c.n1, "alice", "k1", "bob")
		_, closeBob := register(c.n2, "b1", "bob")
		eventually.True(t, "alice to see bob online", func() bool { _, ok := lastPresence(alice, "bob"); return ok })
		closeBob()
		settle(testGrace / 3)
		// Back on the other node this time.
		_, closeAgain := register(c.n1, "b2", "bob")
		defer closeAgain()
		settle(2 * testGrace)
		if seen := alice.presenceSeen(); len(seen) != 1 {
			t.Errorf("alice saw %+v, want bob online once and nothing more", seen)
		}
	})
}

func TestPresenceForgetsASilentNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newPresenceCluster(t)
		alice := connect(t, c.n1, "a1", "alice")
		sendProjected(t, c.n1, "alice", "k1", "bob")
		_, _ = register(c.n2, "b1", "bob") // never closed: node 2 dies with it
		eventually.True(t, "alice to see bob online", func() bool { _, ok := lastPresence(alice, "bob"); return ok })
		if err := c.p2.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		died := time.Now()
		eventually.True(t, "alice to see bob offline", func() bool {
			p, _ := lastPresence(alice, "bob")
			return !p.Online
		})
		if took := time.Since(died); took > 5*testHeartbeat {
			t.Errorf("bob went offline %v after his node died, want within about three heartbeats (%v)", took, 3*testHeartbeat)
		}
	})
}

func TestTyping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newPresenceCluster(t)
		alice := connect(t, c.n1, "a1", "alice")
		bob := connect(t, c.n2, "b1", "bob")
		ack := sendProjected(t, c.n1, "alice", "k1", "bob")
		ctx := context.Background()

		for range 10 {
			if err := c.n1.app.Typing.Handle(ctx, application.TypingCommand{User: "alice", Conversation: ack.Conversation}); err != nil {
				t.Fatal(err)
			}
		}
		eventually.True(t, "bob to see alice typing", func() bool { return len(bob.typingSeen()) > 0 })
		synctest.Wait()
		if got := bob.typingSeen(); len(got) != 1 || got[0] != (ports.TypingView{Conversation: string(ack.Conversation), User: "alice"}) {
			t.Errorf("bob got %+v, want one typing frame of alice", got)
		}
		if got := alice.typingSeen(); len(got) != 0 {
			t.Errorf("the typist's own session got %+v", got)
		}

		err := c.n1.app.Typing.Handle(ctx, application.TypingCommand{User: "mallory", Conversation: ack.Conversation})
		if domain.KindOf(err) != domain.NotFound {
			t.Errorf("a non-participant typing: %v, want not found", err)
		}
	})
}

func TestPresenceQueryRules(t *testing.T) {
	c := newPresenceCluster(t)
	got, err := c.p1.Query(context.Background(), "alice", presence.Users{"nobody"})
	if err != nil || len(got) != 1 || got[0].Online || !got[0].LastSeen.IsZero() {
		t.Errorf("an unknown user: %+v, %v; want offline without a last-seen time", got, err)
	}
}

// TestPresenceQueryIsForPeersOnly: a user sees the presence of themself and
// of the users they share a conversation with; anyone else is offline and
// never seen, exactly as a user who does not exist (v1.2).
func TestPresenceQueryIsForPeersOnly(t *testing.T) {
	c := newPresenceCluster(t)
	ctx := context.Background()
	seen := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := c.lastSeen.Touch(ctx, []ports.LastSeen{{User: "carol", At: seen}, {User: "erin", At: seen}}); err != nil {
		t.Fatal(err)
	}
	sendProjected(t, c.n1, "alice", "k1", "bob")
	sendProjected(t, c.n1, "carol", "k2", "alice")
	for _, u := range []user.ID{"alice", "bob", "dave"} {
		connect(t, c.n1, "s-"+string(u), u)
	}
	tests := []struct {
		name  string
		asker user.ID
		users presence.Users
		want  []ports.PresenceView
	}{
		{"peers and strangers", "alice", presence.Users{"bob", "carol", "dave", "erin", "nobody"}, []ports.PresenceView{
			{User: "bob", Online: true}, {User: "carol", LastSeen: seen},
			{User: "dave"}, {User: "erin"}, {User: "nobody"},
		}},
		{"oneself among strangers", "dave", presence.Users{"dave", "alice", "carol"}, []ports.PresenceView{
			{User: "dave", Online: true}, {User: "alice"}, {User: "carol"},
		}},
		{"oneself offline", "erin", presence.Users{"erin"}, []ports.PresenceView{{User: "erin", LastSeen: seen}}},
		{"a peer's peer is a stranger", "bob", presence.Users{"carol", "alice"}, []ports.PresenceView{
			{User: "carol"}, {User: "alice", Online: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.p1.Query(ctx, tt.asker, tt.users)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got, tt.want, func(a, b ports.PresenceView) bool {
				return a.User == b.User && a.Online == b.Online && a.LastSeen.Equal(b.LastSeen)
			}) {
				t.Fatalf("%s asked %v: %+v, want %+v", tt.asker, tt.users, got, tt.want)
			}
		})
	}
}

// Presence is in every application, started or not: one never started
// (a test node, say) still stops cleanly, as its owner may stop it anyway.
func TestPresenceThatNeverStartedStops(t *testing.T) {
	n := newNode(t, testConfig(), memory.NewEventStore())
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := n.app.Presence.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
}
