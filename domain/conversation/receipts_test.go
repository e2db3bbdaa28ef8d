package conversation_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
)

// conversationWith returns a conversation of alice and bob with n messages.
func conversationWith(t *testing.T, n int) *conversation.Conversation {
	t.Helper()
	c := conversation.New(conversation.IDFor("alice", "bob"))
	for range n {
		if _, err := c.Post("m", "alice", "bob", "x", sentAt); err != nil {
			t.Fatal(err)
		}
		c.Committed()
	}
	return c
}

func TestReceipts(t *testing.T) {
	type mark struct {
		op     string // "delivered" or "read"
		by     user.ID
		upTo   uint64
		err    error
		events []string
	}
	tests := []struct {
		name            string
		marks           []mark
		delivered, read uint64
	}{
		{"delivered then read", []mark{
			{"delivered", "bob", 2, nil, []string{"DeliveredUpTo"}},
			{"read", "bob", 2, nil, []string{"ReadUpTo"}},
		}, 2, 2},
		{"read implies delivered", []mark{
			{"read", "bob", 3, nil, []string{"DeliveredUpTo", "ReadUpTo"}},
		}, 3, 3},
		{"a repeated or older mark records nothing", []mark{
			{"read", "bob", 3, nil, []string{"DeliveredUpTo", "ReadUpTo"}},
			{"read", "bob", 3, nil, nil},
			{"read", "bob", 1, nil, nil},
			{"delivered", "bob", 2, nil, nil},
		}, 3, 3},
		{"no mark beyond the last message", []mark{
			{"read", "bob", 4, conversation.ErrBeyondLastMessage, nil},
		}, 0, 0},
		{"to an outsider the conversation does not exist", []mark{
			{"read", "carol", 1, conversation.ErrNotFound, nil},
			{"delivered", "carol", 1, conversation.ErrNotFound, nil},
		}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conv := conversationWith(t, 3)
			r := conversation.NewReceipts(conv.ID())
			for i, m := range tt.marks {
				before := len(r.Uncommitted())
				mark := r.MarkDelivered
				if m.op == "read" {
					mark = r.MarkRead
				}
				if err := mark(conv, m.by, m.upTo); !errors.Is(err, m.err) {
					t.Fatalf("mark %d: err = %v, want %v", i, err, m.err)
				}
				var types []string
				for _, e := range r.Uncommitted()[before:] {
					types = append(types, e.EventType())
				}
				if !reflect.DeepEqual(types, m.events) {
					t.Fatalf("mark %d recorded %v, want %v", i, types, m.events)
				}
			}
			if r.DeliveredUpTo("bob") != tt.delivered || r.ReadUpTo("bob") != tt.read {
				t.Fatalf("bob's markers %d/%d, want %d/%d", r.DeliveredUpTo("bob"), r.ReadUpTo("bob"), tt.delivered, tt.read)
			}
		})
	}
}

