package conversation_test

import (
	"encoding/json"
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

const editWindow = 15 * time.Minute

// groupWithMessages returns a group of alice, bob and carol where alice
// posted seq 1 and bob seq 2, with the commits of both streams so far.
func groupWithMessages(t *testing.T) (*conversation.Conversation, []conversation.MessagePosted) {
	t.Helper()
	c := groupOf(t, "alice", "bob", "carol")
	var posts []conversation.MessagePosted
	for _, from := range []user.ID{"alice", "bob"} {
		p, err := c.PostAsMember(message.ID("m_"+from), from, "hi from "+message.Body(from), sentAt)
		if err != nil {
			t.Fatal(err)
		}
		c.Committed()
		posts = append(posts, p)
	}
	return c, posts
}

func TestEditAndRecallInAConversation(t *testing.T) {
	type step struct {
		op    string // "edit", "recall" or "leave"
		by    user.ID
		seq   uint64 // 0: no message at the seq asked
		after time.Duration
		err   error
		rev   uint64 // the conversation's rev after the step
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"the author edits, rev 1", []step{{"edit", "alice", 1, time.Minute, nil, 1}}},
		{"edits and recalls count one rev each", []step{
			{"edit", "alice", 1, time.Minute, nil, 1},
			{"edit", "bob", 2, time.Minute, nil, 2},
			{"recall", "alice", 1, 2 * time.Minute, nil, 3},
		}},
		{"another member is forbidden", []step{{"edit", "bob", 1, time.Minute, message.ErrNotAuthor, 0}}},
		{"a non-member finds no conversation", []step{{"recall", "dave", 1, time.Minute, conversation.ErrNotFound, 0}}},
		{"past the window is forbidden", []step{{"edit", "alice", 1, editWindow + time.Second, message.ErrEditWindowClosed, 0}}},
		{"an unknown seq is not found", []step{{"edit", "alice", 0, time.Minute, conversation.ErrUnknownMessage, 0}}},
		{"a seq beyond the last is not found", []step{{"recall", "alice", 3, time.Minute, conversation.ErrUnknownMessage, 0}}},
		{"a recalled message is forbidden to its author", []step{
			{"recall", "alice", 1, time.Minute, nil, 1},
			{"edit", "alice", 1, time.Minute, message.ErrRecalled, 1},
		}},
		{"a recalled message is forbidden to others", []step{
			{"recall", "alice", 1, time.Minute, nil, 1},
			{"recall", "bob", 1, time.Minute, message.ErrRecalled, 1},
		}},
		{"an author who left finds no conversation", []step{
			{"leave", "bob", 0, 0, nil, 0},
			{"edit", "bob", 2, time.Minute, conversation.ErrNotFound, 0},
		}},
		{"membership changes take no rev", []step{
			{"edit", "alice", 1, time.Minute, nil, 1},
			{"leave", "carol", 0, 0, nil, 1},
			{"recall", "bob", 2, time.Minute, nil, 2},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, posts := groupWithMessages(t)
			for i, s := range tt.steps {
				var p *conversation.MessagePosted
				switch {
				case s.seq >= 1 && s.seq <= 2:
					p = &posts[s.seq-1]
				case s.seq > 2:
					p = &conversation.MessagePosted{Conversation: c.ID(), Seq: s.seq}
				}
				at := sentAt.Add(s.after)
				var err error
				var rev uint64
				switch s.op {
				case "edit":
					var e conversation.MessageEdited
					e, err = c.Edit(p, s.by, "new", at, editWindow)
					rev = e.Rev
				case "recall":
					var e conversation.MessageRecalled
					e, err = c.Recall(p, s.by, at, editWindow)
					rev = e.Rev
				case "leave":
					err = c.ChangeMembers(s.by, nil, []user.ID{s.by}, at, maxMembers)
				}
				if !errors.Is(err, s.err) {
					t.Fatalf("step %d %s by %s: err = %v, want %v", i, s.op, s.by, err, s.err)
				}
				if err != nil && len(c.UncommittedChanges()) != 0 {
					t.Fatalf("step %d: a refused change recorded %v", i, changeTypes(c))
				}
				if err == nil && s.op != "leave" && rev != s.rev {
					t.Fatalf("step %d: event rev %d, want %d", i, rev, s.rev)
				}
				if c.Rev() != s.rev {
					t.Fatalf("step %d: rev %d, want %d", i, c.Rev(), s.rev)
				}
				c.ChangesCommitted()
			}
		})
	}
}

