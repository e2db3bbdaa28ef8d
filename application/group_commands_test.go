package application_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
	"github.com/evchat/chatd/tests/eventually"
)

func (s *fakeSession) PushMember(m ports.MemberChange) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.members = append(s.members, m)
	return true
}

func (s *fakeSession) membersSeen() []ports.MemberChange {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ports.MemberChange(nil), s.members...)
}

func createGroup(t *testing.T, n *node, owner user.ID, members ...user.ID) application.Group {
	t.Helper()
	g, err := n.app.Groups.Create.Handle(context.Background(), application.CreateGroupCommand{Creator: owner, Title: "team", Members: members})
	if err != nil {
		t.Fatalf("create group: %v", err)
	}
	return g
}

func TestCreateGroup(t *testing.T) {
	cfg := testConfig()
	cfg.MaxGroupMembers = 3
	n := newNode(t, cfg, memory.NewEventStore())
	g := createGroup(t, n, "ann", "bob", "ann", "bob", "cid")
	if !strings.HasPrefix(string(g.Conversation), "g_") || g.Conversation.Kind() != conversation.Group {
		t.Fatalf("id %q is not a group's", g.Conversation)
	}
	if g.Owner != "ann" || !slices.Equal(g.Members, []user.ID{"ann", "bob", "cid"}) || g.Title != "team" || g.CreatedAt.IsZero() {
		t.Fatalf("group %+v, want ann's team of ann, bob, cid", g)
	}
	commits, err := n.store.Load(context.Background(), conversation.ChangesStream(g.Conversation), 1, 0)
	if err != nil || len(commits) != 1 {
		t.Fatalf("the answer came before the commit was stored: %d commits, %v", len(commits), err)
	}
	if other := createGroup(t, n, "ann", "bob"); other.Conversation == g.Conversation {
		t.Fatal("two groups share an id")
	}
	for name, members := range map[string][]user.ID{"over the cap": {"bob", "cid", "dan"}, "no one but the owner": {"ann"}} {
		_, err := n.app.Groups.Create.Handle(context.Background(), application.CreateGroupCommand{Creator: "ann", Title: "t", Members: members})
		if !errors.Is(err, conversation.ErrTooManyMembers) && !errors.Is(err, conversation.ErrTooFewMembers) {
			t.Errorf("%s: got %v, want a refusal", name, err)
		}
	}
}

func TestGroupCommands(t *testing.T) {
	type step struct {
		name    string
		by      user.ID
		add     []user.ID
		remove  []user.ID
		title   conversation.Title // renames instead when set
		err     error
		members []user.ID
		owner   user.ID
	}
	steps := []step{
		{name: "any member renames", by: "bob", title: "renamed", members: []user.ID{"ann", "bob", "cid"}, owner: "ann"},
		{name: "a non-member finds no group to rename", by: "eve", title: "mine", err: conversation.ErrNotFound},
		{name: "the owner adds", by: "ann", add: []user.ID{"dan"}, members: []user.ID{"ann", "bob", "cid", "dan"}, owner: "ann"},
		{name: "a member may not add", by: "bob", add: []user.ID{"eve"}, err: conversation.ErrNotOwner},
		{name: "a member may not remove another", by: "bob", remove: []user.ID{"cid"}, err: conversation.ErrNotOwner},
		{name: "the owner may not grow it past the cap", by: "ann", add: []user.ID{"eve"}, err: conversation.ErrTooManyMembers},
		{name: "a member leaves", by: "cid", remove: []user.ID{"cid"}, members: []user.ID{"ann", "bob", "dan"}, owner: "ann"},
		{name: "a removed member finds no group", by: "cid", remove: []user.ID{"cid"}, err: conversation.ErrNotFound},
		{name: "the owner leaves, the earliest joined takes over", by: "ann", remove: []user.ID{"ann"}, members: []user.ID{"bob", "dan"}, owner: "bob"},
		{name: "the new owner removes the last other member", by: "bob", remove: []user.ID{"dan"}, members: []user.ID{"bob"}, owner: "bob"},
		{name: "the last member leaves", by: "bob", remove: []user.ID{"bob"}, members: nil, owner: ""},
		{name: "an ended group exists for no one", by: "bob", title: "again", err: conversation.ErrNotFound},
	}
	cfg := testConfig()
	cfg.MaxGroupMembers = 4
	n := newNode(t, cfg, memory.NewEventStore())
	ctx := context.Background()
	id := createGroup(t, n, "ann", "bob", "cid").Conversation
	for _, s := range steps {
		var (
			g   application.Group
			err error
		)
		if s.title != "" {
			g, err = n.app.Groups.Rename.Handle(ctx, application.RenameGroupCommand{By: s.by, Conversation: id, Title: s.title})
		} else {
			g, err = n.app.Groups.ChangeMembers.Handle(ctx, application.ChangeMembersCommand{By: s.by, Conversation: id, Add: s.add, Remove: s.remove})
		}
		if !errors.Is(err, s.err) {
			t.Fatalf("%s: got %v, want %v", s.name, err, s.err)
		}
		if err == nil && (!slices.Equal(g.Members, s.members) || g.Owner != s.owner) {
			t.Fatalf("%s: members %v owner %q, want %v and %q", s.name, g.Members, g.Owner, s.members, s.owner)
		}
		if err == nil && g.Title != "renamed" {
			t.Fatalf("%s: title %q, want renamed", s.name, g.Title)
		}
	}
	for _, u := range []user.ID{"ann", "bob", "cid"} {
		if _, err := n.app.Groups.Get.Handle(ctx, application.GetGroupQuery{Reader: u, Conversation: id}); !errors.Is(err, conversation.ErrNotFound) {
			t.Errorf("%s gets the ended group: %v, want not found", u, err)
		}
	}
}

