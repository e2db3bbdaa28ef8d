package application_test

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
	"github.com/evchat/chatd/tests/eventually"
)

// lostEnds is a bus whose ends of transaction never arrive: the local
// transaction stores the commit and the sender is acked, as when a master
// dies right after the local commit, but no subscriber hears of it until
// the commit is republished.
type lostEnds struct {
	*memory.Bus
	local ports.TransactionHandler
}

func (l lostEnds) Publish(ctx context.Context, c ports.Commit) (ports.TxState, error) {
	return l.local.ExecuteLocal(ctx, c)
}

// busAndLocal is a bus on store, and the local transactions on clock that
// a bus whose ends go astray runs instead of it.
func busAndLocal(t *testing.T, store ports.EventStore, clock ports.Clock, txTimeout time.Duration) (*memory.Bus, ports.TransactionHandler) {
	t.Helper()
	local, err := application.NewTransactions(store, clock, txTimeout)
	if err != nil {
		t.Fatal(err)
	}
	return newBus(t, store, txTimeout), local
}

func unreadOf(t *testing.T, rm ports.ReadModel, conv string, u user.ID) int {
	t.Helper()
	views, err := rm.GetMany(context.Background(), []string{conv})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range views[conv].Members {
		if m.User == u {
			return m.UnreadCount()
		}
	}
	return 0
}

func TestAnAckedMessageWhoseEndWasLostReachesItsRecipientOnceRepublished(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, clock, cfg := memory.NewEventStore(), application.NewManualClock(time.Now()), testConfig()
		bus, local := busAndLocal(t, store, clock, cfg.TxTimeout)
		rm := memory.NewReadModel()
		app, err := application.New(cfg, store, lostEnds{Bus: bus, local: local}, rm, clock, memory.IDs{}, memoryPresence())
		if err != nil {
			t.Fatal(err)
		}
		n := startNode(t, app, store, rm, bus)
		bob := connect(t, n, "bob-phone", "bob")

		ack := send(t, n, "alice", "k1", "bob", "the last word")
		ctx := context.Background()
		app.Republisher.Sweep(ctx)
		synctest.Wait()
		if got := bob.seqs(); len(got) != 0 {
			t.Fatalf("bob got %v from a bus that never heard of the commit", got)
		}
		// Nothing else comes back on this bus, which may only be behind: the
		// commit gets one more RepublishAfter before it is sent again.
		clock.Add(2*cfg.RepublishAfter - time.Millisecond)
		app.Republisher.Sweep(ctx)
		synctest.Wait()
		if got := bob.seqs(); len(got) != 0 {
			t.Fatalf("bob got %v before the commit was republished", got)
		}
		clock.Add(time.Millisecond)
		app.Republisher.Sweep(ctx)
		eventually.True(t, "the republished message to reach bob", func() bool { return len(bob.seqs()) == 1 })
		eventually.True(t, "the republished message to be projected", func() bool { return unreadOf(t, rm, string(ack.Conversation), "bob") == 1 })

		// Seen now: later sweeps send nothing, and the copy that checkback
		// publishes once the broker returns is dropped.
		clock.Add(time.Hour)
		app.Republisher.Sweep(ctx)
		stored, err := store.FindCommit(ctx, ack.MessageID)
		if err != nil {
			t.Fatal(err)
		}
		if err := bus.Republish(ctx, stored); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := bob.seqs(); !slices.Equal(got, []uint64{1}) {
			t.Fatalf("bob saw %v, want the message once", got)
		}
		if got := unreadOf(t, rm, string(ack.Conversation), "bob"); got != 1 {
			t.Fatalf("bob's unread count is %d, want 1", got)
		}
	})
}

// TestEveryCommitBroughtTwiceCountsOnce brings every commit of a
// conversation, messages and markers, back a second time through the bus,
// as a republish does, and checks each consumer: no session is pushed a
// message or a marker twice, the read model counts each unread message
// once, and the conversation cache, which observes every commit, lets the
// next message commit at the next seq.
func TestEveryCommitBroughtTwiceCountsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewEventStore()
		n := newNode(t, testConfig(), store)
		alice := &fakeSession{id: "alice-phone", user: "alice"}
		t.Cleanup(n.app.Sessions.Register(alice))
		bob := &fakeSession{id: "bob-phone", user: "bob"}
		t.Cleanup(n.app.Sessions.Register(bob))
		ctx := context.Background()
		var ack application.Ack
		for _, key := range []string{"a", "b", "c"} {
			ack = send(t, n, "alice", key, "bob", "x")
		}
		if err := n.app.MarkReceipts.Handle(ctx, application.MarkReadCommand{Reader: "bob", Conversation: ack.Conversation, UpTo: 1}); err != nil {
			t.Fatal(err)
		}
		// Reading implies delivery: the marker commit moves both of bob's markers.
		eventually.True(t, "the messages and the markers to arrive", func() bool {
			return len(bob.seqs()) == 3 && len(alice.receiptsSeen()) == 2 && unreadOf(t, n.rm, string(ack.Conversation), "bob") == 2
		})
		receiptsBefore := alice.receiptsSeen()

		conv := ack.Conversation
		messages, _ := store.Load(ctx, conversation.MessagesStream(conv), 1, 0)
		receipts, _ := store.Load(ctx, conversation.ReceiptsStream(conv), 1, 0)
		again := append(slices.Clone(receipts), messages...)
		slices.Reverse(again)
		for _, c := range again {
			if err := n.bus.Republish(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		next := send(t, n, "alice", "d", "bob", "after the copies")
		if next.Seq != 4 {
			t.Fatalf("the message after the copies got seq %d, want 4", next.Seq)
		}
		eventually.True(t, "the next message to arrive", func() bool { return len(bob.seqs()) == 4 })
		synctest.Wait()
		if got := bob.seqs(); !slices.Equal(got, []uint64{1, 2, 3, 4}) {
			t.Fatalf("bob saw %v, want each message once", got)
		}
		if got := alice.receiptsSeen(); !slices.Equal(got, receiptsBefore) {
			t.Fatalf("alice saw receipts %+v, want %+v: each marker once", got, receiptsBefore)
		}
		if got := unreadOf(t, n.rm, string(ack.Conversation), "bob"); got != 3 {
			t.Fatalf("bob's unread count is %d, want 3 (seqs 2 to 4)", got)
		}
	})
}
