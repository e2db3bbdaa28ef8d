package contract

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"

	"github.com/evchat/chatd/tests/eventually"
)

// TestReplay checks that application.Replay rebuilds exactly the read model
// the live projection built: it drives the application over the given store
// and read model (published through the in-process bus), waits for the
// projector, snapshots every view and every user's list, replays, and
// compares. newPorts must give a store that also implements
// ports.StreamScanner, and a read model no other case writes to, since
// replay resets it.
func TestReplay(t *testing.T, newPorts func(t *testing.T) (ports.EventStore, ports.ReadModel)) {
	store, rm := newPorts(t)
	scanner, ok := store.(ports.StreamScanner)
	if !ok {
		t.Fatalf("%T does not implement ports.StreamScanner", store)
	}
	ctx := context.Background()
	app := projectingApp(t, store, rm)

	users := make([]user.ID, 4)
	for i := range users {
		users[i] = user.ID(uniqueName(t, fmt.Sprintf("u%d", i)))
	}
	// Conversations of several lengths, sent from both sides, read up to
	// various points, one never read, so views differ in every field.
	type pair struct{ a, b, messages, readByB int }
	convs := map[conversation.ID]bool{}
	for _, p := range []pair{{0, 1, 7, 4}, {0, 2, 3, 3}, {1, 2, 5, 0}, {3, 0, 9, 8}, {2, 3, 1, 1}} {
		a, b := users[p.a], users[p.b]
		var conv conversation.ID
		for i := range p.messages {
			from, to := a, b
			if i%3 == 2 {
				from, to = b, a
			}
			ack, err := app.Send.Handle(ctx, application.SendMessageCommand{Sender: from, To: to, Body: message.Body(fmt.Sprintf("message %d", i))})
			if err != nil {
				t.Fatalf("send %s -> %s: %v", from, to, err)
			}
			conv = ack.Conversation
		}
		convs[conv] = true
		if err := changeLast(ctx, app, a, conv, p.messages); err != nil {
			t.Fatal(err)
		}
		if p.readByB > 0 {
			err := app.MarkReceipts.Handle(ctx, application.MarkReadCommand{Reader: b, Conversation: conv, UpTo: uint64(p.readByB)})
			if err != nil {
				t.Fatalf("mark read: %v", err)
			}
		}
	}

	// A group whose members, title and owner all changed: users[0] made
	// it, users[3] joined, users[0] left and users[1] took it over.
	group, err := app.Groups.Create.Handle(ctx, application.CreateGroupCommand{Creator: users[0], Title: "team", Members: users[1:3]})
	if err != nil {
		t.Fatal(err)
	}
	for _, change := range []application.ChangeMembersCommand{{By: users[0], Add: users[3:]}, {By: users[0], Remove: users[:1]}} {
		change.Conversation = group.Conversation
		if _, err := app.Groups.ChangeMembers.Handle(ctx, change); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := app.Groups.Rename.Handle(ctx, application.RenameGroupCommand{By: users[2], Conversation: group.Conversation, Title: "renamed"}); err != nil {
		t.Fatal(err)
	}
	for i, from := range []user.ID{users[2], users[3], users[2]} {
		_, err := app.Send.Handle(ctx, application.SendMessageCommand{Sender: from, Conversation: group.Conversation,
			Body: message.Body(fmt.Sprintf("to the group %d", i))})
		if err != nil {
			t.Fatalf("send to the group: %v", err)
		}
	}
	convs[group.Conversation] = true

	eventually.Within(t, 10*time.Second, "the projector to catch up", func() bool {
		for id := range convs {
			messages := mustLoad(t, store, conversation.MessagesStream(id), 1, 0)
			receipts := mustLoad(t, store, conversation.ReceiptsStream(id), 1, 0)
			changes := mustLoad(t, store, conversation.ChangesStream(id), 1, 0)
			v, found, err := getView(ctx, rm, string(id))
			if err != nil {
				t.Fatal(err)
			}
			if !found || v.MessagesVersion != uint64(len(messages)) || v.ReceiptsVersion != uint64(len(receipts)) ||
				v.ChangesVersion != uint64(len(changes)) {
				return false
			}
		}
		return true
	})
	live := snapshot(t, rm, convs, users)
	if len(live.views) != 6 || len(live.lists[users[0]]) != 3 || len(live.lists[users[3]]) != 3 {
		t.Fatalf("live projection holds %d views, %d for %s, %d for %s; want 6, 3 and 3",
			len(live.views), len(live.lists[users[0]]), users[0], len(live.lists[users[3]]), users[3])
	}
	if g := live.views[group.Conversation]; g.Title != "renamed" || g.Owner != users[1] || len(g.Members) != 3 || g.Members[0].UnreadCount() != 3 {
		t.Fatalf("the group's live view: %+v", g)
	}

	if err := application.Replay(ctx, scanner, rm); err != nil {
		t.Fatal(err)
	}
	replayed := snapshot(t, rm, convs, users)
	for id, want := range live.views {
		assertView(t, replayed.views[id], want)
	}
	// Views with the same last activity may list in either order, the more
	// so where times are kept to the millisecond; compare by conversation.
	for u, want := range live.lists {
		got := replayed.lists[u]
		if len(got) != len(want) {
			t.Fatalf("%s lists %d conversations after replay, %d before", u, len(got), len(want))
		}
		byID := map[string]ports.ConversationView{}
		for i, v := range got {
			if i > 0 && v.LastActivity.After(got[i-1].LastActivity) {
				t.Errorf("%s's list after replay is not latest first: %v after %v", u, v.LastActivity, got[i-1].LastActivity)
			}
			byID[v.Conversation] = v
		}
		for _, w := range want {
			assertView(t, byID[w.Conversation], w)
		}
	}
}

// projectingApp is the application over store and rm, published through
// the in-process bus and projected into rm.
func projectingApp(t *testing.T, store ports.EventStore, rm ports.ReadModel) *application.Application {
	t.Helper()
	clock := memory.Clock{}
	tx, err := application.NewTransactions(store, clock, 6*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	bus, err := memory.NewBus(tx, memory.BusConfig{CheckInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	app, err := application.New(application.DefaultConfig(), store, bus, rm, clock, memory.IDs{},
		application.PresencePorts{Signals: memory.NewSignals(), LastSeen: memory.NewLastSeen()})
	if err != nil {
		t.Fatal(err)
	}
	bus.Cluster("projector", app.Projector.Handle)
	_ = bus.Start(context.Background())
	t.Cleanup(func() { _ = bus.Stop(context.Background()) })
	return app
}

// changeLast edits or recalls the last of a conversation's messages, by
// its length, when a's own (the sends above alternate): a view's last
// message then shows each state, and replay must fold it the same way.
func changeLast(ctx context.Context, app *application.Application, a user.ID, conv conversation.ID, messages int) error {
	if (messages-1)%3 == 2 {
		return nil
	}
	var err error
	if messages%4 == 1 {
		_, err = app.Recall.Handle(ctx, application.RecallMessageCommand{Author: a, ClientID: "recall-last", Conversation: conv, Seq: uint64(messages)})
	} else {
		_, err = app.Edit.Handle(ctx, application.EditMessageCommand{Author: a, ClientID: "edit-last", Conversation: conv,
			Seq: uint64(messages), Body: "edited"})
	}
	return err
}

type readModelSnapshot struct {
	views map[conversation.ID]ports.ConversationView
	lists map[user.ID][]ports.ConversationView
}

func snapshot(t *testing.T, rm ports.ReadModel, convs map[conversation.ID]bool, users []user.ID) readModelSnapshot {
	t.Helper()
	ctx := context.Background()
	s := readModelSnapshot{views: map[conversation.ID]ports.ConversationView{}, lists: map[user.ID][]ports.ConversationView{}}
	for id := range convs {
		v, found, err := getView(ctx, rm, string(id))
		if err != nil || !found {
			t.Fatalf("view of %s: found=%v err=%v", id, found, err)
		}
		s.views[id] = v
	}
	for _, u := range users {
		list, err := rm.ListFor(ctx, u, 0)
		if err != nil {
			t.Fatal(err)
		}
		s.lists[u] = list
	}
	return s
}
