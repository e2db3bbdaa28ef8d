package application_test

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// A group message pushed live moves the delivered marker of the member
// whose session wrote it, as a direct message moves its recipient's: the
// group status rule ("delivered when every other member has it") needs it.
func TestALiveGroupMessageMovesTheMembersDeliveredMarker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, testConfig(), memory.NewEventStore())
		connect(t, n, "b1", "bob")
		id := createGroup(t, n, "ann", "bob", "cid").Conversation
		if _, err := sendTo(n, "ann", "k1", id); err != nil {
			t.Fatal(err)
		}
		settle(time.Second)
		receipts, err := n.app.Receipts.Handle(context.Background(), application.ReceiptsQuery{Reader: "ann", Conversation: id})
		if err != nil {
			t.Fatal(err)
		}
		want := []application.MemberReceipt{{User: "ann"}, {User: "bob", DeliveredUpTo: 1}, {User: "cid"}}
		if !slices.Equal(receipts, want) {
			t.Errorf("receipts %+v, want bob's delivered marker at 1", receipts)
		}
	})
}

// blockedSession holds the pushes of its messages until released, so that
// a test can hold a delivery between finding a message's recipients and
// pushing it to them.
type blockedSession struct {
	*fakeSession
	entered, release chan struct{}
}

func (s *blockedSession) PushMessage(m ports.MessageView) bool {
	s.entered <- struct{}{}
	<-s.release
	return s.fakeSession.PushMessage(m)
}

// A message committed beside a member's removal, whose delivery found its
// recipients before the removal came and pushes after it, does not reach
// the removed member's session after its removal frame: "a removed
// member gets nothing more".
func TestNothingOfAGroupIsPushedAfterTheRemovalFrame(t *testing.T) {
	n := newUnsubscribedNode(t)
	app, ctx := n.app, context.Background()
	id := createGroup(t, n, "ann", "bob", "cid").Conversation
	if _, err := sendTo(n, "ann", "k1", id); err != nil {
		t.Fatal(err)
	}
	removeMember(t, n, id, "bob")
	changes, messages := groupCommits(t, n, id, 2, 1)

	ann := &blockedSession{fakeSession: &fakeSession{id: "a1", user: "ann"}, entered: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(app.Sessions.Register(ann))
	bob := connect(t, n, "b1", "bob")
	_ = app.Delivery.Handle(ctx, changes[:1])
	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		_ = app.Delivery.Handle(ctx, messages)
	}()
	// The sender's session comes first among the recipients.
	<-ann.entered
	_ = app.Delivery.Handle(ctx, changes[1:])
	close(ann.release)
	<-delivered

	if got := bob.membersSeen(); len(got) != 2 || got[1].Change != ports.MemberLeft {
		t.Fatalf("bob was told %+v, want his addition and removal", got)
	}
	if got := bob.seqs(); len(got) != 0 {
		t.Errorf("bob was pushed %v after his removal frame", got)
	}
}

// A message posted after a removal is not pushed to the removed member by
// a node whose delivery has not seen the removal yet: it names the
// membership it was posted under, and delivery reads the group up to it.
func TestAMessagePostedAfterARemovalMissesTheRemovedMember(t *testing.T) {
	n := newUnsubscribedNode(t)
	ctx := context.Background()
	id := createGroup(t, n, "ann", "bob", "cid").Conversation
	removeMember(t, n, id, "bob")
	if _, err := sendTo(n, "ann", "k1", id); err != nil {
		t.Fatal(err)
	}
	changes, messages := groupCommits(t, n, id, 2, 1)
	bob, cid := connect(t, n, "b1", "bob"), connect(t, n, "c1", "cid")
	_ = n.app.Delivery.Handle(ctx, changes[:1])
	_ = n.app.Delivery.Handle(ctx, messages)
	if got := cid.seqs(); !slices.Equal(got, []uint64{1}) {
		t.Errorf("cid, a member, was pushed %v, want [1]", got)
	}
	if got := bob.seqs(); len(got) != 0 {
		t.Errorf("bob, removed before the message was posted, was pushed %v", got)
	}
}

// newUnsubscribedNode is a node whose delivery the bus never calls: the
// test hands it the commits itself, in the order it wants.
func newUnsubscribedNode(t *testing.T) *node {
	t.Helper()
	store := memory.NewEventStore()
	bus := newBus(t, store, testConfig().TxTimeout)
	app, err := application.New(testConfig(), store, bus, memory.NewReadModel(), memory.Clock{}, memory.IDs{}, memoryPresence())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_ = bus.Start(ctx)
	t.Cleanup(func() { app.Delivery.Wait(ctx); _ = bus.Stop(ctx) })
	return &node{app: app, store: store, bus: bus}
}

func removeMember(t *testing.T, n *node, id conversation.ID, u user.ID) {
	t.Helper()
	if _, err := n.app.Groups.ChangeMembers.Handle(context.Background(), application.ChangeMembersCommand{By: "ann", Conversation: id, Remove: []user.ID{u}}); err != nil {
		t.Fatal(err)
	}
}

// groupCommits are the group's stored changes and messages, so many of each.
func groupCommits(t *testing.T, n *node, id conversation.ID, changes, messages int) ([]ports.Commit, []ports.Commit) {
	t.Helper()
	ctx := context.Background()
	c, err := n.store.Load(ctx, conversation.ChangesStream(id), 1, 0)
	if err != nil || len(c) != changes {
		t.Fatalf("changes %v, %v; want %d", c, err, changes)
	}
	m, err := n.store.Load(ctx, conversation.MessagesStream(id), 1, 0)
	if err != nil || len(m) != messages {
		t.Fatalf("messages %v, %v; want %d", m, err, messages)
	}
	return c, m
}