func TestMessageShowsItsCurrentState(t *testing.T) {
	c, posts := groupWithMessages(t)
	if _, err := c.Edit(&posts[0], "alice", "edited", sentAt.Add(time.Minute), editWindow); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Recall(&posts[1], "bob", sentAt.Add(2*time.Minute), editWindow); err != nil {
		t.Fatal(err)
	}
	edited, recalled := c.Message(posts[0]), c.Message(posts[1])
	if edited.Body != "edited" || !edited.EditedAt().Equal(sentAt.Add(time.Minute).Truncate(time.Millisecond)) || edited.Recalled() {
		t.Fatalf("edited message: body %q at %v recalled %v", edited.Body, edited.EditedAt(), edited.Recalled())
	}
	if recalled.Body != "" || !recalled.Recalled() {
		t.Fatalf("recalled message: body %q recalled %v", recalled.Body, recalled.Recalled())
	}
	untouched := conversationWith(t, 1)
	if m := untouched.Message(conversation.MessagePosted{Conversation: untouched.ID(), Seq: 1, From: "alice", To: "bob", Body: "x", SentAt: sentAt}); m.Body != "x" || !m.EditedAt().IsZero() || m.Recalled() {
		t.Fatalf("a message never changed: %+v", m)
	}
}

func TestEditInADirectConversation(t *testing.T) {
	c := conversation.New(conversation.IDFor("alice", "bob"))
	p, err := c.Post("m_1", "alice", "bob", "hi", sentAt)
	if err != nil {
		t.Fatal(err)
	}
	c.Committed()
	if _, err := c.Edit(&p, "bob", "mine now", sentAt, editWindow); !errors.Is(err, message.ErrNotAuthor) {
		t.Fatalf("the recipient's edit: err = %v, want ErrNotAuthor", err)
	}
	e, err := c.Edit(&p, "alice", "hello", sentAt.Add(time.Minute), editWindow)
	if err != nil || e.Rev != 1 || c.Message(p).Body != "hello" {
		t.Fatalf("the author's edit: %+v, %v", e, err)
	}
	if !reflect.DeepEqual(changeTypes(c), []string{"MessageEdited"}) || len(c.Uncommitted()) != 0 || c.LastSeq() != 1 {
		t.Fatalf("an edit recorded %v on changes, %d on messages, seq %d", changeTypes(c), len(c.Uncommitted()), c.LastSeq())
	}
	other := conversation.New(conversation.IDFor("alice", "carol"))
	if _, err := other.Post("m_2", "alice", "carol", "hi", sentAt); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Edit(&p, "alice", "x", sentAt, editWindow); !errors.Is(err, conversation.ErrUnknownMessage) {
		t.Fatalf("a message of another conversation: err = %v, want ErrUnknownMessage", err)
	}
}