func TestGroupReadsAreForMembersOnly(t *testing.T) {
	n := newNode(t, testConfig(), memory.NewEventStore())
	ctx := context.Background()
	id := createGroup(t, n, "ann", "bob").Conversation
	if _, err := n.app.Groups.Get.Handle(ctx, application.GetGroupQuery{Reader: "eve", Conversation: id}); !errors.Is(err, conversation.ErrNotFound) {
		t.Fatalf("an outsider gets the group: %v", err)
	}
	direct := send(t, n, "ann", "k", "bob", "hi").Conversation
	if _, err := n.app.Groups.Get.Handle(ctx, application.GetGroupQuery{Reader: "ann", Conversation: direct}); !errors.Is(err, conversation.ErrNotFound) {
		t.Fatalf("a direct conversation answers as a group: %v", err)
	}
	receipts, err := n.app.Receipts.Handle(ctx, application.ReceiptsQuery{Reader: "bob", Conversation: id})
	if err != nil || len(receipts) != 2 || receipts[0].User != "ann" || receipts[1].User != "bob" {
		t.Fatalf("receipts of the group: %+v, %v; want ann's and bob's", receipts, err)
	}
	if _, err := n.app.Receipts.Handle(ctx, application.ReceiptsQuery{Reader: "eve", Conversation: id}); !errors.Is(err, conversation.ErrNotFound) {
		t.Fatalf("an outsider reads the group's receipts: %v", err)
	}
	if err := n.app.MarkReceipts.Handle(ctx, application.MarkReadCommand{Reader: "bob", Conversation: direct, UpTo: 1}); err != nil {
		t.Fatal(err)
	}
	receipts, err = n.app.Receipts.Handle(ctx, application.ReceiptsQuery{Reader: "ann", Conversation: direct})
	want := []application.MemberReceipt{{User: "ann"}, {User: "bob", DeliveredUpTo: 1, ReadUpTo: 1}}
	if err != nil || !slices.Equal(receipts, want) {
		t.Fatalf("receipts of the direct conversation: %+v, %v; want %+v", receipts, err, want)
	}
}

