package conversation_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evchat/chatd/domain"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
)

const maxMembers = 256

var groupID = conversation.NewGroupID([16]byte{1, 2, 3})

// groupOf returns a committed group of owner and members, in that order.
func groupOf(t *testing.T, owner user.ID, members ...user.ID) *conversation.Conversation {
	t.Helper()
	c := conversation.New(groupID)
	if err := c.CreateGroup(owner, "team", members, sentAt, maxMembers); err != nil {
		t.Fatal(err)
	}
	c.ChangesCommitted()
	return c
}

// changeTypes returns the types of the uncommitted changes-stream events.
func changeTypes(c *conversation.Conversation) []string {
	var types []string
	for _, e := range c.UncommittedChanges() {
		types = append(types, e.EventType())
	}
	return types
}

func TestGroupIDs(t *testing.T) {
	direct := conversation.IDFor("alice", "bob")
	if groupID.Kind() != conversation.Group || direct.Kind() != conversation.Direct {
		t.Fatalf("kinds: group id %s is %s, direct id %s is %s", groupID, groupID.Kind(), direct, direct.Kind())
	}
	if !strings.HasPrefix(string(groupID), "g_") || strings.ContainsAny(string(groupID), "/+=?&#") {
		t.Fatalf("group id %q is not g_ and URL-safe", groupID)
	}
	if got, err := conversation.ParseID(string(groupID)); err != nil || got != groupID {
		t.Fatalf("ParseID(%q) = %q, %v", groupID, got, err)
	}
	if conversation.NewGroupID([16]byte{1}) == conversation.NewGroupID([16]byte{2}) {
		t.Fatal("different random bytes made the same group id")
	}
	if _, err := conversation.ParseID("g_" + string(direct)[2:] + "x"); !errors.Is(err, conversation.ErrInvalidID) {
		t.Fatalf("a group id of the wrong length parsed: %v", err)
	}
}

func TestStreamOf(t *testing.T) {
	for _, id := range []conversation.ID{conversation.IDFor("a", "b"), groupID} {
		tests := []struct {
			stream string
			kind   conversation.StreamKind
		}{
			{conversation.MessagesStream(id), conversation.StreamMessages},
			{conversation.ReceiptsStream(id), conversation.StreamReceipts},
			{conversation.ChangesStream(id), conversation.StreamChanges},
		}
		for _, tt := range tests {
			if got, kind := conversation.StreamOf(tt.stream); got != id || kind != tt.kind {
				t.Fatalf("StreamOf(%q) = %q, %v; want %q, %v", tt.stream, got, kind, id, tt.kind)
			}
		}
	}
}

func TestParseTitle(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"plain", "team", true},
		{"100 multi-byte characters", strings.Repeat("é", 100), true},
		{"kept as given, spaces and all", "  team ", true},
		{"empty", "", false},
		{"101 characters", strings.Repeat("a", 101), false},
		{"invalid UTF-8", "te\xffam", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			title, err := conversation.ParseTitle(tt.in)
			if tt.ok != (err == nil) {
				t.Fatalf("ParseTitle(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if err != nil && !errors.Is(err, conversation.ErrInvalidTitle) {
				t.Fatalf("err = %v, want ErrInvalidTitle", err)
			}
			if err == nil && string(title) != tt.in {
				t.Fatalf("title %q rewritten from %q", title, tt.in)
			}
		})
	}
}

