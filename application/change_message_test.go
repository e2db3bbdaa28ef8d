package application_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
	"github.com/evchat/chatd/tests/eventually"
)

func edit(n *node, by user.ID, key string, conv conversation.ID, seq uint64, body string) (application.Changed, error) {
	return n.app.Edit.Handle(context.Background(), application.EditMessageCommand{
		Author: by, ClientID: message.ClientID(key), Conversation: conv, Seq: seq, Body: message.Body(body)})
}

func recall(n *node, by user.ID, key string, conv conversation.ID, seq uint64) (application.Changed, error) {
	return n.app.Recall.Handle(context.Background(), application.RecallMessageCommand{
		Author: by, ClientID: message.ClientID(key), Conversation: conv, Seq: seq})
}

func TestEditAndRecallRules(t *testing.T) {
	window := application.DefaultEditWindow
	tests := []struct {
		name   string
		recall bool
		by     user.ID
		seq    uint64
		after  time.Duration
		prior  bool // alice recalled seq 1 first
		want   domain.Kind
	}{
		{"the author edits within the window", false, "alice", 1, time.Minute, false, 0},
		{"the window's edge is inside it", true, "alice", 1, window, false, 0},
		{"past the window is forbidden", false, "alice", 1, window + time.Millisecond, false, domain.Forbidden},
		{"the peer is forbidden", false, "bob", 1, time.Minute, false, domain.Forbidden},
		{"a non-participant finds nothing", true, "carol", 1, time.Minute, false, domain.NotFound},
		{"an unknown seq is not found", false, "alice", 9, time.Minute, false, domain.NotFound},
		{"seq 0 is not found", true, "alice", 0, time.Minute, false, domain.NotFound},
		{"a recalled message is forbidden to its author", false, "alice", 1, time.Minute, true, domain.Forbidden},
		{"a recalled message is forbidden to the peer", true, "bob", 1, time.Minute, true, domain.Forbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, clock := newManualNode(t, testConfig())
			ack := send(t, n, "alice", "m1", "bob", "hello")
			if tt.prior {
				if _, err := recall(n, "alice", "first", ack.Conversation, 1); err != nil {
					t.Fatal(err)
				}
			}
			clock.Add(tt.after)
			var err error
			if tt.recall {
				_, err = recall(n, tt.by, "k", ack.Conversation, tt.seq)
			} else {
				_, err = edit(n, tt.by, "k", ack.Conversation, tt.seq, "changed")
			}
			if got := domain.KindOf(err); got != tt.want {
				t.Fatalf("err = %v (kind %v), want kind %v", err, got, tt.want)
			}
		})
	}
}

func TestAChangeIsIdempotentOnItsKey(t *testing.T) {
	n, clock := newManualNode(t, testConfig())
	ack := send(t, n, "alice", "m1", "bob", "hello")
	send(t, n, "alice", "m2", "bob", "again")
	first, err := edit(n, "alice", "e1", ack.Conversation, 1, "hello!")
	if err != nil {
		t.Fatal(err)
	}
	recalled, err := recall(n, "alice", "r1", ack.Conversation, 2)
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(application.DefaultEditWindow + time.Minute)
	// A resend answers the first answer, though the rules would now refuse
	// it: the window closed, and message 2 is recalled.
	for _, resend := range []func() (application.Changed, error){
		func() (application.Changed, error) { return edit(n, "alice", "e1", ack.Conversation, 1, "hello!") },
		func() (application.Changed, error) { return recall(n, "alice", "r1", ack.Conversation, 2) },
	} {
		if _, err := resend(); err != nil {
			t.Fatal(err)
		}
	}
	again, _ := edit(n, "alice", "e1", ack.Conversation, 1, "hello!")
	recalledAgain, _ := recall(n, "alice", "r1", ack.Conversation, 2)
	if again != first || recalledAgain != recalled {
		t.Fatalf("resends answered %+v, %+v; want %+v, %+v", again, recalledAgain, first, recalled)
	}
	if first.Rev != 1 || recalled.Rev != 2 || first.ClientID != "e1" {
		t.Fatalf("changes %+v, %+v", first, recalled)
	}
	changes, err := n.store.Load(context.Background(), conversation.ChangesStream(ack.Conversation), 1, 0)
	if err != nil || len(changes) != 2 {
		t.Fatalf("changes stream holds %d commits (%v), want 2", len(changes), err)
	}
	// A key used for a send is a key of its own for a change.
	if _, err := edit(n, "alice", "m1", ack.Conversation, 1, "x"); !errors.Is(err, message.ErrEditWindowClosed) {
		t.Fatalf("edit under a send's key past the window: %v", err)
	}
}

