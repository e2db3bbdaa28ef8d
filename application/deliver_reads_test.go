package application_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/ports"
)

// countingStore counts the reads of streams, to show what delivery reads.
type countingStore struct {
	ports.EventStore
	mu    sync.Mutex
	loads int
}

func (s *countingStore) Load(ctx context.Context, stream string, from, to uint64) ([]ports.Commit, error) {
	s.mu.Lock()
	s.loads++
	s.mu.Unlock()
	return s.EventStore.Load(ctx, stream, from, to)
}

func (s *countingStore) loadsSoFar() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loads
}

// fourFromAlicesPhoneThenBobs stores, through a node of its own, four
// messages sent from alice's session alice-phone to bob and bob's reply,
// and returns their commits, seqs 1 to 5.
func fourFromAlicesPhoneThenBobs(t *testing.T, store ports.EventStore) []ports.Commit {
	t.Helper()
	sender := newNode(t, testConfig(), store)
	for i := range 4 {
		cmd := application.SendMessageCommand{Sender: "alice", ClientID: message.ClientID(rune('a' + i)), To: "bob", Body: "x", Origin: "alice-phone"}
		if _, err := sender.app.Send.Handle(context.Background(), cmd); err != nil {
			t.Fatal(err)
		}
	}
	send(t, sender, "bob", "b", "alice", "y")
	commits, err := store.Load(context.Background(), string(conversation.IDFor("alice", "bob")), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	return commits
}

// TestASessionsOwnMessagesCostNoStoreRead: the session that sent the
// messages, which is never pushed them, does not fill the gaps between them
// from the store however they arrive; a message of the other participant
// then brings it the gap's messages it did not send, in order.
func TestASessionsOwnMessagesCostNoStoreRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := memory.NewEventStore()
		commits := fourFromAlicesPhoneThenBobs(t, shared)
		store := &countingStore{EventStore: shared}
		n := newNode(t, testConfig(), store)
		alice := connect(t, n, "alice-phone", "alice")
		for _, seq := range []uint64{1, 4, 2, 3} {
			if err := n.app.Delivery.Handle(context.Background(), commits[seq-1:seq]); err != nil {
				t.Fatal(err)
			}
		}
		if got := store.loadsSoFar(); got != 0 || len(alice.seqs()) != 0 {
			t.Fatalf("alice's own messages out of order cost %d store reads and pushed %v; want none", got, alice.seqs())
		}
		if err := n.app.Delivery.Handle(context.Background(), commits[4:5]); err != nil {
			t.Fatal(err)
		}
		if got := alice.seqs(); !slices.Equal(got, []uint64{5}) {
			t.Fatalf("alice saw %v after bob's reply, want only bob's seq 5", got)
		}
	})
}

// TestTheReplyToASessionsOwnMessagesCostsAReadOnlyForAGap: the messages a
// session sent move its cursor as they arrive in order, so the other
// participant's reply needs no read; one that came out of order leaves the
// cursor before it, and the reply reads that gap (its messages, then their
// changes).
func TestTheReplyToASessionsOwnMessagesCostsAReadOnlyForAGap(t *testing.T) {
	for _, tc := range []struct {
		name  string
		order []uint64
		reads int
	}{
		{name: "in order", order: []uint64{1, 2, 3, 4}, reads: 0},
		{name: "the last one first", order: []uint64{4, 1, 2, 3}, reads: 2},
		{name: "the first one last", order: []uint64{2, 3, 4, 1}, reads: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				shared := memory.NewEventStore()
				store := &countingStore{EventStore: shared}
				n := newNode(t, testConfig(), store)
				alice := connect(t, n, "alice-phone", "alice")
				commits := fourFromAlicesPhoneThenBobs(t, shared)
				for _, seq := range tc.order {
					if err := n.app.Delivery.Handle(context.Background(), commits[seq-1:seq]); err != nil {
						t.Fatal(err)
					}
				}
				before := store.loadsSoFar()
				if err := n.app.Delivery.Handle(context.Background(), commits[4:5]); err != nil {
					t.Fatal(err)
				}
				if got := store.loadsSoFar() - before; got != tc.reads {
					t.Errorf("bob's reply cost %d store reads, want %d", got, tc.reads)
				}
				if got := alice.seqs(); !slices.Equal(got, []uint64{5}) {
					t.Errorf("alice saw %v after bob's reply, want only bob's seq 5", got)
				}
			})
		})
	}
}
