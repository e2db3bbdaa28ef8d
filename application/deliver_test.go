package application_test

import (
	"context"
	"fmt"
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
	"github.com/evchat/chatd/tests/eventually"
)

// In a synctest bubble, so that synctest.Wait shows that nothing more is
// under way, where a sleep only hoped so.
func TestMessageReachesRecipientAndSendersOtherSessionsOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, testConfig(), memory.NewEventStore())
		sending := connect(t, n, "alice-phone", "alice")
		other := connect(t, n, "alice-laptop", "alice")
		bob := connect(t, n, "bob-phone", "bob")
		outsider := connect(t, n, "carol-phone", "carol")
		_, err := n.app.Send.Handle(context.Background(), application.SendMessageCommand{
			Sender: "alice", ClientID: "k", To: "bob", Body: "hi", Origin: sending.id})
		if err != nil {
			t.Fatal(err)
		}
		eventually.True(t, "bob and alice's other session", func() bool { return len(bob.seqs()) == 1 && len(other.seqs()) == 1 })
		synctest.Wait()
		if len(sending.seqs()) != 0 || len(outsider.seqs()) != 0 {
			t.Fatalf("sending session got %v, outsider got %v", sending.seqs(), outsider.seqs())
		}
	})
}

// TestDeliveryFillsGapsAndNeverRepeats delivers by hand, on a node sharing
// the store, the commits another node stored, in the orders a broadcast
// consumer that runs batches side by side may bring them.
func TestDeliveryFillsGapsAndNeverRepeats(t *testing.T) {
	const longAfter = time.Minute
	tests := []struct {
		name string
		// opensAfter is how long after the messages were stored bob opens
		// his session, by the delivering node's clock.
		opensAfter time.Duration
		// before and after list the commits the node delivers before and
		// after the session opens, by seq, in arrival order.
		before, after []uint64
		want          []uint64
	}{
		{"messages stored long before the session are left to sync", longAfter, nil, []uint64{2}, []uint64{2}},
		{"a gap is filled from the store", longAfter, nil, []uint64{2, 5}, []uint64{2, 3, 4, 5}},
		{"late and repeated commits are dropped", longAfter, nil, []uint64{2, 5, 3, 4, 5, 2}, []uint64{2, 3, 4, 5}},
		{"messages stored just before the session come first", 0, nil, []uint64{3, 1, 2}, []uint64{1, 2, 3}},
		{"what the node delivered before the session is left to sync", 0, []uint64{1, 2}, []uint64{4, 3}, []uint64{3, 4}},
		{"the message after those delivered before the session", 0, []uint64{1, 2}, []uint64{3}, []uint64{3}},
	}
	for _, tt := range tests {
		// Each case in a bubble of its own, where the delivered marks'
		// delay passes at once; the messages are stored on its clock.
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := memory.NewEventStore()
				sender := newNode(t, testConfig(), store)
				for i := range 5 {
					send(t, sender, "alice", string(rune('a'+i)), "bob", "x")
				}
				commits, err := store.Load(context.Background(), string(conversation.IDFor("alice", "bob")), 1, 0)
				if err != nil {
					t.Fatal(err)
				}
				n := newNodeWithClock(t, testConfig(), store, laterClock{by: tt.opensAfter})
				deliver := func(seqs []uint64) {
					for _, seq := range seqs {
						if err := n.app.Delivery.Handle(context.Background(), commits[seq-1:seq]); err != nil {
							t.Fatal(err)
						}
					}
				}
				deliver(tt.before)
				bob := connect(t, n, "bob-late", "bob")
				deliver(tt.after)
				if !slices.Equal(bob.seqs(), tt.want) {
					t.Fatalf("bob saw %v, want %v", bob.seqs(), tt.want)
				}
			})
		})
	}
}

func TestDeliveryMovesTheDeliveredMarker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, testConfig(), memory.NewEventStore())
		alice := connect(t, n, "alice-phone", "alice")
		connect(t, n, "bob-phone", "bob")
		ack := send(t, n, "alice", "k", "bob", "hi")
		eventually.True(t, "alice to get bob's delivered receipt", func() bool {
			for _, r := range alice.receiptsSeen() {
				if r.User == "bob" && r.DeliveredUpTo == ack.Seq && r.Conversation == string(ack.Conversation) {
					return true
				}
			}
			return false
		})
		page, err := n.app.History.Handle(context.Background(), application.HistoryQuery{Reader: "alice", Conversation: ack.Conversation})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Messages) != 1 || page.Messages[0].Status != "delivered" {
			t.Fatalf("history %+v, want one delivered message", page.Messages)
		}
	})
}

