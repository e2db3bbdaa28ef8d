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
	app, err := application.New(testConfig(), store, bus, rm, memory.Clock{}, memory.IDs{}, memoryPresence())
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for _, b := range batches {
		if err := app.Projector.Handle(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 {
			c, _ := conversation.StreamOf(b[0].Stream)
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
	if err := n.app.MarkReceipts.Handle(ctx, application.MarkReadCommand{Reader: "bob", Conversation: ack.Conversation, UpTo: 3}); err != nil {
		t.Fatal(err)
	}
	id := ack.Conversation
	messages, _ := store.Load(ctx, conversation.MessagesStream(id), 1, 0)
	receipts, _ := store.Load(ctx, conversation.ReceiptsStream(id), 1, 0)
	all := append(append([]ports.Commit(nil), messages...), receipts...)

	want := projectedBy(t, store, all)
	if want.LastSeq != 5 || want.Members[1].User != "bob" || !reflect.DeepEqual(want.Members[1].Unread, []ports.SeqRun{{From: 4, To: 4}}) {
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
	commits, _ := store.Load(ctx, conversation.MessagesStream(ack.Conversation), 1, 0)
	rm := memory.NewReadModel()
	node := func() *application.Application {
		tx, _ := application.NewTransactions(store, memory.Clock{}, time.Second)
		bus, _ := memory.NewBus(tx, memory.DefaultBusConfig())
		app, err := application.New(testConfig(), store, bus, rm, memory.Clock{}, memory.IDs{}, memoryPresence())
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
	views, _ := rm.GetMany(ctx, []string{string(ack.Conversation)})
	if got := views[string(ack.Conversation)]; got.LastSeq != 4 || got.Members[1].UnreadCount() != 4 {
		t.Fatalf("view after turns: lastSeq %d, bob's unread %v; want 4 and [1 2 3 4]", got.LastSeq, got.Members[1].Unread)
	}
}

// TestUnreadRuns: a member's unread messages are kept as runs of seqs,
// merged as messages come in any order and cut as the reader reads.
func TestUnreadRuns(t *testing.T) {
	const conv = conversation.ID("c_runs")
	type step struct {
		posted []uint64 // seqs sent to bob, in this order
		readTo uint64   // then bob reads up to this seq (0: no read)
	}
	tests := []struct {
		name  string
		steps []step
		want  []ports.SeqRun
		count int
	}{
		{"in order", []step{{posted: []uint64{1, 2, 3}}}, []ports.SeqRun{{From: 1, To: 3}}, 3},
		{"with a gap", []step{{posted: []uint64{1, 2, 5}}}, []ports.SeqRun{{From: 1, To: 2}, {From: 5, To: 5}}, 3},
		{"late seq joins two runs", []step{{posted: []uint64{1, 3, 2}}}, []ports.SeqRun{{From: 1, To: 3}}, 3},
		{"late seq extends a run downwards", []step{{posted: []uint64{1, 4, 5, 3}}}, []ports.SeqRun{{From: 1, To: 1}, {From: 3, To: 5}}, 4},
		{"late seq before every run", []step{{posted: []uint64{5, 3}}}, []ports.SeqRun{{From: 3, To: 3}, {From: 5, To: 5}}, 2},
		{"repeated seq", []step{{posted: []uint64{1, 2, 2, 1}}}, []ports.SeqRun{{From: 1, To: 2}}, 2},
		{"read inside a run", []step{{posted: []uint64{1, 2, 3, 4}, readTo: 2}}, []ports.SeqRun{{From: 3, To: 4}}, 2},
		{"read between runs", []step{{posted: []uint64{1, 2, 6, 7}, readTo: 4}}, []ports.SeqRun{{From: 6, To: 7}}, 2},
		{"read everything", []step{{posted: []uint64{1, 2, 6}, readTo: 6}}, nil, 0},
		{"posted at or below the read marker stays read", []step{{readTo: 3}, {posted: []uint64{2, 3, 4}}}, []ports.SeqRun{{From: 4, To: 4}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			view := ports.ConversationView{Conversation: string(conv)}
			var messages, receipts uint64
			for _, s := range tt.steps {
				for _, seq := range s.posted {
					messages++
					application.Apply(&view, ports.Commit{Stream: conversation.MessagesStream(conv), Version: messages,
						Events: []conversation.Event{conversation.MessagePosted{Conversation: conv, Seq: seq, From: "alice", To: "bob"}}})
				}
				if s.readTo > 0 {
					receipts++
					application.Apply(&view, ports.Commit{Stream: conversation.ReceiptsStream(conv), Version: receipts,
						Events: []conversation.Event{conversation.ReadUpTo{Conversation: conv, User: "bob", Seq: s.readTo}}})
				}
			}
			bob := view.Members[0]
			if bob.User != "bob" {
				bob = view.Members[1]
			}
			if len(bob.Unread) == 0 {
				bob.Unread = nil
			}
			if !reflect.DeepEqual(bob.Unread, tt.want) || bob.UnreadCount() != tt.count {
				t.Fatalf("bob's unread %v (count %d), want %v (count %d)", bob.Unread, bob.UnreadCount(), tt.want, tt.count)
			}
		})
	}
}
