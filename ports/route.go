package ports

// Route says which nodes' delivery consumers a commit or a signal must
// reach: the nodes that hold a session it concerns, as the sending node's
// registry knows them. The zero Route reaches every node, so that whatever
// carries no route (a commit read back from the store, a signal of the
// registry itself, a node that cannot be sure) is delivered everywhere, as
// in broadcast mode; routing may make delivery late, never absent.
type Route struct {
	// Limited says that only Nodes need it; Nodes may then be empty (no
	// session anywhere concerns it).
	Limited bool
	Nodes   []string
}

// RouteToAll reaches every node.
func RouteToAll() Route { return Route{} }

// RouteTo reaches only nodes.
func RouteTo(nodes ...string) Route { return Route{Limited: true, Nodes: nodes} }

// Reaches tells whether node's delivery consumer gets what carries r.
func (r Route) Reaches(node string) bool {
	if !r.Limited {
		return true
	}
	for _, n := range r.Nodes {
		if n == node {
			return true
		}
	}
	return false
}

// Routing tells whether what a node's delivery receives is limited by
// Route. A node that receives every commit anyway has no use for the work
// routing needs beside it: working out routes, forwarding what was routed
// elsewhere, catching up a session that has just opened.
type Routing interface {
	// Routed is true when Deliver takes only what is routed to this node.
	// It is known once the adapter has started: a broker may refuse to
	// filter, and the node then falls back to broadcast.
	Routed() bool
}
