package application_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
	"github.com/evchat/chatd/tests/eventually"
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
		receipts := receiptsOf(t, n, "ann", id)
		want := []application.MemberReceipt{{User: "ann"}, {User: "bob", DeliveredUpTo: 1}, {User: "cid"}}
		if !slices.Equal(receipts, want) {
			t.Errorf("receipts %+v, want bob's delivered marker at 1", receipts)
		}
	})
}

func receiptsOf(t *testing.T, n *node, reader user.ID, id conversation.ID) []application.MemberReceipt {
	t.Helper()
	receipts, err := n.app.Receipts.Handle(context.Background(), application.ReceiptsQuery{Reader: reader, Conversation: id})
	if err != nil {
		t.Fatal(err)
	}
	return receipts
}

// The members a node writes a group message to get their delivered
// markers in one receipts commit, not one each: a commit each would race
// the others for the receipts stream's next version, hundreds of times a
// second in a large group.
func TestAGroupsMembersOnANodeShareOneDeliveredCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewEventStore()
		n := newNode(t, testConfig(), store)
		for _, u := range []string{"bob", "cid", "dan"} {
			connect(t, n, u+"1", user.ID(u))
		}
		id := createGroup(t, n, "ann", "bob", "cid", "dan").Conversation
		if _, err := sendTo(n, "ann", "k1", id); err != nil {
			t.Fatal(err)
		}
		settle(time.Second)
		receipts := receiptsOf(t, n, "ann", id)
		want := []application.MemberReceipt{{User: "ann"}, {User: "bob", DeliveredUpTo: 1}, {User: "cid", DeliveredUpTo: 1}, {User: "dan", DeliveredUpTo: 1}}
		if !slices.Equal(receipts, want) {
			t.Errorf("receipts %+v, want every member's delivered marker at 1", receipts)
		}
		commits, err := store.Load(context.Background(), conversation.ReceiptsStream(id), 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(commits) != 1 {
			t.Errorf("%d receipts commits, want the three markers in one", len(commits))
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
	var handling sync.WaitGroup
	handling.Go(func() { _ = app.Delivery.Handle(ctx, messages) })
	// The sender's session comes first among the recipients.
	<-ann.entered
	// The removal's frames go to bob first, then to ann, whose session
	// the message holds until released.
	handling.Go(func() { _ = app.Delivery.Handle(ctx, changes[1:]) })
	eventually.True(t, "bob to be told of his removal", func() bool {
		got := bob.membersSeen()
		return len(got) == 2 && got[1].Change == ports.MemberLeft
	})
	close(ann.release)
	handling.Wait()
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

// A membership commit the bus brings twice (republished, forwarded) tells
// each session of it once.
func TestMemberFramesOfACommitBroughtTwiceArePushedOnce(t *testing.T) {
	n := newUnsubscribedNode(t)
	id := createGroup(t, n, "ann", "bob", "cid").Conversation
	removeMember(t, n, id, "cid")
	changes, _ := groupCommits(t, n, id, 2, 0)
	bob := connect(t, n, "b1", "bob")
	for range 2 {
		_ = n.app.Delivery.Handle(context.Background(), changes)
	}
	want := []string{ports.MemberJoined, ports.MemberLeft}
	var got []string
	for _, m := range bob.membersSeen() {
		got = append(got, m.Change)
	}
	if !slices.Equal(got, want) {
		t.Errorf("bob was told %v, want %v: his addition and cid's removal, once each", got, want)
	}
}

// unanswered is a bus whose transactions store their commit and never
// answer, as when a node dies between its local commit and the end of the
// transaction: the client is not acked, and no subscriber hears of it.
type unanswered struct {
	*memory.Bus
	local ports.TransactionHandler
}

func (u unanswered) Publish(ctx context.Context, c ports.Commit) (ports.TxState, error) {
	_, _ = u.local.ExecuteLocal(ctx, c)
	return ports.TxUnknown, errors.New("the node died before the end of the transaction")
}

// A membership change stored by a node that died before it was acked,
// retried on another node, is delivered once the retry has answered for
// it: the retry records nothing, and republishes what it found stored.
func TestARetriedMembershipChangeDeliversTheOneStoredUnanswered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, clock, cfg := memory.NewEventStore(), application.NewManualClock(time.Now()), testConfig()
		bus, local := busAndLocal(t, store, clock, cfg.TxTimeout)
		rm := memory.NewReadModel()
		dying, err := application.New(cfg, store, unanswered{Bus: bus, local: local}, rm, clock, memory.IDs{}, memoryPresence())
		if err != nil {
			t.Fatal(err)
		}
		app, err := application.New(cfg, store, bus, rm, clock, memory.IDs{}, memoryPresence())
		if err != nil {
			t.Fatal(err)
		}
		n := startNode(t, app, store, rm, bus)
		bob := connect(t, n, "b1", "bob")
		id := createGroup(t, n, "ann", "bob").Conversation
		ctx := context.Background()
		addCid := application.ChangeMembersCommand{By: "ann", Conversation: id, Add: []user.ID{"cid"}}
		if _, err := dying.Groups.ChangeMembers.Handle(ctx, addCid); err == nil {
			t.Fatal("a change whose transaction never answered was acked")
		}
		synctest.Wait()
		if got := bob.membersSeen(); len(got) != 1 {
			t.Fatalf("bob was told %+v before the change was published", got)
		}

		g, err := app.Groups.ChangeMembers.Handle(ctx, addCid)
		if err != nil || !slices.Contains(g.Members, "cid") {
			t.Fatalf("the retry: %+v, %v", g, err)
		}
		clock.Add(2 * cfg.RepublishAfter)
		app.Republisher.Sweep(ctx)
		eventually.True(t, "bob to be told cid was added", func() bool {
			got := bob.membersSeen()
			return len(got) == 2 && got[1].User == "cid" && got[1].Change == ports.MemberJoined
		})
	})
}