func TestUpdatesReachEverySessionButTheOneThatAsked(t *testing.T) {
	n := newNode(t, testConfig(), memory.NewEventStore())
	ack := send(t, n, "alice", "m1", "bob", "hello")
	asking := connect(t, n, "alice-1", "alice")
	other := connect(t, n, "alice-2", "alice")
	bob := connect(t, n, "bob-1", "bob")
	outsider := connect(t, n, "carol-1", "carol")
	if _, err := n.app.Edit.Handle(context.Background(), application.EditMessageCommand{Author: "alice", ClientID: "e1",
		Conversation: ack.Conversation, Seq: 1, Body: "hello!", Origin: "alice-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.app.Recall.Handle(context.Background(), application.RecallMessageCommand{Author: "alice", ClientID: "r1",
		Conversation: ack.Conversation, Seq: 1, Origin: "alice-1"}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*fakeSession{other, bob} {
		eventually.True(t, s.id+" to get both updates", func() bool { return len(s.updatesSeen()) == 2 })
		got := s.updatesSeen()
		if got[0].Rev != 1 || got[0].Body != "hello!" || got[0].EditedAt.IsZero() ||
			got[1].Rev != 2 || got[1].Body != "" || got[1].RecalledAt.IsZero() {
			t.Fatalf("%s got %+v", s.id, got)
		}
	}
	if len(asking.updatesSeen()) != 0 || len(outsider.updatesSeen()) != 0 {
		t.Fatalf("the asking session got %v, the outsider %v", asking.updatesSeen(), outsider.updatesSeen())
	}
}

// TestUpdatesComeInRevOrderWithGapsFilled: a session that missed an
// update (its commit never came on the bus) gets it from the store before
// the next one.
func TestUpdatesComeInRevOrderWithGapsFilled(t *testing.T) {
	n := newNode(t, testConfig(), memory.NewEventStore())
	ack := send(t, n, "alice", "m1", "bob", "hello")
	bob := connect(t, n, "bob-1", "bob")
	if _, err := edit(n, "alice", "e1", ack.Conversation, 1, "one"); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, "the first update", func() bool { return len(bob.updatesSeen()) == 1 })
	// Revs 2 and 3 go to the store behind the bus's back; rev 4 comes on it.
	for _, rev := range []uint64{2, 3} {
		c := ports.Commit{ID: fmt.Sprint("direct-", rev), Stream: conversation.ChangesStream(ack.Conversation), Version: rev,
			Events: []conversation.Event{conversation.MessageEdited{Conversation: ack.Conversation, Seq: 1, Rev: rev,
				Body: message.Body(fmt.Sprint("edit ", rev)), EditedAt: time.Now().UTC()}}, CommittedAt: time.Now()}
		if err := n.store.Append(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := edit(n, "alice", "e4", ack.Conversation, 1, "four"); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, "all four updates", func() bool { return len(bob.updatesSeen()) == 4 })
	var revs []uint64
	for _, u := range bob.updatesSeen() {
		revs = append(revs, u.Rev)
	}
	if !slices.Equal(revs, []uint64{1, 2, 3, 4}) {
		t.Fatalf("revs %v, want 1-4 in order", revs)
	}
}

// TestConcurrentChangesTakeGaplessRevs: nodes that do not see each other's
// commits race for the changes stream, and the store decides every race.
func TestConcurrentChangesTakeGaplessRevs(t *testing.T) {
	store := memory.NewEventStore()
	nodes := []*node{newNode(t, testConfig(), store), newNode(t, testConfig(), store)}
	ack := send(t, nodes[0], "alice", "m0", "bob", "x")
	const messages = 8
	for i := 1; i < messages; i++ {
		send(t, nodes[0], "alice", fmt.Sprint("m", i), "bob", "x")
	}
	revs := make([]uint64, messages)
	var wg sync.WaitGroup
	for i := range messages {
		wg.Go(func() {
			changed, err := edit(nodes[i%2], "alice", fmt.Sprint("e", i), ack.Conversation, uint64(i+1), fmt.Sprint("edit ", i))
			if err != nil {
				t.Error(err)
			}
			revs[i] = changed.Rev
		})
	}
	wg.Wait()
	slices.Sort(revs)
	for i, rev := range revs {
		if rev != uint64(i+1) {
			t.Fatalf("revs %v, want 1-%d each once", revs, messages)
		}
	}
}

func TestReadsShowTheCurrentState(t *testing.T) {
	n := newNode(t, testConfig(), memory.NewEventStore())
	ack := send(t, n, "alice", "m1", "bob", "first")
	send(t, n, "alice", "m2", "bob", "second")
	send(t, n, "alice", "m3", "bob", "third")
	mustChange(t)(edit(n, "alice", "e1", ack.Conversation, 1, "first, edited"))
	mustChange(t)(recall(n, "alice", "r3", ack.Conversation, 3))
	mustChange(t)(edit(n, "alice", "e2", ack.Conversation, 2, "second, edited"))

	history, err := n.app.History.Handle(context.Background(), application.HistoryQuery{Reader: "bob", Conversation: ack.Conversation})
	if err != nil {
		t.Fatal(err)
	}
	assertCurrent(t, "history", history.Messages)
	page, err := n.app.Sync.Handle(context.Background(), application.SyncQuery{Reader: "bob", Conversation: ack.Conversation,
		WithChanges: true, ChangesAfter: 1})
	if err != nil {
		t.Fatal(err)
	}
	assertCurrent(t, "sync", page.Messages)
	// After rev 1: the recall of 3 (rev 2), then the edit of 2 (rev 3).
	if len(page.Updates) != 2 || page.Updates[0].Seq != 3 || page.Updates[0].Rev != 2 || page.Updates[0].Body != "" ||
		page.Updates[1].Seq != 2 || page.Updates[1].Rev != 3 || page.Updates[1].Body != "second, edited" {
		t.Fatalf("updates %+v", page.Updates)
	}
	limited, err := n.app.Sync.Handle(context.Background(), application.SyncQuery{Reader: "bob", Conversation: ack.Conversation,
		WithChanges: true, Limit: 1})
	if err != nil || len(limited.Updates) != 1 || limited.Updates[0].Rev != 1 {
		t.Fatalf("updates limited to one: %+v, %v", limited.Updates, err)
	}
	eventually.True(t, "the list to show the last message recalled", func() bool {
		list, err := n.app.Conversations.Handle(context.Background(), "bob")
		return err == nil && len(list) == 1 && list[0].LastMessage != nil &&
			list[0].LastMessage.Body == "" && !list[0].LastMessage.RecalledAt.IsZero()
	})
}

// TestAGapFillShowsARecalledMessageWithoutItsBody: a session that missed
// messages is pushed them from the store as they stand now.
func TestAGapFillShowsARecalledMessageWithoutItsBody(t *testing.T) {
	store := memory.NewEventStore()
	sender := newNode(t, testConfig(), store)
	ack := send(t, sender, "alice", "m1", "bob", "hello")
	send(t, sender, "alice", "m2", "bob", "secret")
	send(t, sender, "alice", "m3", "bob", "after")
	mustChange(t)(recall(sender, "alice", "r2", ack.Conversation, 2))
	commits, err := store.Load(context.Background(), conversation.MessagesStream(ack.Conversation), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A node that has delivered seq 1 gets seq 3 and fills seq 2 from the store.
	n := newNodeWithClock(t, testConfig(), store, laterClock{by: time.Minute})
	bob := connect(t, n, "bob-late", "bob")
	for _, c := range [][]ports.Commit{commits[0:1], commits[2:3]} {
		if err := n.app.Delivery.Handle(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	bob.mu.Lock()
	defer bob.mu.Unlock()
	if len(bob.messages) != 3 {
		t.Fatalf("bob got %+v", bob.messages)
	}
	if m := bob.messages[1]; m.Body != "" || m.RecalledAt.IsZero() {
		t.Fatalf("a gap fill pushed the recalled message as %+v", m)
	}
}

func mustChange(t *testing.T) func(application.Changed, error) {
	return func(_ application.Changed, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func assertCurrent(t *testing.T, what string, got []ports.MessageView) {
	t.Helper()
	if len(got) != 3 {
		t.Fatalf("%s: %d messages", what, len(got))
	}
	if got[0].Body != "first, edited" || got[0].EditedAt.IsZero() || got[1].Body != "second, edited" ||
		got[2].Body != "" || got[2].RecalledAt.IsZero() {
		t.Fatalf("%s: %+v", what, got)
	}
}

// TestAMessageDeliveredAfterItsRecallHasNoBody: batches run side by side,
// so a node may deliver a recall before the message it recalls.
func TestAMessageDeliveredAfterItsRecallHasNoBody(t *testing.T) {
	store := memory.NewEventStore()
	sender := newNode(t, testConfig(), store)
	ack := send(t, sender, "alice", "m1", "bob", "secret")
	mustChange(t)(recall(sender, "alice", "r1", ack.Conversation, 1))
	posted, err := store.Load(context.Background(), conversation.MessagesStream(ack.Conversation), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	recalls, err := store.Load(context.Background(), conversation.ChangesStream(ack.Conversation), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := newNode(t, testConfig(), store)
	bob := connect(t, n, "bob-1", "bob")
	for _, batch := range [][]ports.Commit{recalls, posted} {
		if err := n.app.Delivery.Handle(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	bob.mu.Lock()
	defer bob.mu.Unlock()
	if len(bob.messages) != 1 || bob.messages[0].Body != "" || bob.messages[0].RecalledAt.IsZero() {
		t.Fatalf("bob was pushed %+v after its recall", bob.messages)
	}
}

// TestASessionsFirstUpdatesComeInRevOrder: a session with no update of a
// conversation yet may be handed rev 2 before rev 1 (batches run side by
// side); it still gets rev 1 first, read from the store, and once.
func TestASessionsFirstUpdatesComeInRevOrder(t *testing.T) {
	store := memory.NewEventStore()
	sender := newNode(t, testConfig(), store)
	ack := send(t, sender, "alice", "m1", "bob", "hello")
	n := newNode(t, testConfig(), store)
	bob := connect(t, n, "bob-1", "bob")
	mustChange(t)(edit(sender, "alice", "e1", ack.Conversation, 1, "one"))
	mustChange(t)(edit(sender, "alice", "e2", ack.Conversation, 1, "two"))
	changes, err := store.Load(context.Background(), conversation.ChangesStream(ack.Conversation), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []ports.Commit{changes[1], changes[0]} {
		if err := n.app.Delivery.Handle(context.Background(), []ports.Commit{c}); err != nil {
			t.Fatal(err)
		}
	}
	var revs []uint64
	for _, u := range bob.updatesSeen() {
		revs = append(revs, u.Rev)
	}
	if !slices.Equal(revs, []uint64{1, 2}) {
		t.Fatalf("bob got revs %v, want 1 then 2, once each", revs)
	}
}