// writingSession is one session of a test: whose it is, and whether its
// transport writes what is pushed to it.
type writingSession struct {
	user   user.ID
	writes bool
}

func TestDeliveredMarkerMovesOnlyOverWrittenMessages(t *testing.T) {
	tests := []struct {
		name     string
		sessions []writingSession
		want     string
	}{
		{"the recipient's session writes", []writingSession{{"bob", true}}, "delivered"},
		{"the recipient's session never writes", []writingSession{{"bob", false}}, "sent"},
		{"only the sender's other session writes", []writingSession{{"bob", false}, {"alice", true}}, "sent"},
		{"one of the recipient's sessions writes", []writingSession{{"bob", false}, {"bob", true}}, "delivered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := newNode(t, testConfig(), memory.NewEventStore())
				var pushed []*fakeSession
				for i, s := range tt.sessions {
					fs := &fakeSession{id: fmt.Sprintf("%s-%d", s.user, i), user: s.user}
					if s.writes {
						fs.delivery = n.app.Delivery
					}
					t.Cleanup(n.app.Sessions.Register(fs))
					pushed = append(pushed, fs)
				}
				ack := send(t, n, "alice", "k1", "bob", "one")
				send(t, n, "alice", "k2", "bob", "two")
				eventually.True(t, "both messages pushed to every session", func() bool {
					for _, fs := range pushed {
						if len(fs.seqs()) != 2 {
							return false
						}
					}
					return true
				})
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				for _, fs := range pushed {
					fs.writing.Wait()
				}
				n.app.Delivery.Wait(ctx)
				page, err := n.app.History.Handle(ctx, application.HistoryQuery{Reader: "alice", Conversation: ack.Conversation})
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Messages) != 2 {
					t.Fatalf("history has %d messages, want 2", len(page.Messages))
				}
				for _, m := range page.Messages {
					if m.Status != tt.want {
						t.Fatalf("message %d is %s, want %s", m.Seq, m.Status, tt.want)
					}
				}
			})
		})
	}
}

