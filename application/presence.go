package application

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/presence"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// PresenceConfig tunes presence; a zero duration takes its default.
type PresenceConfig struct {
	// Node names this node in the signals; it must differ between nodes.
	// A zero Node takes a fresh id, so that nodes built without one never
	// take each other's signals for their own.
	Node string
	// Heartbeat is how often the node tells the others whom it holds
	// (CHAT_PRESENCE_HEARTBEAT); a node silent for three is forgotten.
	Heartbeat time.Duration
	// Grace is how long a user whose last session closed stays online, so
	// that a reconnect does not flap (CHAT_PRESENCE_GRACE).
	Grace time.Duration
	// PeersTTL is how long a user's conversation peers are cached.
	PeersTTL time.Duration
	// PropagationWindow is how long the other nodes may take to learn of
	// a session opening or closing here (CHAT_PROPAGATION_WINDOW): while
	// a user's entry is younger, what concerns them goes to every node,
	// a sender forwards what it routed without a node it learns of
	// (routeForwarder), and a session that opened here is caught up on
	// what was committed within it (handOver). Zero takes one and a half
	// heartbeats: a join the bus lost is repaired by the next heartbeat,
	// at most one heartbeat later, and the half on top is over a hundred
	// times the bus's p99 latency (21 ms measured here), for a bus slowed
	// by load.
	PropagationWindow time.Duration
}

// DefaultPresenceConfig is what PROTOCOL.md promises: 5 s and 5 s.
func DefaultPresenceConfig() PresenceConfig {
	return PresenceConfig{Heartbeat: 5 * time.Second, Grace: 5 * time.Second, PeersTTL: 30 * time.Second}
}

// withDefaults fills the zero fields of c.
func (c PresenceConfig) withDefaults(ids ports.IDs) PresenceConfig {
	def := DefaultPresenceConfig()
	if c.Node == "" {
		c.Node = ids.NewID()
	}
	c.Heartbeat = positiveOr(c.Heartbeat, def.Heartbeat)
	c.Grace = positiveOr(c.Grace, def.Grace)
	c.PeersTTL = positiveOr(c.PeersTTL, def.PeersTTL)
	c.PropagationWindow = positiveOr(c.PropagationWindow, c.Heartbeat+c.Heartbeat/2)
	return c
}

func positiveOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// PresencePorts are the ports presence and typing run on, beside those of
// the stored use cases: the signal bus between nodes, the store of
// last-seen times, an optional observer for metrics, and whether delivery
// is routed (nil: it is, and the node does the hand-over work).
type PresencePorts struct {
	Signals  ports.Signals
	LastSeen ports.LastSeenStore
	Observer PresenceObserver
	Routing  ports.Routing
}

// missedHeartbeats is how many heartbeats a node may miss before it is forgotten.
const missedHeartbeats = 3

// Presence keeps this node's view of who is online on every node, tells the
// other nodes of the sessions opening and closing here, and pushes presence
// changes to the sessions here that share a conversation with the user.
//
// The sending node publishes one signal per change whatever the number of
// the user's conversations: the fan-out happens on each receiving node, for
// the sessions it holds, from the user's peers in the read model (cached
// briefly, and kept current by the conversations started meanwhile).
// Signals of this node are applied here directly and ignored when the bus
// brings them back, so one node needs no bus to be right about itself.
// Its goroutines (presence_loops.go) run between Start and Stop.
type Presence struct {
	cfg       PresenceConfig
	outbox    *signalOutbox
	lastSeen  ports.LastSeenStore
	sessions  *Sessions
	clock     ports.Clock
	observer  PresenceObserver
	peers     *peerCache
	forgetAge time.Duration
	log       *slog.Logger
	// handOver catches up the sessions opening here on what was routed
	// before the other nodes knew of them, and forwarder forwards what
	// this node routed before it knew of a session elsewhere; they run
	// with presence, whose directory's blind spots they cover.
	handOver  *handOver
	forwarder *routeForwarder
	// routed tells whether delivery is routed at all (ports.Routing); when
	// it is not, everything goes everywhere and nothing is handed over.
	routed func() bool

	mu     sync.Mutex
	router router
	dir    *presence.Directory
	local  map[user.ID]int // open sessions per user on this node
	seq    uint64

	// changes holds the changes for the announcer goroutine, which may
	// read the store, so that whoever makes them never waits on it.
	changes *workQueue[presence.Change]

	// stop is made with presence, so that Stop ends a presence that
	// never started as well as one that did.
	stop     chan struct{}
	stopOnce sync.Once
	done     sync.WaitGroup
}

