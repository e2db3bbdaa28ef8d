package application_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/tests/eventually"
)

func sendTo(n *node, from user.ID, key string, conv conversation.ID) (application.Ack, error) {
	return n.app.Send.Handle(context.Background(), application.SendMessageCommand{
		Sender: from, ClientID: message.ClientID(key), Conversation: conv, Body: message.Body("to " + string(conv))})
}

func TestGroupSends(t *testing.T) {
	n := newNode(t, testConfig(), memory.NewEventStore())
	ctx := context.Background()
	ann1, ann2 := connect(t, n, "ann-1", "ann"), connect(t, n, "ann-2", "ann")
	bob, cid, eve := connect(t, n, "bob-1", "bob"), connect(t, n, "cid-1", "cid"), connect(t, n, "eve-1", "eve")
	id := createGroup(t, n, "ann", "bob", "cid").Conversation

	ack, err := n.app.Send.Handle(ctx, application.SendMessageCommand{Sender: "ann", ClientID: "k1", Conversation: id, Body: "hi all", Origin: "ann-1"})
	if err != nil || ack.Conversation != id || ack.Seq != 1 {
		t.Fatalf("a member's send: %+v, %v", ack, err)
	}
	if again, err := sendTo(n, "ann", "k1", id); err != nil || again != ack {
		t.Fatalf("a resend: %+v, %v; want the first ack %+v", again, err, ack)
	}
	for _, s := range []*fakeSession{ann2, bob, cid} {
		eventually.Within(t, 5*time.Second, s.id+" to get the message", func() bool { return slices.Equal(s.seqs(), []uint64{1}) })
		s.mu.Lock()
		m := s.messages[0]
		s.mu.Unlock()
		if m.To != "" || m.From != "ann" || m.Conversation != string(id) {
			t.Fatalf("%s got %+v, want ann's message with no to", s.id, m)
		}
	}
	if _, err := sendTo(n, "eve", "k2", id); !errors.Is(err, conversation.ErrNotFound) {
		t.Fatalf("a non-member's send: %v, want not found", err)
	}
	if _, err := n.app.Groups.ChangeMembers.Handle(ctx, application.ChangeMembersCommand{By: "ann", Conversation: id, Remove: []user.ID{"cid"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sendTo(n, "cid", "k3", id); !errors.Is(err, conversation.ErrNotFound) {
		t.Fatalf("a removed member's send: %v, want not found", err)
	}
	if _, err := sendTo(n, "bob", "k4", id); err != nil {
		t.Fatal(err)
	}
	eventually.Within(t, 5*time.Second, "ann's sessions to get bob's message", func() bool {
		return slices.Equal(ann1.seqs(), []uint64{2}) && slices.Equal(ann2.seqs(), []uint64{1, 2})
	})
	// cid, removed, gets nothing more; eve never got anything.
	if got := cid.seqs(); !slices.Equal(got, []uint64{1}) || len(eve.seqs()) != 0 {
		t.Fatalf("cid got %v and eve %v after cid's removal", got, eve.seqs())
	}

	// bob reads: the receipt goes to bob's sessions only.
	if err := n.app.MarkReceipts.Handle(ctx, application.MarkReadCommand{Reader: "bob", Conversation: id, UpTo: 2}); err != nil {
		t.Fatal(err)
	}
	eventually.Within(t, 5*time.Second, "bob's receipt", func() bool {
		for _, r := range bob.receiptsSeen() {
			if r.User == "bob" && r.ReadUpTo == 2 {
				return true
			}
		}
		return false
	})
	for _, r := range ann1.receiptsSeen() {
		if r.User == "bob" {
			t.Fatalf("ann was pushed bob's receipt %+v", r)
		}
	}
	// bob edits his message: every member's sessions get the update.
	changed, err := n.app.Edit.Handle(ctx, application.EditMessageCommand{Author: "bob", ClientID: "e1", Conversation: id, Seq: 2, Body: "edited"})
	if err != nil || changed.Rev != 1 {
		t.Fatalf("bob's edit in the group: %+v, %v", changed, err)
	}
	for _, s := range []*fakeSession{ann1, ann2, bob} {
		eventually.Within(t, 5*time.Second, s.id+" to get the update", func() bool {
			u := s.updatesSeen()
			return len(u) == 1 && u[0].Seq == 2 && u[0].Body == "edited"
		})
	}
	if len(cid.updatesSeen()) != 0 {
		t.Fatalf("cid, removed, got %+v", cid.updatesSeen())
	}

	// ann has bob's message unread; bob has read everything.
	eventually.Within(t, 5*time.Second, "the lists", func() bool {
		unread := map[user.ID]int{}
		for _, u := range []user.ID{"ann", "bob"} {
			list, err := n.app.Conversations.Handle(ctx, u)
			if err != nil || len(list) != 1 {
				return false
			}
			unread[u] = list[0].Unread
		}
		return unread["ann"] == 1 && unread["bob"] == 0
	})
}

func TestSendByADirectConversationsID(t *testing.T) {
	n := newNode(t, testConfig(), memory.NewEventStore())
	first := send(t, n, "ann", "k1", "bob", "hi")
	ack, err := sendTo(n, "bob", "k2", first.Conversation)
	if err != nil || ack.Conversation != first.Conversation || ack.Seq != 2 {
		t.Fatalf("bob's send by id: %+v, %v", ack, err)
	}
	page, err := n.app.History.Handle(context.Background(), application.HistoryQuery{Reader: "ann", Conversation: first.Conversation})
	if err != nil || len(page.Messages) != 2 || page.Messages[1].To != "ann" {
		t.Fatalf("history: %+v, %v; want bob's message to ann", page.Messages, err)
	}
	if _, err := sendTo(n, "eve", "k3", first.Conversation); !errors.Is(err, conversation.ErrNotFound) {
		t.Fatalf("an outsider's send by id: %v, want not found", err)
	}
	if _, err := sendTo(n, "ann", "k4", conversation.IDFor("ann", "cid")); !errors.Is(err, conversation.ErrNotFound) {
		t.Fatalf("a send by the id of a conversation not started: %v, want not found", err)
	}
}
