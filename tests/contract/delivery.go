package contract

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/evchat/chatd/ports"

	"github.com/evchat/chatd/tests/eventually"
)

// testDeliveryRoutes: Deliver gives each node what its route reaches,
// published or republished, while a cluster group gets every commit.
func testDeliveryRoutes(t *testing.T, features TxBusFeatures, newBus TxBusFactory) {
	t.Run("delivery takes what is routed to its node, a cluster group everything", func(t *testing.T) {
		t.Parallel()
		bus := newBus(t, newScriptedHandler(ports.TxCommit, ports.TxCommit), 2)
		inboxes := subscribeDelivery(bus)
		grouped := subscribeGroup(t, bus)
		bus.Start(t)
		for i, node := range bus.Nodes {
			if node.Routed() != features.Routes {
				t.Fatalf("node %s says routed %v, want %v", bus.NodeIDs[i], node.Routed(), features.Routes)
			}
		}
		a, b := bus.NodeIDs[0], bus.NodeIDs[1]
		stream := uniqueName(t, "s")
		toA, toAll, toNone, republishedToB := sampleCommit(stream, 1), sampleCommit(stream, 2), sampleCommit(stream, 3), sampleCommit(stream, 4)
		toA.Route, toNone.Route, republishedToB.Route = ports.RouteTo(a), ports.RouteTo(), ports.RouteTo(b)
		for _, c := range []ports.Commit{toA, toAll, toNone} {
			if state, err := bus.Publisher.Publish(context.Background(), c); state != ports.TxCommit {
				t.Fatalf("publish %s: %v, %v", c.ID, state, err)
			}
		}
		if err := bus.Publisher.Republish(context.Background(), republishedToB); err != nil {
			t.Fatalf("republish: %v", err)
		}
		all := []ports.Commit{toA, toAll, toNone, republishedToB}
		for _, c := range all {
			eventually.Within(t, features.Settle, "the cluster group to get "+c.ID, func() bool { return grouped.count(c.ID) >= 1 })
		}
		want := map[string][]ports.Commit{a: {toA, toAll}, b: {toAll, republishedToB}}
		if !features.Routes {
			want = map[string][]ports.Commit{a: all, b: all}
		}
		for i, node := range bus.NodeIDs {
			for _, c := range want[node] {
				eventually.Within(t, features.Settle, fmt.Sprintf("node %s to get %s", node, c.ID), func() bool { return inboxes[i].count(c.ID) >= 1 })
			}
		}
		time.Sleep(features.Quiet)
		for i, node := range bus.NodeIDs {
			got := 0
			for _, c := range all {
				got += inboxes[i].count(c.ID)
			}
			if got != len(want[node]) {
				t.Errorf("node %s got %d deliveries of the 4 commits, want %d (%d routed to it, each once)", node, got, len(want[node]), len(want[node]))
			}
		}
	})
}