// newPresence builds presence; cfg has its defaults. It subscribes to
// nothing: New wires it to the signals, the sessions and the commits.
func newPresence(cfg PresenceConfig, lastSeen ports.LastSeenStore, observer PresenceObserver, outbox *signalOutbox, sessions *Sessions, peers *peerCache, clock ports.Clock, log *slog.Logger) *Presence {
	forget := missedHeartbeats * cfg.Heartbeat
	return &Presence{
		cfg: cfg, outbox: outbox, lastSeen: lastSeen, sessions: sessions, clock: clock,
		observer: observer, peers: peers, forgetAge: forget, log: log,
		router: router{self: cfg.Node, clock: clock, startedAt: clock.Now(), heartbeat: cfg.Heartbeat, window: cfg.PropagationWindow},
		dir:    presence.NewDirectory(cfg.Node, cfg.Grace, forget),
		local:  map[user.ID]int{}, changes: newWorkQueue[presence.Change](), stop: make(chan struct{}),
	}
}

// nextSeq numbers a signal of this node; p.mu is held. It starts from the
// clock so that a restarted node's signals rank after its earlier ones.
func (p *Presence) nextSeq(now time.Time) uint64 {
	p.seq = max(p.seq+1, uint64(now.UnixNano()))
	return p.seq
}

// SessionOpened implements SessionObserver: a user's first session here
// joins them to this node.
func (p *Presence) SessionOpened(u user.ID) {
	now := p.clock.Now()
	p.mu.Lock()
	p.local[u]++
	if p.local[u] > 1 {
		p.mu.Unlock()
		return
	}
	seq := p.nextSeq(now)
	changes := p.dir.Join(p.cfg.Node, u, seq, now)
	p.mu.Unlock()
	p.outbox.send(ports.Signal{Kind: ports.SignalJoin, Node: p.cfg.Node, Seq: seq, At: now, User: u})
	p.changes.push(changes...)
}

// SessionClosed implements SessionObserver: a user's last session here
// leaves this node; the grace starts now.
func (p *Presence) SessionClosed(u user.ID) {
	now := p.clock.Now()
	p.mu.Lock()
	p.local[u]--
	if p.local[u] > 0 {
		p.mu.Unlock()
		return
	}
	delete(p.local, u)
	seq := p.nextSeq(now)
	changes := p.dir.Leave(p.cfg.Node, u, seq, now, now)
	p.mu.Unlock()
	p.outbox.send(ports.Signal{Kind: ports.SignalLeave, Node: p.cfg.Node, Seq: seq, At: now, User: u})
	p.changes.push(changes...)
}

// handle applies a presence signal from another node; typing signals are
// Typing's.
func (p *Presence) handle(_ context.Context, s ports.Signal) {
	if s.Node == p.cfg.Node || s.Kind == ports.SignalTyping {
		return
	}
	now := p.clock.Now()
	// A presence signal older than a forgotten node's silence (replayed
	// after a restart, say) would undo newer state that is not here yet.
	if now.Sub(s.At) > p.forgetAge {
		return
	}
	var (
		changes []presence.Change
		joined  []user.ID
	)
	p.mu.Lock()
	switch s.Kind {
	case ports.SignalJoin:
		joined = p.notHeldBy(s.Node, s.User)
		changes = p.dir.Join(s.Node, s.User, s.Seq, now)
	case ports.SignalLeave:
		changes = p.dir.Leave(s.Node, s.User, s.Seq, s.At, now)
	case ports.SignalHeartbeat:
		joined = p.notHeldBy(s.Node, s.Users...)
		changes = p.dir.Heartbeat(s.Node, s.Users, s.Seq, now)
	}
	joined = slices.DeleteFunc(joined, func(u user.ID) bool { return !p.dir.Holds(s.Node, u) })
	p.mu.Unlock()
	p.changes.push(changes...)
	for _, u := range joined {
		p.forwarder.joined(s.Node, u)
	}
}