func TestReceiptsOfAConversationNotStarted(t *testing.T) {
	conv := conversation.New(conversation.IDFor("alice", "bob"))
	r := conversation.NewReceipts(conv.ID())
	if err := r.MarkRead(conv, "bob", 0); !errors.Is(err, conversation.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

func TestReceiptsReplayAndClone(t *testing.T) {
	conv := conversationWith(t, 5)
	live := conversation.NewReceipts(conv.ID())
	if err := live.MarkRead(conv, "bob", 4); err != nil {
		t.Fatal(err)
	}
	clone := live.Clone()
	if err := clone.MarkRead(conv, "bob", 5); err != nil {
		t.Fatal(err)
	}
	if live.ReadUpTo("bob") != 4 {
		t.Fatalf("clone's mark moved the original to %d", live.ReadUpTo("bob"))
	}
	replayed := conversation.NewReceipts(conv.ID())
	replayed.Replay(live.Uncommitted())
	if replayed.ReadUpTo("bob") != 4 || replayed.DeliveredUpTo("bob") != 4 || replayed.Version() != 1 {
		t.Fatalf("replayed markers %d/%d v%d", replayed.DeliveredUpTo("bob"), replayed.ReadUpTo("bob"), replayed.Version())
	}
}

func TestMarkWritten(t *testing.T) {
	type rng = conversation.SeqRange
	tests := []struct {
		name      string
		delivered uint64 // bob's marker before
		written   []rng
		want      uint64
	}{
		{"a run from the first message", 0, []rng{{1, 3}}, 3},
		{"a run that continues the marker", 2, []rng{{3, 5}}, 5},
		{"a run overlapping the marker", 3, []rng{{2, 6}}, 6},
		{"a run after a gap moves nothing", 0, []rng{{4, 6}}, 0},
		{"a run after a gap, past the marker, moves nothing", 2, []rng{{5, 6}}, 2},
		{"the gap written later closes it, in any order", 0, []rng{{4, 6}, {1, 3}}, 6},
		{"runs up to a gap count, the rest waits", 0, []rng{{1, 2}, {5, 6}}, 2},
		{"a run within the marker moves nothing", 5, []rng{{1, 4}}, 5},
		{"nothing written", 2, nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conv := conversationWith(t, 6)
			r := conversation.NewReceipts(conv.ID())
			if tt.delivered > 0 {
				if err := r.MarkDelivered(conv, "bob", tt.delivered); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.MarkWritten(conv, "bob", tt.written); err != nil {
				t.Fatal(err)
			}
			if got := r.DeliveredUpTo("bob"); got != tt.want {
				t.Fatalf("delivered up to %d, want %d", got, tt.want)
			}
		})
	}
	t.Run("an outsider's writes count for nothing", func(t *testing.T) {
		conv := conversationWith(t, 2)
		r := conversation.NewReceipts(conv.ID())
		if err := r.MarkWritten(conv, "carol", []rng{{1, 2}}); !errors.Is(err, conversation.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
}

func TestMarkMessage(t *testing.T) {
	conv := conversation.IDFor("alice", "bob")
	delivered := func(u user.ID, seq uint64) conversation.Event {
		return conversation.DeliveredUpTo{Conversation: conv, User: u, Seq: seq}
	}
	read := func(u user.ID, seq uint64) conversation.Event {
		return conversation.ReadUpTo{Conversation: conv, User: u, Seq: seq}
	}
	tests := []struct {
		name     string
		markers  []conversation.Event
		from, to user.ID // of message 5
		moved    bool
		err      error
		want     message.Status
	}{
		{"markers behind", []conversation.Event{delivered("bob", 4), read("bob", 3)}, "alice", "bob", false, nil, message.StatusSent},
		{"delivered reaches it", []conversation.Event{delivered("bob", 5)}, "alice", "bob", true, nil, message.StatusDelivered},
		{"read reaches it", []conversation.Event{delivered("bob", 5), read("bob", 5)}, "alice", "bob", true, nil, message.StatusRead},
		{"read without delivered still reads", []conversation.Event{read("bob", 9)}, "alice", "bob", true, nil, message.StatusRead},
		{"the sender's markers move nothing", []conversation.Event{delivered("alice", 9), read("alice", 9)}, "alice", "bob", false, nil, message.StatusSent},
		{"each participant's markers move what they received", []conversation.Event{read("alice", 9)}, "bob", "alice", true, nil, message.StatusRead},
		{"a message of another pair", []conversation.Event{read("carol", 9)}, "alice", "carol", false, conversation.ErrNotParticipant, message.StatusSent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := conversation.NewReceipts(conv)
			r.Replay(tt.markers)
			msg := message.Posted("m_5", 5, tt.from, tt.to, "hi", sentAt)
			moved, err := r.MarkMessage(msg)
			if moved != tt.moved || !errors.Is(err, tt.err) || msg.Status() != tt.want {
				t.Fatalf("moved=%v err=%v status=%s; want %v %v %s", moved, err, msg.Status(), tt.moved, tt.err, tt.want)
			}
			if again, err := r.MarkMessage(msg); again || msg.Status() != tt.want {
				t.Fatalf("repeated: moved=%v err=%v status=%s; want no move from %s", again, err, msg.Status(), tt.want)
			}
		})
	}
}

func TestGroupStatus(t *testing.T) {
	members := []user.ID{"alice", "bob", "carol"}
	tests := []struct {
		name            string
		delivered, read map[user.ID]uint64
		want            message.Status
	}{
		{"no one else has it", nil, nil, message.StatusSent},
		{"one of the others has it", map[user.ID]uint64{"bob": 2}, nil, message.StatusSent},
		{"every other member has it", map[user.ID]uint64{"bob": 2, "carol": 5}, nil, message.StatusDelivered},
		{"one read it, the other has it", map[user.ID]uint64{"carol": 2}, map[user.ID]uint64{"bob": 2}, message.StatusDelivered},
		{"every other member read it", nil, map[user.ID]uint64{"bob": 3, "carol": 2}, message.StatusRead},
		{"the author's own markers do not count", map[user.ID]uint64{"alice": 2}, map[user.ID]uint64{"alice": 2, "bob": 2}, message.StatusSent},
		{"markers short of it do not count", map[user.ID]uint64{"bob": 1, "carol": 1}, map[user.ID]uint64{"bob": 1, "carol": 1}, message.StatusSent},
	}
	id := conversation.NewGroupID([16]byte{9})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var events []conversation.Event
			for u, seq := range tt.delivered {
				events = append(events, conversation.DeliveredUpTo{Conversation: id, User: u, Seq: seq})
			}
			for u, seq := range tt.read {
				events = append(events, conversation.ReadUpTo{Conversation: id, User: u, Seq: seq})
			}
			r := conversation.NewReceipts(id)
			r.Replay(events)
			m := message.Posted("m", 2, "alice", "", "hi", sentAt)
			if got := r.GroupStatus(m, members); got != tt.want {
				t.Fatalf("status = %s, want %s", got, tt.want)
			}
		})
	}
}
