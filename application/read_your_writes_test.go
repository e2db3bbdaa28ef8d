package application_test

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
	"github.com/evchat/chatd/tests/eventually"
)

// heldProjector is a projector that lags as much as the test wants: it
// keeps the batches the bus hands it until released.
type heldProjector struct {
	projector *application.Projector
	mu        sync.Mutex
	held      []ports.Commit
}

func (h *heldProjector) Handle(_ context.Context, commits []ports.Commit) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held = append(h.held, commits...)
	return nil
}

func (h *heldProjector) release(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	held := h.held
	h.held = nil
	h.mu.Unlock()
	if err := h.projector.Handle(context.Background(), held); err != nil {
		t.Fatal(err)
	}
}

// newLaggingNode is a node on clock whose read model shows nothing until
// the test releases the projector; delivery to its sessions runs as usual.
func newLaggingNode(t *testing.T, clock ports.Clock) (*node, *heldProjector) {
	t.Helper()
	return newLaggingNodeOver(t, clock, func(rm *memory.ReadModel) ports.ReadModel { return rm })
}

// newLaggingNodeOver is newLaggingNode with the application reading its
// read model through what wrap makes of it.
func newLaggingNodeOver(t *testing.T, clock ports.Clock, wrap func(*memory.ReadModel) ports.ReadModel) (*node, *heldProjector) {
	t.Helper()
	store := memory.NewEventStore()
	bus := newBus(t, store, 6*time.Second)
	rm := memory.NewReadModel()
	app, err := application.New(testConfig(), store, bus, wrap(rm), clock, memory.IDs{}, memoryPresence())
	if err != nil {
		t.Fatal(err)
	}
	held := &heldProjector{projector: app.Projector}
	bus.Cluster("projector", held.Handle)
	bus.Deliver("delivery", app.Delivery.Handle)
	_ = bus.Start(context.Background())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		app.Delivery.Wait(ctx)
		_ = bus.Stop(ctx)
	})
	return &node{app: app, store: store, rm: rm, bus: bus}, held
}

func listOf(t *testing.T, n *node, u user.ID) []application.ConversationSummary {
	t.Helper()
	list, err := n.app.Conversations.Handle(context.Background(), u)
	if err != nil {
		t.Fatalf("list of %s: %v", u, err)
	}
	return list
}

// The list shows what this node acked to the user, pushed to their
// session, or paged to them by sync, and the markers they wrote, before
// the projector has passed any of it; and it says then exactly what the
// read model says once the projector has.
func TestListShowsWhatThisNodeShowedTheUserBeforeTheProjection(t *testing.T) {
	clock := application.NewManualClock(time.Now())
	n, projector := newLaggingNode(t, clock)
	ctx := context.Background()
	bob := connect(t, n, "b1", "bob")
	var toBob application.Ack
	for _, k := range []string{"k1", "k2", "k3"} {
		toBob = send(t, n, "alice", k, "bob", "to bob "+k)
	}
	// The list orders by the last message's time, kept to the millisecond.
	clock.Add(time.Millisecond)
	toCarol := send(t, n, "alice", "k4", "carol", "to carol")
	eventually.True(t, "bob's session to get the three messages", func() bool { return len(bob.seqs()) == 3 })
	if _, err := n.app.Sync.Handle(ctx, application.SyncQuery{Reader: "carol", Conversation: toCarol.Conversation}); err != nil {
		t.Fatal(err)
	}
	if err := n.app.MarkReceipts.Handle(ctx, application.MarkReadCommand{Reader: "bob", Conversation: toBob.Conversation, UpTo: 2}); err != nil {
		t.Fatal(err)
	}
	if views, _ := n.rm.ListFor(ctx, "alice", 10); len(views) != 0 {
		t.Fatalf("the read model shows %+v before the projector ran", views)
	}

	type row struct {
		conv     string
		peer     user.ID
		lastSeq  uint64
		unread   int
		readUpTo uint64
		lastBody string
	}
	tests := []struct {
		user user.ID
		how  string
		want []row
	}{
		{"alice", "acked", []row{
			{string(toCarol.Conversation), "carol", 1, 0, 0, "to carol"},
			{string(toBob.Conversation), "bob", 3, 0, 0, "to bob k3"},
		}},
		{"bob", "pushed live, then marked read", []row{{string(toBob.Conversation), "alice", 3, 1, 2, "to bob k3"}}},
		{"carol", "paged by sync", []row{{string(toCarol.Conversation), "alice", 1, 1, 0, "to carol"}}},
	}
	before := map[user.ID][]application.ConversationSummary{}
	for _, tt := range tests {
		t.Run(string(tt.user)+" "+tt.how, func(t *testing.T) {
			list := listOf(t, n, tt.user)
			before[tt.user] = list
			if len(list) != len(tt.want) {
				t.Fatalf("list %+v, want %d conversations", list, len(tt.want))
			}
			for i, w := range tt.want {
				got := list[i]
				if got.Conversation != w.conv || got.Peer != w.peer || got.LastSeq != w.lastSeq || got.Unread != w.unread ||
					got.ReadUpTo != w.readUpTo || got.LastMessage == nil || got.LastMessage.Seq != w.lastSeq || got.LastMessage.Body != w.lastBody {
					t.Errorf("row %d: %+v (last message %+v), want %+v", i, got, got.LastMessage, w)
				}
			}
		})
	}

	projector.release(t)
	for _, tt := range tests {
		if after := listOf(t, n, tt.user); !reflect.DeepEqual(after, before[tt.user]) {
			t.Errorf("%s: the projected list %+v differs from the one caught up from the store %+v", tt.user, after, before[tt.user])
		}
	}
}