func TestReceiptsNeverGoBack(t *testing.T) {
	store := memory.NewEventStore()
	sender := newNode(t, testConfig(), store)
	var ack application.Ack
	for i := range 3 {
		ack = send(t, sender, "alice", string(rune('a'+i)), "bob", "x")
	}
	ctx := context.Background()
	for _, upTo := range []uint64{1, 2, 3} {
		if err := sender.app.MarkReceipts.Handle(ctx, application.MarkReadCommand{Reader: "bob", Conversation: ack.Conversation, UpTo: upTo}); err != nil {
			t.Fatal(err)
		}
	}
	receipts, err := store.Load(ctx, conversation.ReceiptsStream(ack.Conversation), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Another node hears of the receipts in the wrong order.
	n := newNode(t, testConfig(), store)
	alice := connect(t, n, "alice-phone", "alice")
	for _, i := range []int{2, 0, 1} {
		if err := n.app.Delivery.Handle(ctx, receipts[i:i+1]); err != nil {
			t.Fatal(err)
		}
	}
	var read []uint64
	for _, r := range alice.receiptsSeen() {
		if r.ReadUpTo > 0 {
			read = append(read, r.ReadUpTo)
		}
	}
	if !slices.Equal(read, []uint64{3}) {
		t.Fatalf("alice was told bob read up to %v; a marker must only move forward", read)
	}
}

// A full bus queue makes senders wait while they hold their conversation;
// delivery, which drains the queue, must never wait for a conversation.
func TestDeliveryNeverWaitsForABusyConversation(t *testing.T) {
	store := memory.NewEventStore()
	tx, _ := application.NewTransactions(store, memory.Clock{}, time.Second)
	bus, err := memory.NewBus(tx, memory.BusConfig{QueueSize: 1, BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	app, err := application.New(testConfig(), store, bus, memory.NewReadModel(), memory.Clock{}, memory.IDs{}, memoryPresence())
	if err != nil {
		t.Fatal(err)
	}
	app.Subscribe(bus)
	_ = bus.Start(context.Background())
	defer func() { _ = bus.Stop(context.Background()) }()
	for _, u := range []user.ID{"alice", "bob"} {
		t.Cleanup(app.Sessions.Register(&fakeSession{id: string(u), user: u, delivery: app.Delivery}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from, to := user.ID("alice"), user.ID("bob")
			if i%2 == 1 {
				from, to = "bob", "alice"
			}
			if _, err := app.Send.Handle(ctx, application.SendMessageCommand{Sender: from, ClientID: message.ClientID(fmt.Sprintf("k%d", i)), To: to, Body: "x"}); err != nil {
				t.Error(err)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("sends stuck: delivery waited for a conversation whose sender waited for delivery")
	}
}

// A session that opens after messages were sent is pushed only the next
// one; the ones before it reached no connection of the recipient until a
// sync page brings them, so the marker waits for that page.
func TestDeliveredMarkerWaitsForWhatASessionNeverHad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, testConfig(), memory.NewEventStore())
		// Alice's other device shows when the bus has delivered her messages.
		alice := connect(t, n, "alice-laptop", "alice")
		ack := send(t, n, "alice", "k1", "bob", "one")
		send(t, n, "alice", "k2", "bob", "two")
		eventually.True(t, "the first two messages delivered", func() bool { return len(alice.seqs()) == 2 })
		bob := connect(t, n, "bob-phone", "bob")
		send(t, n, "alice", "k3", "bob", "three")
		eventually.True(t, "the third message pushed", func() bool { return len(bob.seqs()) == 1 })
		statuses := func() []string {
			t.Helper()
			bob.writing.Wait()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			n.app.Delivery.Wait(ctx)
			return historyStatuses(ctx, t, n, "alice", ack.Conversation)
		}
		if got, want := statuses(), []string{"sent", "sent", "sent"}; !slices.Equal(got, want) {
			t.Fatalf("after the live push alone: %v, want %v", got, want)
		}
		bob.writePage(string(ack.Conversation), 1, 2)
		if got, want := statuses(), []string{"delivered", "delivered", "delivered"}; !slices.Equal(got, want) {
			t.Fatalf("after the sync page: %v, want %v", got, want)
		}
	})
}

// TestEachDeliveredMarkFallsDueOnItsOwn: a conversation's delivered mark
// waits the mark delay from its own first write, not for a tick shared by
// every conversation, so that a node's marks are written spread out rather
// than in one burst that sends wait behind.
func TestEachDeliveredMarkFallsDueOnItsOwn(t *testing.T) {
	const markDelay = 300 * time.Millisecond
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, testConfig(), memory.NewEventStore())
		alice := connect(t, n, "alice-phone", "alice")
		carol := connect(t, n, "carol-phone", "carol")
		connect(t, n, "bob-phone", "bob")
		deliveredTo := func(s *fakeSession) bool {
			for _, r := range s.receiptsSeen() {
				if r.User == "bob" && r.DeliveredUpTo == 1 {
					return true
				}
			}
			return false
		}
		start := time.Now()
		send(t, n, "alice", "a", "bob", "first")
		settle(200 * time.Millisecond)
		send(t, n, "carol", "c", "bob", "second")
		settle(markDelay + 20*time.Millisecond - time.Since(start))
		if !deliveredTo(alice) {
			t.Fatal("alice's message not marked delivered once its mark was due")
		}
		if deliveredTo(carol) {
			t.Fatal("carol's message marked delivered with alice's, before its own mark was due")
		}
		settle(200*time.Millisecond + markDelay + 20*time.Millisecond - time.Since(start))
		if !deliveredTo(carol) {
			t.Fatal("carol's message not marked delivered once its mark was due")
		}
	})
}

// receiptsDownStore refuses appends to receipts streams while down: the
// store or broker gone when a delivered mark falls due.
type receiptsDownStore struct {
	ports.EventStore
	down atomic.Bool
}

func (s *receiptsDownStore) Append(ctx context.Context, c ports.Commit) error {
	if _, kind := conversation.StreamOf(c.Stream); kind == conversation.StreamReceipts && s.down.Load() {
		return ports.ErrUnavailable
	}
	return s.EventStore.Append(ctx, c)
}

// A delivered mark that could not be written is written once it can be,
// so that the last message before the store or the broker went away is
// marked delivered without waiting for a next one.
func TestADeliveredMarkThatFailedIsWrittenOnceItCanBe(t *testing.T) {
	const markDelay = 300 * time.Millisecond
	synctest.Test(t, func(t *testing.T) {
		store := &receiptsDownStore{EventStore: memory.NewEventStore()}
		n := newNode(t, testConfig(), store)
		alice := connect(t, n, "alice-phone", "alice")
		connect(t, n, "bob-phone", "bob")
		deliveredTo := func(seq uint64) bool {
			for _, r := range alice.receiptsSeen() {
				if r.User == "bob" && r.DeliveredUpTo == seq {
					return true
				}
			}
			return false
		}
		store.down.Store(true)
		send(t, n, "alice", "a1", "bob", "while the store is down for receipts")
		settle(2 * markDelay)
		if deliveredTo(1) {
			t.Fatal("a receipt came while its commit could not be stored")
		}
		store.down.Store(false)
		settle(2 * markDelay)
		if !deliveredTo(1) {
			t.Fatalf("no receipt for bob up to 1 once the store was back; receipts seen: %+v", alice.receiptsSeen())
		}
	})
}