func TestCreateGroup(t *testing.T) {
	tests := []struct {
		name    string
		id      conversation.ID
		members []user.ID
		cap     int
		err     error
		want    []user.ID
	}{
		{"the owner first, then the members", groupID, []user.ID{"bob", "carol"}, maxMembers, nil, []user.ID{"alice", "bob", "carol"}},
		{"duplicates and the owner are ignored", groupID, []user.ID{"bob", "alice", "bob"}, maxMembers, nil, []user.ID{"alice", "bob"}},
		{"two members at the smallest", groupID, []user.ID{"bob"}, maxMembers, nil, []user.ID{"alice", "bob"}},
		{"exactly the cap", groupID, []user.ID{"bob", "carol"}, 3, nil, []user.ID{"alice", "bob", "carol"}},
		{"one over the cap", groupID, []user.ID{"bob", "carol", "dave"}, 3, conversation.ErrTooManyMembers, nil},
		{"no member besides the owner", groupID, nil, maxMembers, conversation.ErrTooFewMembers, nil},
		{"only the owner, named again", groupID, []user.ID{"alice"}, maxMembers, conversation.ErrTooFewMembers, nil},
		{"not under a direct conversation's id", conversation.IDFor("alice", "bob"), []user.ID{"bob"}, maxMembers, conversation.ErrNotGroupID, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := conversation.New(tt.id)
			err := c.CreateGroup("alice", "team", tt.members, sentAt, tt.cap)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				if domain.KindOf(err) != domain.Invalid || len(c.UncommittedChanges()) != 0 || c.IsParticipant("alice") {
					t.Fatalf("refused creation: kind %v, recorded %v", domain.KindOf(err), changeTypes(c))
				}
				return
			}
			if !reflect.DeepEqual(changeTypes(c), []string{"GroupCreated"}) || len(c.Uncommitted()) != 0 {
				t.Fatalf("recorded %v on changes and %d on messages, want one GroupCreated", changeTypes(c), len(c.Uncommitted()))
			}
			if !reflect.DeepEqual(c.Members(), tt.want) || c.Owner() != "alice" || c.Title() != "team" || c.Kind() != conversation.Group {
				t.Fatalf("members %v owner %q title %q kind %s", c.Members(), c.Owner(), c.Title(), c.Kind())
			}
			if !c.CreatedAt().Equal(sentAt.Truncate(time.Millisecond)) {
				t.Fatalf("created at %v, want %v", c.CreatedAt(), sentAt)
			}
			if c.Started() || c.LastSeq() != 0 {
				t.Fatal("creating a group posted a message")
			}
		})
	}
	t.Run("not twice", func(t *testing.T) {
		c := groupOf(t, "alice", "bob")
		if err := c.CreateGroup("carol", "other", []user.ID{"dave"}, sentAt, maxMembers); !errors.Is(err, conversation.ErrGroupExists) {
			t.Fatalf("err = %v, want ErrGroupExists", err)
		}
	})
}

