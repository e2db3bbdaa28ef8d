package application

import (
	"slices"
	"time"

	"github.com/evchat/chatd/domain/presence"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// whereabouts is what this node's presence directory says of the users a
// commit or a signal concerns, for routing it.
type whereabouts struct {
	holdings []presence.Holding
	// quietestHeard is when the node heard from least recently (not this
	// one) was last heard; zero when this node knows no other.
	quietestHeard time.Time
}

// router decides where a commit or a typing signal is delivered live: the
// nodes that hold a session of the users it concerns, as this node's
// directory knows them, or every node (the zero Route) whenever that
// knowledge may be wrong:
//   - the directory is still warming up: until a heartbeat of every live
//     node has had time to arrive, it lacks users who connected earlier;
//   - another node's entry of one of the users changed within the
//     propagation window: the user is moving, and more of the move may be
//     in flight;
//   - a node has not been heard from within a heartbeat and the window: its
//     signals are late or lost, a join among them, and silence is the only
//     sign of it.
//
// This node's own entries never make it unsure: it knows its sessions.
// What the rules cannot see, a join on another node that has not arrived
// yet, the receiving node catches up on by itself (handOver).
type router struct {
	self      string
	clock     ports.Clock
	startedAt time.Time
	heartbeat time.Duration
	window    time.Duration
}

// route is where what concerns w must go; withSelf adds this node whatever
// w says, for commits, which this node must see come back (the
// republisher waits for them).
func (r router) route(w whereabouts, withSelf bool) ports.Route {
	now := r.clock.Now()
	silence := r.heartbeat + r.window
	if now.Sub(r.startedAt) < silence {
		return ports.RouteToAll()
	}
	if !w.quietestHeard.IsZero() && now.Sub(w.quietestHeard) > silence {
		return ports.RouteToAll()
	}
	var nodes []string
	if withSelf {
		nodes = append(nodes, r.self)
	}
	for _, h := range w.holdings {
		if h.Node == r.self {
			if h.Present && !withSelf {
				nodes = append(nodes, r.self)
			}
			continue
		}
		if now.Sub(h.ChangedAt) < r.window {
			return ports.RouteToAll()
		}
		if h.Present {
			nodes = append(nodes, h.Node)
		}
	}
	slices.Sort(nodes)
	return ports.RouteTo(slices.Compact(nodes)...)
}

// routeOf is where what concerns users goes, by this node's directory now.
func (p *Presence) routeOf(withSelf bool, users ...user.ID) ports.Route {
	if !p.routed() {
		return ports.RouteToAll()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var w whereabouts
	for _, u := range users {
		w.holdings = append(w.holdings, p.dir.Holdings(u)...)
	}
	w.quietestHeard, _ = p.dir.QuietestPeer()
	return p.router.route(w, withSelf)
}

// routeOfCommit is where a commit of a conversation between users goes:
// the nodes of their sessions, the sender's other ones included, and this
// node.
func (p *Presence) routeOfCommit(users ...user.ID) ports.Route {
	return p.routeOf(true, users...)
}
