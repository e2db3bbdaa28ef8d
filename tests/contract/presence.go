package contract

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"

	"github.com/evchat/chatd/tests/eventually"
)

// SignalBus is one signal bus under test: nodes that each publish and
// subscribe as separate chatd nodes would.
type SignalBus struct {
	Nodes []ports.Signals
	// Start starts every node, after the case subscribed, and returns once
	// each consumes.
	Start func(t *testing.T)
}

// SignalFeatures says how long a bus may take.
type SignalFeatures struct {
	// Settle bounds how long a signal may take to arrive.
	Settle time.Duration
	// Quiet is how long a case waits to be sure nothing more arrives.
	Quiet time.Duration
}

// SignalBusFactory builds a bus of the given number of nodes.
type SignalBusFactory func(t *testing.T, nodes int) SignalBus

// TestSignals runs the signals contract.
func TestSignals(t *testing.T, features SignalFeatures, newBus SignalBusFactory) {
	t.Run("every signal reaches every node once, whole", func(t *testing.T) {
		bus := newBus(t, 2)
		inboxes := make([]*signalInbox, len(bus.Nodes))
		for i, n := range bus.Nodes {
			inboxes[i] = &signalInbox{}
			n.Subscribe(inboxes[i].handle)
		}
		bus.Start(t)
		node := uniqueName(t, "node")
		at := time.Now().UTC().Truncate(time.Millisecond)
		sent := []ports.Signal{
			{Kind: ports.SignalHeartbeat, Node: node, Seq: 1, At: at, Users: []user.ID{"alice", "bob"}},
			{Kind: ports.SignalJoin, Node: node, Seq: 2, At: at, User: "carol"},
			{Kind: ports.SignalLeave, Node: node, Seq: 3, At: at, User: "carol"},
			{Kind: ports.SignalTyping, Node: node, At: at, User: "alice", Conversation: "c_AAAAAAAAAAAAAAAAAAAAAA", To: "bob"},
		}
		for i, s := range sent {
			if err := bus.Nodes[i%len(bus.Nodes)].Publish(context.Background(), s); err != nil {
				t.Fatalf("publish %s: %v", s.Kind, err)
			}
		}
		for i, in := range inboxes {
			eventually.Within(t, features.Settle, fmt.Sprintf("node %d to receive every signal", i), func() bool { return in.count(node) >= len(sent) })
		}
		time.Sleep(features.Quiet)
		for i, in := range inboxes {
			got := in.of(node)
			if len(got) != len(sent) {
				t.Errorf("node %d received %d signals, want %d once each", i, len(got), len(sent))
				continue
			}
			for _, want := range sent {
				if !in.has(want) {
					t.Errorf("node %d did not receive %+v whole; got %+v", i, want, got)
				}
			}
		}
	})

	t.Run("a burst arrives complete", func(t *testing.T) {
		bus := newBus(t, 1)
		in := &signalInbox{}
		bus.Nodes[0].Subscribe(in.handle)
		bus.Start(t)
		node := uniqueName(t, "node")
		const n = 50
		for i := range n {
			s := ports.Signal{Kind: ports.SignalJoin, Node: node, Seq: uint64(i + 1), At: time.Now(), User: user.ID(fmt.Sprintf("u%d", i))}
			if err := bus.Nodes[0].Publish(context.Background(), s); err != nil {
				t.Fatal(err)
			}
		}
		eventually.Within(t, features.Settle, "the burst to arrive", func() bool { return in.count(node) >= n })
	})
}

type signalInbox struct {
	mu  sync.Mutex
	got []ports.Signal
}

func (in *signalInbox) handle(_ context.Context, s ports.Signal) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.got = append(in.got, s)
}

func (in *signalInbox) of(node string) []ports.Signal {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []ports.Signal
	for _, s := range in.got {
		if s.Node == node {
			out = append(out, s)
		}
	}
	return out
}

func (in *signalInbox) count(node string) int { return len(in.of(node)) }

func (in *signalInbox) has(want ports.Signal) bool {
	for _, s := range in.of(want.Node) {
		if s.Kind == want.Kind && s.Seq == want.Seq && s.At.Equal(want.At) && s.User == want.User &&
			reflect.DeepEqual(s.Users, want.Users) && s.Conversation == want.Conversation && s.To == want.To {
			return true
		}
	}
	return false
}

// TestLastSeenStore runs the last-seen store contract.
func TestLastSeenStore(t *testing.T, newStore func(t *testing.T) ports.LastSeenStore) {
	ctx := context.Background()
	t0 := time.Date(2025, 6, 7, 8, 9, 10, 123_000_000, time.UTC)

	t.Run("a later time replaces an earlier one, never the other way", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		u := user.ID(uniqueName(t, "u"))
		for _, at := range []time.Time{t0, t0.Add(time.Hour), t0.Add(time.Minute)} {
			if err := s.Touch(ctx, []ports.LastSeen{{User: u, At: at}}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Get(ctx, []user.ID{u})
		if err != nil {
			t.Fatal(err)
		}
		if !got[u].Equal(t0.Add(time.Hour)) {
			t.Fatalf("last seen %v, want %v", got[u], t0.Add(time.Hour))
		}
	})

	t.Run("only users with a time are answered", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		known, unknown := user.ID(uniqueName(t, "k")), user.ID(uniqueName(t, "n"))
		if err := s.Touch(ctx, nil); err != nil {
			t.Fatalf("touching nothing: %v", err)
		}
		if err := s.Touch(ctx, []ports.LastSeen{{User: known, At: t0}}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, []user.ID{known, unknown})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || !got[known].Equal(t0) {
			t.Fatalf("got %v, want only %s at %v", got, known, t0)
		}
	})

	t.Run("a batch stores every user's time", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		var batch []ports.LastSeen
		var users []user.ID
		for i := range 200 {
			u := user.ID(fmt.Sprintf("%s-%d", uniqueName(t, "b"), i))
			users = append(users, u)
			batch = append(batch, ports.LastSeen{User: u, At: t0.Add(time.Duration(i) * time.Second)})
		}
		if err := s.Touch(ctx, batch); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, users)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range batch {
			if !got[b.User].Equal(b.At) {
				t.Fatalf("%s: %v, want %v", b.User, got[b.User], b.At)
			}
		}
	})
}
