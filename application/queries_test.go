package application_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
	"github.com/evchat/chatd/tests/eventually"
)

func TestMarkReadSendsReceiptsAndClearsUnread(t *testing.T) {
	n := newNode(t, testConfig(), memory.NewEventStore())
	alice := connect(t, n, "alice-phone", "alice")
	var ack application.Ack
	for _, k := range []string{"k1", "k2", "k3"} {
		ack = send(t, n, "alice", k, "bob", "x")
	}
	ctx := context.Background()
	eventually.True(t, "bob's list to show 3 unread", func() bool {
		list, _ := n.app.Conversations.Handle(ctx, "bob")
		return len(list) == 1 && list[0].Unread == 3 && list[0].Peer == "alice" && list[0].LastSeq == 3
	})
	if err := n.app.MarkReceipts.Handle(ctx, application.MarkReadCommand{Reader: "bob", Conversation: ack.Conversation, UpTo: 2}); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, "alice to get the read receipt", func() bool {
		for _, r := range alice.receiptsSeen() {
			if r.User == "bob" && r.ReadUpTo == 2 {
				return true
			}
		}
		return false
	})
	eventually.True(t, "bob's unread to drop to 1", func() bool {
		list, _ := n.app.Conversations.Handle(ctx, "bob")
		return list[0].Unread == 1 && list[0].ReadUpTo == 2
	})
	page, err := n.app.History.Handle(ctx, application.HistoryQuery{Reader: "alice", Conversation: ack.Conversation})
	if err != nil {
		t.Fatal(err)
	}
	var statuses []string
	for _, m := range page.Messages {
		statuses = append(statuses, m.Status)
	}
	if len(statuses) != 3 || statuses[0] != "read" || statuses[1] != "read" || statuses[2] == "read" {
		t.Fatalf("statuses %v, want read, read, then not read", statuses)
	}
}

// TestOutsidersFindNoConversation: to a non-participant a conversation does
// not exist, with the very answer of an unknown one.
func TestOutsidersFindNoConversation(t *testing.T) {
	n := newNode(t, testConfig(), memory.NewEventStore())
	ack := send(t, n, "alice", "k", "bob", "x")
	ctx := context.Background()
	unknown := conversation.IDFor("x", "y")
	tests := []struct {
		name string
		run  func() error
		kind domain.Kind
	}{
		{"outsider syncs", func() error {
			_, err := n.app.Sync.Handle(ctx, application.SyncQuery{Reader: "carol", Conversation: ack.Conversation})
			return err
		}, domain.NotFound},
		{"outsider pages history", func() error {
			_, err := n.app.History.Handle(ctx, application.HistoryQuery{Reader: "carol", Conversation: ack.Conversation})
			return err
		}, domain.NotFound},
		{"outsider marks read", func() error {
			return n.app.MarkReceipts.Handle(ctx, application.MarkReadCommand{Reader: "carol", Conversation: ack.Conversation, UpTo: 1})
		}, domain.NotFound},
		{"no such conversation", func() error {
			_, err := n.app.History.Handle(ctx, application.HistoryQuery{Reader: "alice", Conversation: unknown})
			return err
		}, domain.NotFound},
		{"no such conversation to sync", func() error {
			_, err := n.app.Sync.Handle(ctx, application.SyncQuery{Reader: "alice", Conversation: unknown})
			return err
		}, domain.NotFound},
		{"no such conversation to mark", func() error {
			return n.app.MarkReceipts.Handle(ctx, application.MarkReadCommand{Reader: "alice", Conversation: unknown, UpTo: 1})
		}, domain.NotFound},
		{"read beyond the last message", func() error {
			return n.app.MarkReceipts.Handle(ctx, application.MarkReadCommand{Reader: "bob", Conversation: ack.Conversation, UpTo: 2})
		}, domain.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if kind := domain.KindOf(err); kind != tt.kind {
				t.Fatalf("kind %s, want %s", kind, tt.kind)
			}
			if tt.kind == domain.NotFound && err.Error() != conversation.ErrNotFound.Error() {
				t.Fatalf("message %q differs from that of an unknown conversation", err)
			}
		})
	}
}

// loadCounter records the ranges read from the store.
type loadCounter struct {
	ports.EventStore
	mu    sync.Mutex
	loads [][2]uint64
}

func (s *loadCounter) Load(ctx context.Context, stream string, from, to uint64) ([]ports.Commit, error) {
	s.mu.Lock()
	s.loads = append(s.loads, [2]uint64{from, to})
	s.mu.Unlock()
	return s.EventStore.Load(ctx, stream, from, to)
}

