// Package presence is the model of who is online across the nodes of a
// cluster and the rules of the ephemeral signals (presence and typing) that
// carry it. Nothing here is an event of a stream: presence is rebuilt from
// the sessions that are open, so a Directory is plain state that each node
// keeps for itself and feeds with what the nodes say.
//
// A user is online while any node lists them. Nodes say so in three ways: a
// join (a user's first session on the node opened), a leave (its last one
// closed), and a heartbeat (the whole set of users the node holds). Each
// carries the node's sequence number, which grows across restarts, so a
// signal that arrives after a newer one about the same user and node is
// ignored instead of undoing it. A user no node lists is announced offline
// only after a grace period, so that a reconnect, to the same node or
// another, does not flap; a node that stops heartbeating is forgotten after
// ForgetAfter, and its users go offline at once, since that silence has
// already been longer than a reconnect takes.
package presence

import (
	"time"

	"github.com/evchat/chatd/domain"
	"github.com/evchat/chatd/domain/user"
)

// MaxQueryUsers bounds a presence query, so that one frame cannot make a
// node read the store for an unbounded list.
const MaxQueryUsers = 200

// ErrQuerySize rejects a query of no user or of more than MaxQueryUsers.
var ErrQuerySize = domain.Errorf(domain.Invalid, "users must list 1-200 user ids")

// Users are the users a presence query asks about: 1-MaxQueryUsers valid
// ids without repeats, as ParseUsers makes them, so that whoever answers
// the query checks none of it again.
type Users []user.ID