// TestReplayRebuildsGroupsAndRev records a group's life across both streams,
// replays the commits into a new aggregate and expects the same state, the
// revs 1..n in order with none for membership, and the next rev after n.
func TestReplayRebuildsGroupsAndRev(t *testing.T) {
	live, posts := groupWithMessages(t)
	messageCommits := [][]conversation.Event{}
	for _, p := range posts {
		messageCommits = append(messageCommits, []conversation.Event{p})
	}
	changeCommits := [][]conversation.Event{{conversation.GroupCreated{
		Conversation: groupID, Title: "team", Owner: "alice", Members: []user.ID{"alice", "bob", "carol"}, At: sentAt.Truncate(time.Millisecond),
	}}}
	commitChange := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		changeCommits = append(changeCommits, live.UncommittedChanges())
		live.ChangesCommitted()
	}
	at := sentAt.Add(time.Minute)
	_, err := live.Edit(&posts[0], "alice", "edited", at, editWindow)
	commitChange(err)
	commitChange(live.Rename("carol", "renamed", at))
	_, err = live.Recall(&posts[1], "bob", at, editWindow)
	commitChange(err)
	_, err = live.Edit(&posts[0], "alice", "again", at, editWindow)
	commitChange(err)
	commitChange(live.ChangeMembers("alice", []user.ID{"dave"}, []user.ID{"alice"}, at, maxMembers))
	byDave, err := live.PostAsMember("m_dave", "dave", "hi", at)
	if err != nil {
		t.Fatal(err)
	}
	live.Committed()
	posts = append(posts, byDave)
	messageCommits = append(messageCommits, []conversation.Event{byDave})

	var revs []uint64
	for _, commit := range changeCommits {
		for _, e := range commit {
			switch e := e.(type) {
			case conversation.MessageEdited:
				revs = append(revs, e.Rev)
			case conversation.MessageRecalled:
				revs = append(revs, e.Rev)
			}
		}
	}
	if !reflect.DeepEqual(revs, []uint64{1, 2, 3}) {
		t.Fatalf("revs %v, want 1, 2, 3: gapless and counting edits and recalls only", revs)
	}

	// The streams are independent: replay them in either interleaving.
	replayed := conversation.New(groupID)
	for _, commit := range changeCommits {
		replayed.ReplayChanges(commit)
	}
	for _, commit := range messageCommits {
		replayed.Replay(commit)
	}
	if replayed.Rev() != 3 || replayed.ChangesVersion() != live.ChangesVersion() || replayed.Version() != 3 || replayed.LastSeq() != 3 {
		t.Fatalf("replayed rev %d changes v%d messages v%d seq %d; live rev %d changes v%d",
			replayed.Rev(), replayed.ChangesVersion(), replayed.Version(), replayed.LastSeq(), live.Rev(), live.ChangesVersion())
	}
	if !reflect.DeepEqual(replayed.Members(), []user.ID{"bob", "carol", "dave"}) || replayed.Owner() != "bob" || replayed.Title() != "renamed" {
		t.Fatalf("replayed members %v owner %q title %q", replayed.Members(), replayed.Owner(), replayed.Title())
	}
	for _, p := range posts {
		if got, want := replayed.Message(p), live.Message(p); !reflect.DeepEqual(got, want) {
			t.Fatalf("message %d replayed as %+v, live %+v", p.Seq, got, want)
		}
	}
	if _, err := replayed.Edit(&posts[0], "alice", "x", at, editWindow); !errors.Is(err, conversation.ErrNotFound) {
		t.Fatalf("the owner who left edits after replay: err = %v", err)
	}
	e, err := replayed.Edit(&byDave, "dave", "after replay", at, editWindow)
	if err != nil || e.Rev != 4 {
		t.Fatalf("first edit after replay: rev %d, %v; want 4", e.Rev, err)
	}
	if _, err := replayed.Edit(&posts[1], "bob", "x", at, editWindow); !errors.Is(err, message.ErrRecalled) {
		t.Fatalf("a recall replayed still refuses edits: err = %v", err)
	}
}

// TestConcurrentChangesClaimTheSameVersion shows why rev needs nothing but
// the store: two changes made from the same state carry the same rev and
// the same next version of the changes stream, so the store's unique
// (stream, version) admits one and the other is retried from the new state.
func TestConcurrentChangesClaimTheSameVersion(t *testing.T) {
	c, posts := groupWithMessages(t)
	first, second := c.Clone(), c.Clone()
	a, err := first.Edit(&posts[0], "alice", "one", sentAt, editWindow)
	if err != nil {
		t.Fatal(err)
	}
	if err := second.ChangeMembers("carol", nil, []user.ID{"carol"}, sentAt, maxMembers); err != nil {
		t.Fatal(err)
	}
	if first.ChangesVersion() != second.ChangesVersion() {
		t.Fatalf("clones at changes versions %d and %d", first.ChangesVersion(), second.ChangesVersion())
	}
	// The loser reloads the winner's commit and tries again.
	retry := c.Clone()
	retry.ReplayChanges(first.UncommittedChanges())
	b, err := retry.Edit(&posts[1], "bob", "two", sentAt, editWindow)
	if err != nil || a.Rev != 1 || b.Rev != 2 {
		t.Fatalf("revs %d then %d (%v), want 1 then 2", a.Rev, b.Rev, err)
	}
	if c.Rev() != 0 || c.Message(posts[0]).Body != posts[0].Body || len(c.Members()) != 3 {
		t.Fatalf("the original changed through its clones: rev %d, members %v", c.Rev(), c.Members())
	}
}

