package application

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// appendingPublisher settles every transaction by appending to the store at
// once, as a bus whose local transaction always runs would, or leaves it
// unknown while the bus is down.
type appendingPublisher struct {
	store ports.EventStore
	down  bool
}

func (p *appendingPublisher) Publish(ctx context.Context, c ports.Commit) (ports.TxState, error) {
	if p.down {
		return ports.TxUnknown, ports.ErrUnavailable
	}
	if err := p.store.Append(ctx, c); err != nil {
		return ports.TxRollback, err
	}
	return ports.TxCommit, nil
}

func (*appendingPublisher) Republish(context.Context, ports.Commit) error { return nil }
func (*appendingPublisher) Ping(context.Context) error                    { return nil }

func newTestRepository(t *testing.T) (*conversationRepository, ports.EventStore, *appendingPublisher) {
	t.Helper()
	store := memory.NewEventStore()
	pub := &appendingPublisher{store: store}
	return newConversationRepository(store, pub, newRepublisher(pub, NewManualClock(time.Now()), 0, slog.Default())), store, pub
}

// firstMessage is the commit that starts the conversation of from and to.
func firstMessage(t *testing.T, from, to user.ID) ports.Commit {
	t.Helper()
	id := conversation.IDFor(from, to)
	c := conversation.New(id)
	posted, err := c.Post("m_1", from, to, "hi", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ports.Commit{ID: string(posted.MessageID), Stream: conversation.MessagesStream(id), Version: 1,
		Events: c.Uncommitted(), CommittedAt: posted.SentAt}
}

func TestWithConversationReleasesTheLockWhateverFnDoes(t *testing.T) {
	tests := []struct {
		name string
		fn   func(*heldConversation) error
	}{
		{"fn succeeds", func(*heldConversation) error { return nil }},
		{"fn fails", func(*heldConversation) error { return errors.New("refused") }},
		{"fn panics", func(*heldConversation) error { panic("boom") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo, _, _ := newTestRepository(t)
			id := conversation.IDFor("alice", "bob")
			func() {
				defer func() { _ = recover() }()
				_ = repo.withConversation(id, tt.fn)
			}()
			e := repo.cache.entries[id]
			if !e.mu.TryLock() {
				t.Fatal("the conversation is still locked after withConversation returned")
			}
			e.mu.Unlock()
		})
	}
}

func TestSaveHoldsOnlyWhatWasPublished(t *testing.T) {
	tests := []struct {
		name        string
		busDown     bool
		err         error
		wantVersion uint64
	}{
		{"published", false, nil, 1},
		{"not settled", true, ports.ErrUnavailable, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo, _, pub := newTestRepository(t)
			pub.down = tt.busDown
			commit := firstMessage(t, "alice", "bob")
			id := conversation.IDFor("alice", "bob")
			err := repo.withConversation(id, func(h *heldConversation) error {
				next := h.conversation().Clone()
				if _, err := next.Post(message.ID(commit.ID), "alice", "bob", "hi", commit.CommittedAt); err != nil {
					return err
				}
				return h.saveMessages(context.Background(), next, commit)
			})
			if !errors.Is(err, tt.err) {
				t.Fatalf("save: %v, want %v", err, tt.err)
			}
			_ = repo.withConversation(id, func(h *heldConversation) error {
				if v := h.conversation().Version(); v != tt.wantVersion {
					t.Errorf("held version %d, want %d", v, tt.wantVersion)
				}
				return nil
			})
		})
	}
}

func TestWithReadableLoadsOnlyForAParticipant(t *testing.T) {
	tests := []struct {
		name    string
		reader  user.ID
		conv    conversation.ID
		err     error
		lastSeq uint64
	}{
		{"a participant, stored by another node", "bob", conversation.IDFor("alice", "bob"), nil, 1},
		{"a stranger", "carol", conversation.IDFor("alice", "bob"), conversation.ErrNotFound, 0},
		{"a conversation never started", "alice", conversation.IDFor("alice", "dave"), conversation.ErrNotFound, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo, store, _ := newTestRepository(t)
			if err := store.Append(context.Background(), firstMessage(t, "alice", "bob")); err != nil {
				t.Fatal(err)
			}
			ran := false
			err := repo.withReadable(context.Background(), tt.conv, tt.reader, func(h *heldConversation) error {
				ran = true
				if got := h.conversation().LastSeq(); got != tt.lastSeq {
					t.Errorf("held last seq %d, want %d", got, tt.lastSeq)
				}
				return nil
			})
			if !errors.Is(err, tt.err) || ran != (tt.err == nil) {
				t.Fatalf("err = %v, fn ran = %v; want %v", err, ran, tt.err)
			}
		})
	}
}
