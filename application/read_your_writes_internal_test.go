package application

import (
	"context"
	"testing"
	"time"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// The positions map stays small: a position goes once a list finds the
// read model showing it, and, unlisted, once it is older than
// positionMaxAge; a position raised past what the read model shows stays.
func TestPositionsAreForgottenOnceShownOrOld(t *testing.T) {
	conv := conversation.IDFor("alice", "bob")
	other := conversation.IDFor("alice", "carol")
	t0 := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		view  ports.ConversationView // what the read model shows of conv; none if empty
		later time.Duration          // then a position of another conversation is raised this much later
		kept  bool
	}{
		{"the read model shows it", ports.ConversationView{LastSeq: 3, ReceiptsVersion: 1}, 0, false},
		{"the read model lacks the message", ports.ConversationView{LastSeq: 2, ReceiptsVersion: 1}, 0, true},
		{"the read model lacks the marker", ports.ConversationView{LastSeq: 3}, 0, true},
		{"not projected, still young", ports.ConversationView{}, positionMaxAge - time.Second, true},
		{"not projected, too old", ports.ConversationView{}, positionMaxAge, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := NewManualClock(t0)
			positions := newRecentPositions(clock, NewSessions(clock), newGroupMembers(nil))
			positions.raise("alice", conv, position{lastSeq: 3})
			positions.raise("alice", conv, position{receipts: 1})
			if tt.view.LastSeq > 0 {
				tt.view.Conversation, tt.view.Participants = string(conv), [2]user.ID{"alice", "bob"}
				tt.view.Members = []ports.MemberView{{User: "alice"}, {User: "bob"}}
				tt.view.MessagesVersion = tt.view.LastSeq
				rm := memory.NewReadModel()
				if _, err := rm.SaveMany(context.Background(), []ports.ViewSave{{View: tt.view}}); err != nil {
					t.Fatal(err)
				}
				list := &ListConversations{readModel: rm, streams: memory.NewEventStore(), positions: positions}
				if _, err := list.catchUp(context.Background(), "alice", mustList(t, rm)); err != nil {
					t.Fatal(err)
				}
			}
			clock.Set(t0.Add(tt.later))
			positions.raise("alice", other, position{lastSeq: 1})
			if _, kept := positions.of("alice")[conv]; kept != tt.kept {
				t.Errorf("position kept = %v, want %v", kept, tt.kept)
			}
		})
	}
}

func mustList(t *testing.T, rm ports.ReadModel) []ports.ConversationView {
	t.Helper()
	views, err := rm.ListFor(context.Background(), "alice", MaxConversations)
	if err != nil {
		t.Fatal(err)
	}
	return views
}
