package conversation_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/evchat/chatd/domain"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
)

var sentAt = time.Date(2026, 11, 27, 8, 0, 0, 123_456_789, time.UTC)

func TestIDFor(t *testing.T) {
	ab := conversation.IDFor("alice", "bob")
	tests := []struct {
		name  string
		other conversation.ID
		same  bool
	}{
		{"either order", conversation.IDFor("bob", "alice"), true},
		{"another pair", conversation.IDFor("alice", "carol"), false},
		{"no ambiguity at the separator", conversation.IDFor("alic", "ebob"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (ab == tt.other) != tt.same {
				t.Fatalf("%s vs %s: equal=%v want %v", ab, tt.other, ab == tt.other, tt.same)
			}
		})
	}
	if _, err := conversation.ParseID(string(ab)); err != nil {
		t.Fatalf("derived id %q does not parse: %v", ab, err)
	}
	if strings.ContainsAny(string(ab), "/+=?&#") {
		t.Fatalf("id %q is not URL-safe", ab)
	}
}

func TestParseID(t *testing.T) {
	valid := string(conversation.IDFor("a", "b"))
	tests := []struct {
		in string
		ok bool
	}{
		{valid, true},
		{"", false},
		{valid[:len(valid)-1], false},
		{"x" + valid[1:], false},
		{valid[:len(valid)-1] + "!", false},
		{valid + ".receipts", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := conversation.ParseID(tt.in)
			if tt.ok != (err == nil) {
				t.Fatalf("ParseID(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if err != nil && !errors.Is(err, conversation.ErrInvalidID) {
				t.Fatalf("err = %v, want ErrInvalidID", err)
			}
		})
	}
}

func TestPost(t *testing.T) {
	ab := conversation.IDFor("alice", "bob")
	type post struct {
		from, to user.ID
		seq      uint64
		err      error
		events   []string
	}
	tests := []struct {
		name  string
		posts []post
	}{
		{"first post starts the conversation in the same commit", []post{
			{"alice", "bob", 1, nil, []string{"ConversationStarted", "MessagePosted"}},
		}},
		{"seq grows by one whoever sends", []post{
			{"alice", "bob", 1, nil, []string{"ConversationStarted", "MessagePosted"}},
			{"bob", "alice", 2, nil, []string{"MessagePosted"}},
			{"alice", "bob", 3, nil, []string{"MessagePosted"}},
		}},
		{"no message to oneself", []post{{"alice", "alice", 0, conversation.ErrSelf, nil}}},
		{"an outsider cannot post", []post{
			{"alice", "bob", 1, nil, []string{"ConversationStarted", "MessagePosted"}},
			{"carol", "bob", 0, conversation.ErrNotParticipant, nil},
		}},
		{"a rejected post leaves the seq alone", []post{
			{"alice", "carol", 0, conversation.ErrNotParticipant, nil},
			{"alice", "bob", 1, nil, []string{"ConversationStarted", "MessagePosted"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := conversation.New(ab)
			for i, p := range tt.posts {
				posted, err := c.Post(message.ID("m"), p.from, p.to, "hi", sentAt)
				if !errors.Is(err, p.err) {
					t.Fatalf("post %d: err = %v, want %v", i, err, p.err)
				}
				var types []string
				for _, e := range c.Uncommitted() {
					types = append(types, e.EventType())
				}
				if !reflect.DeepEqual(types, p.events) {
					t.Fatalf("post %d: recorded %v, want %v", i, types, p.events)
				}
				if err != nil {
					continue
				}
				if posted.Seq != p.seq || c.LastSeq() != p.seq {
					t.Fatalf("post %d: seq %d, last %d, want %d", i, posted.Seq, c.LastSeq(), p.seq)
				}
				if !posted.SentAt.Equal(sentAt.Truncate(time.Millisecond)) {
					t.Fatalf("sentAt %v is not the millisecond the stores keep", posted.SentAt)
				}
				c.Committed()
				if c.Version() != p.seq {
					t.Fatalf("version %d != seq %d", c.Version(), p.seq)
				}
			}
		})
	}
}

func TestReplayRebuildsTheAggregate(t *testing.T) {
	id := conversation.IDFor("alice", "bob")
	live := conversation.New(id)
	var commits [][]conversation.Event
	for i, from := range []user.ID{"alice", "bob", "alice"} {
		to := user.ID("bob")
		if from == "bob" {
			to = "alice"
		}
		if _, err := live.Post(message.ID(rune('a'+i)), from, to, "x", sentAt); err != nil {
			t.Fatal(err)
		}
		commits = append(commits, live.Uncommitted())
		live.Committed()
	}
	replayed := conversation.New(id)
	for _, events := range commits {
		replayed.Replay(events)
	}
	if replayed.LastSeq() != 3 || replayed.Version() != 3 || replayed.Participants() != live.Participants() ||
		!replayed.IsParticipant("alice") || replayed.IsParticipant("carol") || replayed.Peer("alice") != "bob" {
		t.Fatalf("replayed %+v, live %+v", replayed, live)
	}
}

func TestCloneIsIndependent(t *testing.T) {
	c := conversation.New(conversation.IDFor("alice", "bob"))
	next := c.Clone()
	if _, err := next.Post("m", "alice", "bob", "x", sentAt); err != nil {
		t.Fatal(err)
	}
	if c.Started() || c.LastSeq() != 0 || len(c.Uncommitted()) != 0 {
		t.Fatalf("original changed by a command on its clone: %+v", c)
	}
}

func TestCanRead(t *testing.T) {
	started := conversation.New(conversation.IDFor("alice", "bob"))
	if _, err := started.Post("m", "alice", "bob", "x", sentAt); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		conv   *conversation.Conversation
		reader user.ID
		err    error
	}{
		{"participant", started, "bob", nil},
		{"other participant", started, "alice", nil},
		{"outsider of a started conversation", started, "carol", conversation.ErrNotFound},
		{"no message yet", conversation.New(conversation.IDFor("alice", "dave")), "alice", conversation.ErrNotFound},
		{"outsider of a conversation not started", conversation.New(conversation.IDFor("alice", "dave")), "carol", conversation.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.conv.CanRead(tt.reader)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			// The same kind and text for every refusal: an outsider must not
			// learn from the answer whether the pair ever talked.
			if err != nil && (domain.KindOf(err) != domain.NotFound || err.Error() != "no such conversation") {
				t.Fatalf("err = %v of kind %v, want not found with the text of an unknown conversation", err, domain.KindOf(err))
			}
		})
	}
}

func TestEventCodecRoundTrip(t *testing.T) {
	events := []conversation.Event{
		conversation.ConversationStarted{Conversation: "c_x", Participants: [2]user.ID{"a", "b"}},
		conversation.MessagePosted{Conversation: "c_x", Seq: 7, MessageID: "m_1", From: "a", To: "b", Body: "hi", SentAt: sentAt},
		conversation.DeliveredUpTo{Conversation: "c_x", User: "b", Seq: 7},
		conversation.ReadUpTo{Conversation: "c_x", User: "b", Seq: 6},
	}
	for _, e := range events {
		t.Run(e.EventType(), func(t *testing.T) {
			data, err := conversation.MarshalEvent(e)
			if err != nil {
				t.Fatal(err)
			}
			back, err := conversation.UnmarshalEvent(e.EventType(), data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, e) {
				t.Fatalf("round trip: %+v, want %+v", back, e)
			}
		})
	}
	if _, err := conversation.UnmarshalEvent("Nope", []byte("{}")); err == nil {
		t.Fatal("unknown event type decoded")
	}
}