// holdersOf returns the nodes this node's directory says hold a session of u.
func (p *Presence) holdersOf(u user.ID) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var nodes []string
	for _, h := range p.dir.Holdings(u) {
		if h.Present {
			nodes = append(nodes, h.Node)
		}
	}
	return nodes
}

// notHeldBy returns those of users that node does not hold yet; p.mu is
// held. Those it holds once the signal is applied have just joined it,
// and the forwarder sends them what was routed without it.
func (p *Presence) notHeldBy(node string, users ...user.ID) []user.ID {
	var out []user.ID
	for _, u := range users {
		if !p.dir.Holds(node, u) {
			out = append(out, u)
		}
	}
	return out
}

// Query answers asker's presence query: each user, online or not, with
// the last time seen when offline and known.
// Only asker and the users asker shares a conversation with are answered
// truly; anyone else is offline and never seen, as a user who does not
// exist, and costs no lookup, so neither the answer nor its cost tells when
// a stranger was last around.
func (p *Presence) Query(ctx context.Context, asker user.ID, users presence.Users) ([]ports.PresenceView, error) {
	visible, err := p.visibleTo(ctx, asker, users)
	if err != nil {
		return nil, err
	}
	out := make([]ports.PresenceView, len(users))
	var unknown []user.ID
	p.mu.Lock()
	for i, u := range users {
		out[i] = ports.PresenceView{User: u}
		if !visible[u] {
			continue
		}
		out[i].Online = p.dir.Online(u)
		if !out[i].Online {
			var known bool
			if out[i].LastSeen, known = p.dir.LastSeen(u); !known {
				unknown = append(unknown, u)
			}
		}
	}
	p.mu.Unlock()
	if len(unknown) == 0 {
		return out, nil
	}
	stored, err := p.lastSeen.Get(ctx, unknown)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if t, ok := stored[out[i].User]; ok && !out[i].Online {
			out[i].LastSeen = t
		}
	}
	return out, nil
}

// visibleTo tells which of users asker may see the presence of: asker and
// asker's conversation peers.
func (p *Presence) visibleTo(ctx context.Context, asker user.ID, users []user.ID) (map[user.ID]bool, error) {
	visible := make(map[user.ID]bool, len(users))
	others := false
	for _, u := range users {
		visible[u] = u == asker
		others = others || u != asker
	}
	if !others {
		return visible, nil
	}
	peers, err := p.peers.of(ctx, asker, p.clock.Now())
	if err != nil {
		return nil, err
	}
	for _, peer := range peers.peers {
		if _, asked := visible[peer]; asked {
			visible[peer] = true
		}
	}
	return visible, nil
}

// ObserveCommits learns of conversations started on other nodes, so that
// the peers cached for presence include them at once; it is chained before
// delivery on the broadcast subscription and never fails.
func (p *Presence) ObserveCommits(_ context.Context, commits []ports.Commit) error {
	for _, c := range commits {
		p.learnStarted(c)
	}
	return nil
}

// learnStarted learns the pair of a conversation c starts, and unsettles
// the users a group's membership change in c concerns. This node's own
// commits come here the moment they commit, not only when the bus brings
// them back: the new contact may connect on another node at once, and its
// join signal can arrive before the broadcast of the commit does, to be
// pushed to peers that do not include the writer yet.
func (p *Presence) learnStarted(c ports.Commit) {
	var unsettled []user.ID
	for _, ev := range c.Events {
		switch ev := ev.(type) {
		case conversation.ConversationStarted:
			p.peers.learn(ev.Participants[0], ev.Participants[1], p.clock.Now())
		case conversation.GroupCreated:
			unsettled = append(unsettled, ev.Members...)
		case conversation.MemberAdded:
			unsettled = append(unsettled, ev.User)
		case conversation.MemberRemoved:
			unsettled = append(unsettled, ev.User)
		}
	}
	if len(unsettled) > 0 {
		p.peers.unsettle(unsettled, p.clock.Now())
	}
}