func (s *loadCounter) take() [][2]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	loads := s.loads
	s.loads = nil
	return loads
}

// TestOutsidersCostTheSameStoreReads: an outsider's request reads the store
// alike whether the conversation exists (long or cached) or not, so its
// cost tells nothing either.
func TestOutsidersCostTheSameStoreReads(t *testing.T) {
	store := &loadCounter{EventStore: memory.NewEventStore()}
	n := newNode(t, testConfig(), store)
	var ack application.Ack
	for i := range 50 {
		ack = send(t, n, "alice", fmt.Sprintf("k%d", i), "bob", "x")
	}
	ctx := context.Background()
	// Projected: nothing else reads the store while the test counts.
	eventually.True(t, "the 50 messages to be projected", func() bool {
		views, err := n.rm.ListFor(ctx, "alice", 1)
		return err == nil && len(views) == 1 && views[0].LastSeq == 50
	})
	unknown := conversation.IDFor("x", "y")
	tests := []struct {
		name   string
		reader user.ID
		conv   conversation.ID
	}{
		{"outsider of a conversation of 50 messages", "carol", ack.Conversation},
		{"the same outsider again", "carol", ack.Conversation},
		{"another outsider", "dave", ack.Conversation},
		{"no such conversation", "carol", unknown},
		{"no such conversation again", "carol", unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store.take()
			_, err := n.app.History.Handle(ctx, application.HistoryQuery{Reader: tt.reader, Conversation: tt.conv})
			if !errors.Is(err, conversation.ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
			if loads := store.take(); !slices.Equal(loads, [][2]uint64{{1, 1}}) {
				t.Fatalf("the store was read %v, want only the first commit", loads)
			}
		})
	}
}

func TestSyncPages(t *testing.T) {
	n := newNode(t, testConfig(), memory.NewEventStore())
	var ack application.Ack
	for i := range 7 {
		ack = send(t, n, "alice", string(rune('a'+i)), "bob", "x")
	}
	tests := []struct {
		after    uint64
		limit    int
		from, to uint64
		more     bool
	}{
		{0, 3, 1, 3, true},
		{3, 3, 4, 6, true},
		{6, 3, 7, 7, false},
		{7, 3, 0, 0, false},
		{0, 0, 1, 7, false},
	}
	for _, tt := range tests {
		page, err := n.app.Sync.Handle(context.Background(), application.SyncQuery{Reader: "bob", Conversation: ack.Conversation, After: tt.after, Limit: tt.limit})
		if err != nil {
			t.Fatal(err)
		}
		assertPage(t, page, tt.from, tt.to, tt.more)
	}
}

func TestHistoryPages(t *testing.T) {
	n := newNode(t, testConfig(), memory.NewEventStore())
	var ack application.Ack
	for i := range 10 {
		ack = send(t, n, "alice", string(rune('a'+i)), "bob", "x")
	}
	tests := []struct {
		name                 string
		after, before, limit uint64
		from, to             uint64
		more                 bool
	}{
		{"latest page", 0, 0, 4, 7, 10, true},
		{"everything", 0, 0, 100, 1, 10, false},
		{"scrolling up", 0, 7, 4, 3, 6, true},
		{"scrolling up to the top", 0, 3, 4, 1, 2, false},
		{"after a seq", 5, 0, 3, 6, 8, true},
		{"after, to the end", 8, 0, 3, 9, 10, false},
		{"between after and before", 4, 9, 10, 5, 8, false},
		{"before the first", 0, 1, 4, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, err := n.app.History.Handle(context.Background(), application.HistoryQuery{
				Reader: "alice", Conversation: ack.Conversation, After: tt.after, Before: tt.before, Limit: int(tt.limit)})
			if err != nil {
				t.Fatal(err)
			}
			assertPage(t, page, tt.from, tt.to, tt.more)
		})
	}
}

func assertPage(t *testing.T, page application.Page, from, to uint64, more bool) {
	t.Helper()
	var want []uint64
	for s := from; s >= 1 && s <= to; s++ {
		want = append(want, s)
	}
	var got []uint64
	for _, m := range page.Messages {
		got = append(got, m.Seq)
	}
	if len(got) != len(want) || page.More != more {
		t.Fatalf("page %v more=%v, want %v more=%v", got, page.More, want, more)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("page %v, want %v", got, want)
		}
	}
}