func TestAMembershipChangeOnAnotherNodeCountsAtOnce(t *testing.T) {
	store := memory.NewEventStore()
	a, b := newNode(t, testConfig(), store), newNode(t, testConfig(), store)
	ctx := context.Background()
	id := createGroup(t, a, "ann", "bob", "cid").Conversation
	if _, err := b.app.Groups.Get.Handle(ctx, application.GetGroupQuery{Reader: "cid", Conversation: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.app.Groups.ChangeMembers.Handle(ctx, application.ChangeMembersCommand{By: "ann", Conversation: id, Remove: []user.ID{"cid"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.app.Groups.Get.Handle(ctx, application.GetGroupQuery{Reader: "cid", Conversation: id}); !errors.Is(err, conversation.ErrNotFound) {
		t.Fatalf("the other node still shows the group to the removed member: %v", err)
	}
	g, err := b.app.Groups.ChangeMembers.Handle(ctx, application.ChangeMembersCommand{By: "ann", Conversation: id, Add: []user.ID{"dan"}})
	if err != nil || !slices.Equal(g.Members, []user.ID{"ann", "bob", "dan"}) {
		t.Fatalf("a change on the other node: %+v, %v", g, err)
	}
}

func TestAGroupChangeWhileTheStoreIsDownIsUnavailable(t *testing.T) {
	n := newNode(t, testConfig(), downStore{memory.NewEventStore()})
	_, err := n.app.Groups.Create.Handle(context.Background(), application.CreateGroupCommand{Creator: "ann", Title: "t", Members: []user.ID{"bob"}})
	if !errors.Is(err, ports.ErrUnavailable) {
		t.Fatalf("got %v, want unavailable", err)
	}
}

func TestAGroupChangeShowsInTheListsOfThoseItNames(t *testing.T) {
	n := newNode(t, testConfig(), memory.NewEventStore())
	ctx := context.Background()
	listed := func(u user.ID, id conversation.ID) *application.ConversationSummary {
		t.Helper()
		list, err := n.app.Conversations.Handle(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list {
			if s.Conversation == string(id) {
				return &s
			}
		}
		return nil
	}
	id := createGroup(t, n, "ann", "bob").Conversation
	s := listed("bob", id)
	if s == nil || s.Kind != conversation.Group || s.Title != "team" || !slices.Equal(s.Members, []user.ID{"ann", "bob"}) || s.Peer != "" {
		t.Fatalf("bob's list right after the creation holds %+v", s)
	}
	if _, err := n.app.Groups.ChangeMembers.Handle(ctx, application.ChangeMembersCommand{By: "ann", Conversation: id, Remove: []user.ID{"bob"}}); err != nil {
		t.Fatal(err)
	}
	if s := listed("bob", id); s != nil {
		t.Fatalf("bob's list right after his removal holds %+v", s)
	}
}

func TestGroupHistoryAnswersTheGroupStatusRule(t *testing.T) {
	store := memory.NewEventStore()
	changes, _, _ := groupHistory(t, store)
	id, _ := conversation.StreamOf(changes[0].Stream)
	n := newNode(t, testConfig(), store)
	ctx := context.Background()
	statuses := func() []string {
		t.Helper()
		return historyStatuses(ctx, t, n, "cid", id)
	}
	// bob read both; cid, who joined between them, has neither.
	if got := statuses(); !slices.Equal(got, []string{"sent", "sent"}) {
		t.Fatalf("statuses %v, want sent until cid has them", got)
	}
	mark := func(events ...conversation.Event) {
		t.Helper()
		loaded, _ := store.Load(ctx, conversation.ReceiptsStream(id), 1, 0)
		c := ports.Commit{ID: "mark" + string(rune('a'+len(loaded))), Stream: conversation.ReceiptsStream(id),
			Version: uint64(len(loaded) + 1), Events: events}
		if err := store.Append(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	mark(conversation.DeliveredUpTo{Conversation: id, User: "cid", Seq: 2})
	if got := statuses(); !slices.Equal(got, []string{"delivered", "delivered"}) {
		t.Fatalf("statuses %v, want delivered once every other member has them", got)
	}
	mark(conversation.ReadUpTo{Conversation: id, User: "cid", Seq: 1})
	if got := statuses(); !slices.Equal(got, []string{"read", "delivered"}) {
		t.Fatalf("statuses %v, want the first read by all but its author (ann left), the second not by cid", got)
	}
	if _, err := n.app.History.Handle(ctx, application.HistoryQuery{Reader: "ann", Conversation: id}); !errors.Is(err, conversation.ErrNotFound) {
		t.Fatalf("ann, who left, reads the history: %v", err)
	}
}

func TestMemberFramesReachEveryMemberAndWhoLeft(t *testing.T) {
	n := newNode(t, testConfig(), memory.NewEventStore())
	ctx := context.Background()
	sessions := map[user.ID]*fakeSession{}
	for _, u := range []user.ID{"ann", "bob", "cid", "dan", "eve"} {
		sessions[u] = connect(t, n, string(u)+"-1", u)
	}
	id := createGroup(t, n, "ann", "bob", "cid").Conversation
	change := func(by user.ID, add, remove []user.ID) {
		t.Helper()
		if _, err := n.app.Groups.ChangeMembers.Handle(ctx, application.ChangeMembersCommand{By: by, Conversation: id, Add: add, Remove: remove}); err != nil {
			t.Fatal(err)
		}
	}
	change("ann", []user.ID{"dan"}, nil)
	change("ann", nil, []user.ID{"bob"})
	change("cid", nil, []user.ID{"cid"})
	type seen struct {
		user, by user.ID
		change   string
	}
	want := map[user.ID][]seen{
		"ann": {{"dan", "ann", "added"}, {"bob", "ann", "removed"}, {"cid", "cid", "removed"}},
		"bob": {{"bob", "ann", "added"}, {"dan", "ann", "added"}, {"bob", "ann", "removed"}},
		"cid": {{"cid", "ann", "added"}, {"dan", "ann", "added"}, {"bob", "ann", "removed"}, {"cid", "cid", "removed"}},
		"dan": {{"dan", "ann", "added"}, {"bob", "ann", "removed"}, {"cid", "cid", "removed"}},
		"eve": nil,
	}
	eventually.Within(t, 5*time.Second, "the member frames", func() bool {
		for u, w := range want {
			var got []seen
			for _, m := range sessions[u].membersSeen() {
				if m.Conversation != string(id) || m.At.IsZero() {
					t.Fatalf("%s got %+v", u, m)
				}
				got = append(got, seen{m.User, m.By, m.Change})
			}
			if !slices.Equal(got, w) {
				return false
			}
		}
		return true
	})
}

// historyStatuses is the status of each message of reader's history page
// of conv, in seq order.
func historyStatuses(ctx context.Context, t *testing.T, n *node, reader user.ID, conv conversation.ID) []string {
	t.Helper()
	page, err := n.app.History.Handle(ctx, application.HistoryQuery{Reader: reader, Conversation: conv})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range page.Messages {
		out = append(out, m.Status)
	}
	return out
}