// ParseUsers validates a presence query's user ids, dropping repeats while
// keeping the order asked for.
func ParseUsers(ids []string) (Users, error) {
	if len(ids) == 0 || len(ids) > MaxQueryUsers {
		return nil, ErrQuerySize
	}
	out := make([]user.ID, 0, len(ids))
	seen := make(map[user.ID]bool, len(ids))
	for _, s := range ids {
		u, err := user.ParseID(s)
		if err != nil {
			return nil, domain.Errorf(domain.Invalid, "users: %q: %s", s, err.Error())
		}
		if !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	return out, nil
}

// Change is a user's presence as announced to the sessions that share a
// conversation with them: online, or offline since LastSeen.
type Change struct {
	User     user.ID
	Online   bool
	LastSeen time.Time
	// Record says this node is the one to write LastSeen to the store: the
	// user's last session was here, or the node that held it was forgotten
	// (then every node that noticed writes the same time, harmlessly).
	Record bool
}

// entry is what one node last said of one user; a leave is kept as an
// absent entry, so that an older join or heartbeat cannot undo it.
type entry struct {
	present bool
	seq     uint64
	at      time.Time
	// changed is when this directory learnt that present flipped: at
	// unlike it, a heartbeat that repeats what is known leaves it alone.
	changed time.Time
}

type nodeState struct {
	heardAt time.Time
	users   map[user.ID]entry
}

// pending is a user no node lists, waiting for the grace to end.
type pending struct {
	deadline time.Time
	lastSeen time.Time
	record   bool
}

// Directory is one node's view of every node's users.
type Directory struct {
	self        string
	grace       time.Duration
	forgetAfter time.Duration

	nodes   map[string]*nodeState
	where   map[user.ID]int // how many nodes list the user as present
	pending map[user.ID]pending
	// seen remembers when recently offline users were last seen, so an
	// answer right after the offline push agrees with it before the store
	// has the time; entries older than seenMemory are dropped.
	seen map[user.ID]time.Time
}

// seenMemory is how long a Directory remembers a last-seen time itself.
const seenMemory = time.Minute

// NewDirectory returns the view of node self, which is never forgotten.
func NewDirectory(self string, grace, forgetAfter time.Duration) *Directory {
	return &Directory{
		self: self, grace: grace, forgetAfter: forgetAfter,
		nodes: map[string]*nodeState{}, where: map[user.ID]int{},
		pending: map[user.ID]pending{}, seen: map[user.ID]time.Time{},
	}
}

// Online reports whether u is online, a user in the grace period included.
func (d *Directory) Online(u user.ID) bool {
	if d.where[u] > 0 {
		return true
	}
	_, waiting := d.pending[u]
	return waiting
}

// LastSeen is when u was last seen going offline, if this node remembers.
func (d *Directory) LastSeen(u user.ID) (time.Time, bool) {
	t, ok := d.seen[u]
	return t, ok
}

func (d *Directory) node(name string, now time.Time) *nodeState {
	n, ok := d.nodes[name]
	if !ok {
		n = &nodeState{users: map[user.ID]entry{}}
		d.nodes[name] = n
	}
	if now.After(n.heardAt) {
		n.heardAt = now
	}
	return n
}

// Join applies "u's first session opened on node" and returns the change
// it makes, if any.
func (d *Directory) Join(node string, u user.ID, seq uint64, now time.Time) []Change {
	n := d.node(node, now)
	if e, ok := n.users[u]; ok && e.seq >= seq {
		return nil
	}
	return d.set(n, node, u, entry{present: true, seq: seq, at: now}, now, nil)
}

// Leave applies "u's last session on node closed at at".
func (d *Directory) Leave(node string, u user.ID, seq uint64, at, now time.Time) []Change {
	n := d.node(node, now)
	if e, ok := n.users[u]; ok && e.seq >= seq {
		return nil
	}
	return d.set(n, node, u, entry{seq: seq, at: at}, now, nil)
}

// Heartbeat applies a node's whole set of users as of seq: users it lists
// join, users it no longer lists leave, except where a newer join or leave
// has been applied already.
func (d *Directory) Heartbeat(node string, users []user.ID, seq uint64, now time.Time) []Change {
	n := d.node(node, now)
	var changes []Change
	listed := make(map[user.ID]bool, len(users))
	for _, u := range users {
		listed[u] = true
		if e, ok := n.users[u]; ok && e.seq >= seq {
			continue
		}
		changes = d.set(n, node, u, entry{present: true, seq: seq, at: now}, now, changes)
	}
	for u, e := range n.users {
		if listed[u] || e.seq >= seq {
			continue
		}
		changes = d.set(n, node, u, entry{seq: seq, at: now}, now, changes)
		delete(n.users, u)
	}
	return changes
}

// set records e for u on n and appends the change it makes to changes.
func (d *Directory) set(n *nodeState, node string, u user.ID, e entry, now time.Time, changes []Change) []Change {
	old, known := n.users[u]
	was := old.present
	e.changed = now
	if known && was == e.present {
		e.changed = old.changed
	}
	n.users[u] = e
	switch {
	case e.present && !was:
		d.where[u]++
		if d.where[u] == 1 {
			if _, waiting := d.pending[u]; waiting {
				delete(d.pending, u) // back within the grace: no flap
			} else {
				changes = append(changes, Change{User: u, Online: true})
			}
			delete(d.seen, u)
		}
	case !e.present && was:
		d.where[u]--
		if d.where[u] == 0 {
			delete(d.where, u)
			d.pending[u] = pending{deadline: now.Add(d.grace), lastSeen: e.at, record: node == d.self}
		}
	}
	return changes
}

// Tick forgets the nodes silent for longer than ForgetAfter, whose users go
// offline at once unless another node lists them, and announces offline the
// users whose grace has ended. Call it often compared with the grace.
func (d *Directory) Tick(now time.Time) []Change {
	var changes []Change
	for name, n := range d.nodes {
		if name == d.self || now.Sub(n.heardAt) <= d.forgetAfter {
			continue
		}
		delete(d.nodes, name)
		for u, e := range n.users {
			if !e.present {
				continue
			}
			d.where[u]--
			if d.where[u] > 0 {
				continue
			}
			delete(d.where, u)
			delete(d.pending, u)
			changes = append(changes, d.offline(u, n.heardAt, true))
		}
	}
	for u, p := range d.pending {
		if now.Before(p.deadline) {
			continue
		}
		delete(d.pending, u)
		changes = append(changes, d.offline(u, p.lastSeen, p.record))
	}
	for u, t := range d.seen {
		if now.Sub(t) > seenMemory {
			delete(d.seen, u)
		}
	}
	for _, n := range d.nodes {
		// Leaves older than any signal still in flight hold nothing back.
		for u, e := range n.users {
			if !e.present && now.Sub(e.at) > d.forgetAfter {
				delete(n.users, u)
			}
		}
	}
	return changes
}

func (d *Directory) offline(u user.ID, lastSeen time.Time, record bool) Change {
	d.seen[u] = lastSeen
	return Change{User: u, LastSeen: lastSeen, Record: record}
}

// Holding is what one node last said of one user, as routing weighs it.
type Holding struct {
	Node    string
	Present bool
	// ChangedAt is when this directory learnt that Present flipped.
	ChangedAt time.Time
}

// Holdings returns what every node last said of u: the nodes that hold a
// session of u, and those where u left recently.
func (d *Directory) Holdings(u user.ID) []Holding {
	var out []Holding
	for name, n := range d.nodes {
		if e, ok := n.users[u]; ok {
			out = append(out, Holding{Node: name, Present: e.present, ChangedAt: e.changed})
		}
	}
	return out
}

// Holds tells whether node holds a session of u, as last said.
func (d *Directory) Holds(node string, u user.ID) bool {
	n, ok := d.nodes[node]
	return ok && n.users[u].present
}

// QuietestPeer is when the node other than self heard from least recently
// was last heard, if this directory knows another node.
func (d *Directory) QuietestPeer() (heardAt time.Time, ok bool) {
	for name, n := range d.nodes {
		if name != d.self && (!ok || n.heardAt.Before(heardAt)) {
			heardAt, ok = n.heardAt, true
		}
	}
	return heardAt, ok
}
