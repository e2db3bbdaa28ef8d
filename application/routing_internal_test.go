package application

import (
	"slices"
	"testing"
	"time"

	"github.com/evchat/chatd/domain/presence"
	"github.com/evchat/chatd/ports"
)

func TestRouterRules(t *testing.T) {
	const heartbeat, window = 5 * time.Second, 7500 * time.Millisecond
	started := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	settled := started.Add(time.Minute)
	holds := func(node string, changedAgo time.Duration) presence.Holding {
		return presence.Holding{Node: node, Present: true, ChangedAt: settled.Add(-changedAgo)}
	}
	left := func(node string, changedAgo time.Duration) presence.Holding {
		return presence.Holding{Node: node, ChangedAt: settled.Add(-changedAgo)}
	}
	tests := []struct {
		name     string
		now      time.Time
		holdings []presence.Holding
		quietest time.Duration // ago; zero when no other node is known
		withSelf bool
		want     ports.Route
	}{
		{name: "warming up: peers' heartbeats may not have come yet",
			now: started.Add(heartbeat + window - time.Millisecond), withSelf: true, want: ports.RouteToAll()},
		{name: "warmed up, nobody holds the users: this node only, for its republisher",
			now: started.Add(heartbeat + window), withSelf: true, want: ports.RouteTo("a")},
		{name: "a signal that concerns nobody held anywhere goes nowhere",
			now: settled, want: ports.RouteTo()},
		{name: "the nodes that hold the users, this node included",
			now: settled, holdings: []presence.Holding{holds("b", time.Minute)}, quietest: time.Second,
			withSelf: true, want: ports.RouteTo("a", "b")},
		{name: "a node holding both users is named once",
			now: settled, holdings: []presence.Holding{holds("c", time.Minute), holds("b", time.Minute), holds("c", time.Minute)},
			quietest: time.Second, want: ports.RouteTo("b", "c")},
		{name: "a user held here only, for a signal",
			now: settled, holdings: []presence.Holding{holds("a", 0)}, want: ports.RouteTo("a")},
		{name: "this node's own fresh entry is sure: it knows its sessions",
			now: settled, holdings: []presence.Holding{holds("a", 0), holds("b", time.Minute)}, quietest: time.Second,
			withSelf: true, want: ports.RouteTo("a", "b")},
		{name: "another node's entry changed within the window: the user is moving",
			now: settled, holdings: []presence.Holding{holds("b", window-time.Millisecond)}, quietest: time.Second,
			withSelf: true, want: ports.RouteToAll()},
		{name: "another node's entry changed just a window ago is settled",
			now: settled, holdings: []presence.Holding{holds("b", window)}, quietest: time.Second,
			withSelf: true, want: ports.RouteTo("a", "b")},
		{name: "a fresh leave is a move too",
			now: settled, holdings: []presence.Holding{left("b", time.Second)}, quietest: time.Second,
			withSelf: true, want: ports.RouteToAll()},
		{name: "an old leave routes nowhere",
			now: settled, holdings: []presence.Holding{left("b", time.Minute)}, quietest: time.Second,
			withSelf: true, want: ports.RouteTo("a")},
		{name: "a node, holding the users or not, not heard within a heartbeat and the window: a join of its may be in flight",
			now: settled, holdings: []presence.Holding{holds("b", time.Minute)},
			quietest: heartbeat + window + time.Millisecond, withSelf: true, want: ports.RouteToAll()},
		{name: "a node heard just within the bound",
			now: settled, holdings: []presence.Holding{holds("b", time.Minute)},
			quietest: heartbeat + window, withSelf: true, want: ports.RouteTo("a", "b")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := NewManualClock(tt.now)
			r := router{self: "a", clock: clock, startedAt: started, heartbeat: heartbeat, window: window}
			w := whereabouts{holdings: tt.holdings}
			if tt.quietest > 0 {
				w.quietestHeard = tt.now.Add(-tt.quietest)
			}
			got := r.route(w, tt.withSelf)
			if got.Limited != tt.want.Limited || !slices.Equal(got.Nodes, tt.want.Nodes) {
				t.Fatalf("route = %+v, want %+v", got, tt.want)
			}
		})
	}
}