func TestRename(t *testing.T) {
	tests := []struct {
		name   string
		by     user.ID
		title  conversation.Title
		err    error
		events []string
		want   conversation.Title
	}{
		{"the owner renames", "alice", "new", nil, []string{"GroupRenamed"}, "new"},
		{"any member renames", "bob", "new", nil, []string{"GroupRenamed"}, "new"},
		{"the same title records nothing", "bob", "team", nil, nil, "team"},
		{"an outsider finds no group", "dave", "new", conversation.ErrNotFound, nil, "team"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := groupOf(t, "alice", "bob", "carol")
			if err := c.Rename(tt.by, tt.title, sentAt); !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if !reflect.DeepEqual(changeTypes(c), tt.events) || c.Title() != tt.want {
				t.Fatalf("recorded %v, title %q; want %v, %q", changeTypes(c), c.Title(), tt.events, tt.want)
			}
		})
	}
	t.Run("a direct conversation is no group", func(t *testing.T) {
		c := conversationWith(t, 1)
		if err := c.Rename("alice", "new", sentAt); !errors.Is(err, conversation.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
}

func TestChangeMembers(t *testing.T) {
	type change struct {
		by          user.ID
		add, remove []user.ID
		cap         int
		err         error
		events      []string
	}
	added, removed, handedOver := "MemberAdded", "MemberRemoved", "OwnerChanged"
	tests := []struct {
		name    string
		changes []change
		members []user.ID // after the changes, from alice, bob, carol owned by alice
		owner   user.ID
	}{
		{"the owner adds", []change{
			{"alice", []user.ID{"dave"}, nil, maxMembers, nil, []string{added}},
		}, []user.ID{"alice", "bob", "carol", "dave"}, "alice"},
		{"the owner removes", []change{
			{"alice", nil, []user.ID{"bob"}, maxMembers, nil, []string{removed}},
		}, []user.ID{"alice", "carol"}, "alice"},
		{"adding a member or removing a non-member records nothing", []change{
			{"alice", []user.ID{"bob", "bob"}, []user.ID{"dave"}, maxMembers, nil, nil},
		}, []user.ID{"alice", "bob", "carol"}, "alice"},
		{"a member leaves", []change{
			{"bob", nil, []user.ID{"bob"}, maxMembers, nil, []string{removed}},
		}, []user.ID{"alice", "carol"}, "alice"},
		{"a member naming only themself among the added changes nothing", []change{
			{"bob", []user.ID{"bob"}, nil, maxMembers, nil, nil},
		}, []user.ID{"alice", "bob", "carol"}, "alice"},
		{"a member may not add", []change{
			{"bob", []user.ID{"dave"}, nil, maxMembers, conversation.ErrNotOwner, nil},
		}, []user.ID{"alice", "bob", "carol"}, "alice"},
		{"a member may not remove another", []change{
			{"bob", nil, []user.ID{"bob", "carol"}, maxMembers, conversation.ErrNotOwner, nil},
		}, []user.ID{"alice", "bob", "carol"}, "alice"},
		{"an outsider finds no group", []change{
			{"dave", nil, []user.ID{"dave"}, maxMembers, conversation.ErrNotFound, nil},
		}, []user.ID{"alice", "bob", "carol"}, "alice"},
		{"a removed member is an outsider", []change{
			{"alice", nil, []user.ID{"bob"}, maxMembers, nil, []string{removed}},
			{"bob", nil, []user.ID{"bob"}, maxMembers, conversation.ErrNotFound, nil},
		}, []user.ID{"alice", "carol"}, "alice"},
		{"up to the cap", []change{
			{"alice", []user.ID{"dave"}, nil, 4, nil, []string{added}},
		}, []user.ID{"alice", "bob", "carol", "dave"}, "alice"},
		{"not beyond the cap", []change{
			{"alice", []user.ID{"dave", "erin"}, nil, 4, conversation.ErrTooManyMembers, nil},
		}, []user.ID{"alice", "bob", "carol"}, "alice"},
		{"the cap counts the group after the whole change", []change{
			{"alice", []user.ID{"dave"}, []user.ID{"carol"}, 3, nil, []string{added, removed}},
		}, []user.ID{"alice", "bob", "dave"}, "alice"},
		{"a group over a lowered cap can still shrink", []change{
			{"alice", nil, []user.ID{"bob"}, 1, nil, []string{removed}},
			{"carol", nil, []user.ID{"carol"}, 1, nil, []string{removed}},
		}, []user.ID{"alice"}, "alice"},
		{"not added and removed at once", []change{
			{"alice", []user.ID{"dave"}, []user.ID{"dave"}, maxMembers, conversation.ErrAddAndRemove, nil},
		}, []user.ID{"alice", "bob", "carol"}, "alice"},
		{"the owner leaving hands over to the earliest joined", []change{
			{"alice", nil, []user.ID{"alice"}, maxMembers, nil, []string{removed, handedOver}},
		}, []user.ID{"bob", "carol"}, "bob"},
		{"a member who rejoins is the latest to join", []change{
			{"alice", nil, []user.ID{"bob"}, maxMembers, nil, []string{removed}},
			{"alice", []user.ID{"bob"}, nil, maxMembers, nil, []string{added}},
			{"alice", nil, []user.ID{"alice"}, maxMembers, nil, []string{removed, handedOver}},
		}, []user.ID{"carol", "bob"}, "carol"},
		{"the new owner rules", []change{
			{"alice", nil, []user.ID{"alice"}, maxMembers, nil, []string{removed, handedOver}},
			{"bob", []user.ID{"alice"}, []user.ID{"carol"}, maxMembers, nil, []string{added, removed}},
			{"alice", nil, []user.ID{"bob"}, maxMembers, conversation.ErrNotOwner, nil},
		}, []user.ID{"bob", "alice"}, "bob"},
		{"the owner replacing everyone hands over to the first added", []change{
			{"alice", []user.ID{"erin"}, []user.ID{"alice", "bob", "carol"}, maxMembers, nil, []string{added, removed, removed, removed, handedOver}},
		}, []user.ID{"erin"}, "erin"},
		{"the last member leaving ends the group", []change{
			{"alice", nil, []user.ID{"bob", "carol"}, maxMembers, nil, []string{removed, removed}},
			{"alice", nil, []user.ID{"alice"}, maxMembers, nil, []string{removed}},
			{"alice", []user.ID{"alice"}, nil, maxMembers, conversation.ErrNotFound, nil},
		}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := groupOf(t, "alice", "bob", "carol")
			for i, ch := range tt.changes {
				err := c.ChangeMembers(ch.by, ch.add, ch.remove, sentAt, ch.cap)
				if !errors.Is(err, ch.err) {
					t.Fatalf("change %d: err = %v, want %v", i, err, ch.err)
				}
				if !reflect.DeepEqual(changeTypes(c), ch.events) {
					t.Fatalf("change %d: recorded %v, want %v", i, changeTypes(c), ch.events)
				}
				c.ChangesCommitted()
			}
			if !slices.Equal(c.Members(), tt.members) || c.Owner() != tt.owner {
				t.Fatalf("members %v owner %q, want %v %q", c.Members(), c.Owner(), tt.members, tt.owner)
			}
			for _, u := range []user.ID{"alice", "bob", "carol", "dave", "erin"} {
				want := errors.Is(c.CanRead(u), conversation.ErrNotFound)
				if c.IsParticipant(u) == want {
					t.Fatalf("%s: member %v but CanRead %v", u, c.IsParticipant(u), c.CanRead(u))
				}
			}
		})
	}
}

func TestMembershipEventsSayWhoAndWhen(t *testing.T) {
	c := groupOf(t, "alice", "bob")
	at := sentAt.Add(time.Minute)
	if err := c.ChangeMembers("alice", []user.ID{"carol"}, []user.ID{"alice"}, at, maxMembers); err != nil {
		t.Fatal(err)
	}
	stamped := at.Truncate(time.Millisecond)
	want := []conversation.Event{
		conversation.MemberAdded{Conversation: groupID, User: "carol", By: "alice", At: stamped},
		conversation.MemberRemoved{Conversation: groupID, User: "alice", By: "alice", At: stamped},
		conversation.OwnerChanged{Conversation: groupID, Owner: "bob", At: stamped},
	}
	if got := c.UncommittedChanges(); !reflect.DeepEqual(got, want) {
		t.Fatalf("recorded %+v, want %+v", got, want)
	}
}

func TestPostAsMember(t *testing.T) {
	direct := conversationWith(t, 1)
	tests := []struct {
		name    string
		conv    func(t *testing.T) *conversation.Conversation
		from    user.ID
		to      user.ID
		seq     uint64
		err     error
		changes uint64 // the changes stream's version, untouched by a post
	}{
		{"a group member posts to every other member", func(t *testing.T) *conversation.Conversation { return groupOf(t, "alice", "bob") }, "bob", "", 1, nil, 1},
		{"an outsider finds no group", func(t *testing.T) *conversation.Conversation { return groupOf(t, "alice", "bob") }, "carol", "", 0, conversation.ErrNotFound, 1},
		{"a removed member finds no group", func(t *testing.T) *conversation.Conversation {
			c := groupOf(t, "alice", "bob", "carol")
			if err := c.ChangeMembers("carol", nil, []user.ID{"carol"}, sentAt, maxMembers); err != nil {
				t.Fatal(err)
			}
			c.ChangesCommitted()
			return c
		}, "carol", "", 0, conversation.ErrNotFound, 2},
		{"by id to a direct conversation, to the peer", func(*testing.T) *conversation.Conversation { return direct.Clone() }, "bob", "alice", 2, nil, 0},
		{"by id to a direct conversation not started", func(*testing.T) *conversation.Conversation {
			return conversation.New(conversation.IDFor("alice", "dave"))
		}, "alice", "", 0, conversation.ErrNotFound, 0},
		{"by id to a direct conversation of others", func(*testing.T) *conversation.Conversation { return direct.Clone() }, "carol", "", 0, conversation.ErrNotFound, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.conv(t)
			version := c.Version()
			posted, err := c.PostAsMember("m", tt.from, "hi", sentAt)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if c.ChangesVersion() != tt.changes || len(c.UncommittedChanges()) != 0 {
				t.Fatalf("a post moved the changes stream: version %d, recorded %v", c.ChangesVersion(), changeTypes(c))
			}
			if err != nil {
				if len(c.Uncommitted()) != 0 {
					t.Fatalf("a refused post recorded %d events", len(c.Uncommitted()))
				}
				return
			}
			if posted.Seq != tt.seq || posted.To != tt.to || posted.From != tt.from || len(c.Uncommitted()) != 1 {
				t.Fatalf("posted %+v with %d events, want seq %d to %q alone", posted, len(c.Uncommitted()), tt.seq, tt.to)
			}
			// A group message names the membership it was posted under.
			if posted.Membership != tt.changes {
				t.Fatalf("posted under membership %d, want the changes stream's version %d", posted.Membership, tt.changes)
			}
			c.Committed()
			if c.Version() != version+1 || c.Version() != c.LastSeq() || !c.Started() {
				t.Fatalf("version %d, last seq %d: version must equal seq", c.Version(), c.LastSeq())
			}
		})
	}
}
