package application

import (
	"context"

	"github.com/evchat/chatd/ports"
)

// The consumer groups a node's use cases subscribe with.
const (
	// projectorGroup is the cluster group whose one member projects each commit.
	projectorGroup = "projector"
	// deliveryGroup is the subscription by which each node delivers to its
	// own sessions the commits routed to it.
	deliveryGroup = "delivery"
)

// Subscribe hands the bus the consumers of a node: the projector, once per
// cluster, and delivery, on every node, of what is routed to it. Every node, embedded or clustered,
// in production or in a test, subscribes through here, so that none of them
// runs a different node.
func (a *Application) Subscribe(sub ports.Subscriber) {
	sub.Cluster(projectorGroup, a.Projector.Handle)
	sub.Deliver(deliveryGroup, func(ctx context.Context, commits []ports.Commit) error {
		// Presence learns of new conversations from the same consumer, so
		// that its cached peers need no subscription of their own.
		_ = a.Presence.ObserveCommits(ctx, commits)
		return a.Delivery.Handle(ctx, commits)
	})
}
