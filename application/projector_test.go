package application_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/ports"
)

// projectedBy runs a fresh projector over commits fed in the given order.
func projectedBy(t *testing.T, store ports.EventStore, batches ...[]ports.Commit) ports.ConversationView {
	t.Helper()
	rm := memory.NewReadModel()
	tx, _ := application.NewTransactions(store, memory.Clock{}, time.Second)
	bus, _ := memory.NewBus(tx, memory.DefaultBusConfig())
	app, err := application.New(testConfig(), store, bus, rm, memory.Clock{}, memory.IDs{})
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for _, b := range batches {
		if err := app.Projector.Handle(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 {
			c, _ := conversation.StreamConversation(b[0].Stream)
			id = string(c)
		}
	}
	views, err := rm.GetMany(context.Background(), []string{id})
	if err != nil {
		t.Fatal(err)
	}
	return views[id]
}

func TestProjectionIsIdempotentAndOrderFree(t *testing.T) {
	store := memory.NewEventStore()
	n := newNode(t, testConfig(), store)
	ctx := context.Background()
	var ack application.Ack
	for i := range 4 {
		ack = send(t, n, "alice", string(rune('a'+i)), "bob", "x")
	}
	send(t, n, "bob", "r", "alice", "reply")
	if err := n.app.MarkRead.Handle(ctx, application.MarkReadCommand{Reader: "bob", Conversation: ack.Conversation, UpTo: 3}); err != nil {
		t.Fatal(err)
	}
	id := conversation.ID(ack.Conversation)
	messages, _ := store.Load(ctx, conversation.MessagesStream(id), 1, 0)
	receipts, _ := store.Load(ctx, conversation.ReceiptsStream(id), 1, 0)
	all := append(append([]ports.Commit(nil), messages...), receipts...)

	want := projectedBy(t, store, all)
	if want.LastSeq != 5 || want.Members[1].User != "bob" || !reflect.DeepEqual(want.Members[1].Unread, []uint64{4}) {
		t.Fatalf("projection %+v", want)
	}
	tests := []struct {
		name    string
		batches [][]ports.Commit
	}{
		{"twice", [][]ports.Commit{all, all}},
		{"receipts before messages", [][]ports.Commit{receipts, messages}},
		{"last commit only, the rest from the store", [][]ports.Commit{messages[4:], receipts[len(receipts)-1:]}},
		{"one at a time backwards", func() [][]ports.Commit {
			var out [][]ports.Commit
			for i := len(all) - 1; i >= 0; i-- {
				out = append(out, all[i:i+1])
			}
			return out
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := projectedBy(t, store, tt.batches...); !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// Two nodes project one conversation in turn (a rebalance moved its queue):
// the node whose remembered view is stale must not overwrite the other's.
func TestProjectorsTakingTurnsAgree(t *testing.T) {
	store := memory.NewEventStore()
	n := newNode(t, testConfig(), store)
	ctx := context.Background()
	var ack application.Ack
	for i := range 4 {
		ack = send(t, n, "alice", string(rune('a'+i)), "bob", "x")
	}
	commits, _ := store.Load(ctx, conversation.MessagesStream(conversation.ID(ack.Conversation)), 1, 0)
	rm := memory.NewReadModel()
	node := func() *application.Application {
		tx, _ := application.NewTransactions(store, memory.Clock{}, time.Second)
		bus, _ := memory.NewBus(tx, memory.DefaultBusConfig())
		app, err := application.New(testConfig(), store, bus, rm, memory.Clock{}, memory.IDs{})
		if err != nil {
			t.Fatal(err)
		}
		return app
	}
	a, b := node(), node()
	for _, step := range []struct {
		app *application.Application
		i   int
	}{{a, 0}, {a, 1}, {b, 2}, {a, 3}} {
		if err := step.app.Projector.Handle(ctx, commits[step.i:step.i+1]); err != nil {
			t.Fatal(err)
		}
	}
	views, _ := rm.GetMany(ctx, []string{ack.Conversation})
	if got := views[ack.Conversation]; got.LastSeq != 4 || len(got.Members[1].Unread) != 4 {
		t.Fatalf("view after turns: lastSeq %d, bob's unread %v; want 4 and [1 2 3 4]", got.LastSeq, got.Members[1].Unread)
	}
}