// TestDirectConversationsReplayAsBefore replays a v1.2 stream, as stored,
// and expects nothing new to appear: a direct conversation with its pair,
// no title, no owner, no changes, and the stored message encoding intact.
func TestDirectConversationsReplayAsBefore(t *testing.T) {
	stored := []struct{ typ, data string }{
		{"ConversationStarted", `{"conversation":"c_x","participants":["alice","bob"]}`},
		{"MessagePosted", `{"conversation":"c_x","seq":1,"messageId":"m_1","from":"alice","to":"bob","body":"hi","sentAt":"2026-11-27T08:00:00.123Z"}`},
	}
	var events []conversation.Event
	for _, s := range stored {
		e, err := conversation.UnmarshalEvent(s.typ, []byte(s.data))
		if err != nil {
			t.Fatal(err)
		}
		again, err := conversation.MarshalEvent(e)
		if err != nil || string(again) != s.data {
			t.Fatalf("%s re-encodes as %s (%v), stored as %s", s.typ, again, err, s.data)
		}
		events = append(events, e)
	}
	c := conversation.New("c_x")
	c.Replay(events)
	if c.Kind() != conversation.Direct || !reflect.DeepEqual(c.Members(), []user.ID{"alice", "bob"}) || c.Peer("alice") != "bob" ||
		c.Title() != "" || c.Owner() != "" || c.Rev() != 0 || c.ChangesVersion() != 0 || c.Version() != 1 || c.LastSeq() != 1 {
		t.Fatalf("replayed v1.2 conversation: %+v", c)
	}
	if err := c.ChangeMembers("alice", []user.ID{"carol"}, nil, sentAt, maxMembers); !errors.Is(err, conversation.ErrNotFound) {
		t.Fatalf("membership of a direct conversation: err = %v, want ErrNotFound", err)
	}
}

func TestGroupMessageHasNoRecipient(t *testing.T) {
	c, posts := groupWithMessages(t)
	data, err := conversation.MarshalEvent(posts[0])
	if err != nil || strings.Contains(string(data), `"to"`) {
		t.Fatalf("a group message encodes a recipient: %s (%v)", data, err)
	}
	if c.Message(posts[0]).To != "" {
		t.Fatal("a group message has a recipient")
	}
}

func TestNewEventsRoundTrip(t *testing.T) {
	at := sentAt.Truncate(time.Millisecond)
	events := []conversation.Event{
		conversation.GroupCreated{Conversation: groupID, Title: "team", Owner: "a", Members: []user.ID{"a", "b"}, At: at},
		conversation.GroupRenamed{Conversation: groupID, Title: "new", By: "b", At: at},
		conversation.MemberAdded{Conversation: groupID, User: "c", By: "a", At: at},
		conversation.MemberRemoved{Conversation: groupID, User: "a", By: "a", At: at},
		conversation.OwnerChanged{Conversation: groupID, Owner: "b", At: at},
		conversation.MessageEdited{Conversation: groupID, Seq: 3, Rev: 1, Body: "new", EditedAt: at},
		conversation.MessageRecalled{Conversation: groupID, Seq: 3, Rev: 2, RecalledAt: at},
		conversation.MessagePosted{Conversation: groupID, Seq: 4, MessageID: "m_4", From: "b", Body: "hi", SentAt: at},
	}
	for _, e := range events {
		t.Run(e.EventType(), func(t *testing.T) {
			data, err := conversation.MarshalEvent(e)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(data) {
				t.Fatalf("invalid JSON %s", data)
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
}

func TestChangeErrorsKeepTheirKinds(t *testing.T) {
	tests := []struct {
		err  error
		kind domain.Kind
	}{
		{conversation.ErrNotOwner, domain.Forbidden},
		{conversation.ErrTooManyMembers, domain.Invalid},
		{conversation.ErrUnknownMessage, domain.NotFound},
		{message.ErrNotAuthor, domain.Forbidden},
		{message.ErrEditWindowClosed, domain.Forbidden},
		{message.ErrRecalled, domain.Forbidden},
	}
	for _, tt := range tests {
		if got := domain.KindOf(tt.err); got != tt.kind {
			t.Errorf("%v: kind %v, want %v (PROTOCOL's code for it)", tt.err, got, tt.kind)
		}
	}
}
