package application_test

import (
	"context"
	"testing"
	"time"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/tests/eventually"
)

// A user who writes to a new contact is told when the contact comes online
// on another node, though neither the read model nor the bus has shown the
// new conversation to the writer's node yet: the node learns the pair the
// moment its own commit succeeds.
func TestPresencePeersIncludeAConversationTheMomentItCommits(t *testing.T) {
	store := memory.NewEventStore()
	// No projector and no broadcast subscriber: nothing comes back.
	bus := newBus(t, store, 6*time.Second)
	_ = bus.Start(context.Background())
	t.Cleanup(func() { _ = bus.Stop(context.Background()) })
	rm, signals := memory.NewReadModel(), memory.NewSignals()
	var apps [2]*application.Application
	for i := range apps {
		cfg := testConfig()
		cfg.Presence = application.PresenceConfig{Node: []string{"node1", "node2"}[i], Heartbeat: testHeartbeat, Grace: testGrace}
		app, err := application.New(cfg, store, bus, rm, memory.Clock{}, memory.IDs{},
			application.PresencePorts{Signals: signals, LastSeen: memory.NewLastSeen()})
		if err != nil {
			t.Fatal(err)
		}
		_ = app.Presence.Start(context.Background())
		t.Cleanup(func() { _ = app.Presence.Stop(context.Background()) })
		apps[i] = app
	}
	_ = signals.Start(context.Background())
	t.Cleanup(func() { _ = signals.Stop(context.Background()) })

	n1, n2 := &node{app: apps[0], store: store, rm: rm, bus: bus}, &node{app: apps[1], store: store, rm: rm, bus: bus}
	alice := connect(t, n1, "a1", "alice")
	send(t, n1, "alice", "k1", "bob", "hello, new contact")
	connect(t, n2, "b1", "bob")
	eventually.True(t, "alice to see bob online", func() bool {
		p, ok := lastPresence(alice, "bob")
		return ok && p.Online
	})
	if views, _ := rm.ListFor(context.Background(), "alice", 10); len(views) != 0 {
		t.Fatalf("the read model shows %+v, so the test proves nothing", views)
	}
}