// projectedAfterList is a read model on which the projector catches up
// right after a list was read, before anything else is.
type projectedAfterList struct {
	*memory.ReadModel
	afterList func()
}

func (p *projectedAfterList) ListFor(ctx context.Context, u user.ID, limit int) ([]ports.ConversationView, error) {
	views, err := p.ReadModel.ListFor(ctx, u, limit)
	if p.afterList != nil {
		p.afterList()
	}
	return views, err
}

// A conversation the list lacked, but that the read model shows complete
// a moment later, is listed: it was projected between the two reads.
func TestListShowsAConversationProjectedWhileItWasRead(t *testing.T) {
	var rm *projectedAfterList
	n, projector := newLaggingNodeOver(t, memory.Clock{}, func(m *memory.ReadModel) ports.ReadModel {
		rm = &projectedAfterList{ReadModel: m}
		return rm
	})
	ack := send(t, n, "alice", "k1", "bob", "hello")
	eventually.True(t, "the commit to reach the projector", func() bool {
		projector.mu.Lock()
		defer projector.mu.Unlock()
		return len(projector.held) > 0
	})
	rm.afterList = func() { projector.release(t) }
	list := listOf(t, n, "alice")
	if len(list) != 1 || list[0].Conversation != string(ack.Conversation) || list[0].LastSeq != 1 {
		t.Fatalf("alice's list: %+v, want the conversation with bob at seq 1", list)
	}
}

// A member pushed a group message, or told of their addition, on this node
// finds the group in their list with that message before the projector
// has passed either.
func TestListShowsAGroupThisNodeShowedTheMember(t *testing.T) {
	n, projector := newLaggingNode(t, memory.Clock{})
	// Sessions that never report a write: a delivered marker, which
	// raises the position too, would hide whether the push did.
	cid, closeCid := register(n, "c1", "cid")
	defer closeCid()
	dan, closeDan := register(n, "d1", "dan")
	defer closeDan()
	id := createGroup(t, n, "ann", "bob", "cid").Conversation
	eventually.True(t, "the group to be projected", func() bool {
		projector.release(t)
		views, err := n.rm.ListFor(context.Background(), "cid", 10)
		return err == nil && len(views) == 1
	})
	if list := listOf(t, n, "cid"); len(list) != 1 || list[0].LastSeq != 0 {
		t.Fatalf("cid's list once the group is projected: %+v", list)
	}
	if _, err := n.app.Groups.ChangeMembers.Handle(context.Background(), application.ChangeMembersCommand{By: "ann", Conversation: id, Add: []user.ID{"dan"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sendTo(n, "ann", "k1", id); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, "cid's and dan's sessions to get the message", func() bool { return len(cid.seqs()) == 1 && len(dan.seqs()) == 1 })
	for _, u := range []user.ID{"cid", "dan"} {
		list := listOf(t, n, u)
		if len(list) != 1 || list[0].Conversation != string(id) || list[0].LastSeq != 1 || list[0].Unread != 1 {
			t.Errorf("%s's list before the projector passed the message: %+v, want the group with 1 unread", u, list)
		}
	}
}
