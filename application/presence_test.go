package application_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain"
	"github.com/evchat/chatd/domain/presence"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// pushes records the presence and typing frames of fake sessions, beside
// the session type the message tests share.
var pushes struct {
	mu       sync.Mutex
	presence map[*fakeSession][]ports.PresenceView
	typing   map[*fakeSession][]ports.TypingView
}

func (s *fakeSession) PushPresence(p ports.PresenceView) bool {
	pushes.mu.Lock()
	defer pushes.mu.Unlock()
	if pushes.presence == nil {
		pushes.presence = map[*fakeSession][]ports.PresenceView{}
	}
	pushes.presence[s] = append(pushes.presence[s], p)
	return true
}

func (s *fakeSession) PushTyping(t ports.TypingView) bool {
	pushes.mu.Lock()
	defer pushes.mu.Unlock()
	if pushes.typing == nil {
		pushes.typing = map[*fakeSession][]ports.TypingView{}
	}
	pushes.typing[s] = append(pushes.typing[s], t)
	return true
}

func (s *fakeSession) presenceSeen() []ports.PresenceView {
	pushes.mu.Lock()
	defer pushes.mu.Unlock()
	return append([]ports.PresenceView(nil), pushes.presence[s]...)
}

func (s *fakeSession) typingSeen() []ports.TypingView {
	pushes.mu.Lock()
	defer pushes.mu.Unlock()
	return append([]ports.TypingView(nil), pushes.typing[s]...)
}

const (
	testHeartbeat = 250 * time.Millisecond
	testGrace     = 500 * time.Millisecond
)

// presenceCluster is two nodes on one store, bus and signal bus, each with
// sessions and presence of its own, as two processes would have.
type presenceCluster struct {
	n1, n2   *node
	app2     *application.Application
	p1, p2   *application.Presence
	lastSeen *memory.LastSeen
}

func newPresenceCluster(t *testing.T) *presenceCluster {
	t.Helper()
	n1 := newNode(t, testConfig(), memory.NewEventStore())
	app2, err := application.New(testConfig(), n1.store, n1.bus, n1.rm, memory.Clock{}, memory.IDs{})
	if err != nil {
		t.Fatal(err)
	}
	n1.bus.Broadcast("delivery", app2.Delivery.Handle)
	signals := memory.NewSignals()
	lastSeen := memory.NewLastSeen()
	c := &presenceCluster{n1: n1, n2: &node{app: app2, store: n1.store, rm: n1.rm, bus: n1.bus}, app2: app2, lastSeen: lastSeen}
	cfg := application.PresenceConfig{Heartbeat: testHeartbeat, Grace: testGrace}
	for i, app := range []*application.Application{n1.app, app2} {
		cfg.Node = []string{"node1", "node2"}[i]
		p, err := application.NewPresence(app, cfg, signals, lastSeen, nil)
		if err != nil {
			t.Fatal(err)
		}
		n1.bus.Broadcast("presence-peers", p.ObserveCommits)
		p.Start()
		t.Cleanup(func() { _ = p.Stop(context.Background()) })
		if i == 0 {
			c.p1 = p
		} else {
			c.p2 = p
		}
	}
	signals.Start()
	t.Cleanup(func() { _ = signals.Stop(context.Background()) })
	return c
}

// sendProjected sends a message and waits until the read model lists the
// conversation, where presence finds a user's peers.
func sendProjected(t *testing.T, n *node, from user.ID, key, to string) application.Ack {
	t.Helper()
	ack := send(t, n, from, key, to, "hi")
	eventually(t, "the conversation to be projected", func() bool {
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
	c := newPresenceCluster(t)
	alice := connect(t, c.n1, "a1", "alice")
	sendProjected(t, c.n1, "alice", "k1", "bob")

	bob, closeBob := register(c.n2, "b1", "bob")
	eventually(t, "alice to see bob online", func() bool {
		p, ok := lastPresence(alice, "bob")
		return ok && p.Online
	})
	closeBob()
	closed := time.Now()
	eventually(t, "alice to see bob offline", func() bool {
		p, ok := lastPresence(alice, "bob")
		return ok && !p.Online
	})
	if waited := time.Since(closed); waited < testGrace-20*time.Millisecond {
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
	eventually(t, "bob's last-seen time to be stored", func() bool {
		stored, _ := c.lastSeen.Get(context.Background(), []user.ID{"bob"})
		_, ok := stored["bob"]
		return ok
	})
	if _, ok := lastPresence(bob, "bob"); ok {
		t.Errorf("bob's own session got presence frames of himself: %+v", bob.presenceSeen())
	}
}

func TestPresenceReconnectWithinTheGraceDoesNotFlap(t *testing.T) {
	c := newPresenceCluster(t)
	alice := connect(t, c.n1, "a1", "alice")
	sendProjected(t, c.n1, "alice", "k1", "bob")
	_, closeBob := register(c.n2, "b1", "bob")
	eventually(t, "alice to see bob online", func() bool { _, ok := lastPresence(alice, "bob"); return ok })
	closeBob()
	time.Sleep(testGrace / 3)
	// Back on the other node this time.
	_, closeAgain := register(c.n1, "b2", "bob")
	defer closeAgain()
	time.Sleep(2 * testGrace)
	if seen := alice.presenceSeen(); len(seen) != 1 {
		t.Errorf("alice saw %+v, want bob online once and nothing more", seen)
	}
}

func TestPresenceForgetsASilentNode(t *testing.T) {
	c := newPresenceCluster(t)
	alice := connect(t, c.n1, "a1", "alice")
	sendProjected(t, c.n1, "alice", "k1", "bob")
	_, _ = register(c.n2, "b1", "bob") // never closed: node 2 dies with it
	eventually(t, "alice to see bob online", func() bool { _, ok := lastPresence(alice, "bob"); return ok })
	if err := c.p2.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	died := time.Now()
	eventually(t, "alice to see bob offline", func() bool {
		p, _ := lastPresence(alice, "bob")
		return !p.Online
	})
	if took := time.Since(died); took > 5*testHeartbeat {
		t.Errorf("bob went offline %v after his node died, want within about three heartbeats (%v)", took, 3*testHeartbeat)
	}
}

func TestTyping(t *testing.T) {
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
	eventually(t, "bob to see alice typing", func() bool { return len(bob.typingSeen()) > 0 })
	time.Sleep(100 * time.Millisecond)
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
