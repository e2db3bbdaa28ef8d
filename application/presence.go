package application

import (
	"context"
	"errors"
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
	Node string
	// Heartbeat is how often the node tells the others whom it holds
	// (CHAT_PRESENCE_HEARTBEAT); a node silent for three is forgotten.
	Heartbeat time.Duration
	// Grace is how long a user whose last session closed stays online, so
	// that a reconnect does not flap (CHAT_PRESENCE_GRACE).
	Grace time.Duration
	// PeersTTL is how long a user's conversation peers are cached.
	PeersTTL time.Duration
}

// DefaultPresenceConfig is what PROTOCOL.md promises: 5 s and 5 s.
func DefaultPresenceConfig() PresenceConfig {
	return PresenceConfig{Heartbeat: 5 * time.Second, Grace: 5 * time.Second, PeersTTL: 30 * time.Second}
}

// missedHeartbeats is how many heartbeats a node may miss before it is forgotten.
const missedHeartbeats = 3

// PresenceObserver is told of presence changes announced and typing
// signals relayed or dropped, for metrics; the application has no
// decorators, so this is its one measuring point for ephemeral signals.
type PresenceObserver interface {
	PresenceChanged(online bool)
	TypingRelayed()
	TypingDropped()
}

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
type Presence struct {
	cfg       PresenceConfig
	signals   ports.Signals
	lastSeen  ports.LastSeenStore
	sessions  *Sessions
	clock     ports.Clock
	observer  PresenceObserver
	peers     *peerCache
	typing    *Typing
	forgetAge time.Duration

	mu    sync.Mutex
	dir   *presence.Directory
	local map[user.ID]int // open sessions per user on this node
	seq   uint64

	// outbox holds signals for the publisher goroutine, so that a session
	// opening never waits on the bus; changes holds the changes for the
	// announcer goroutine, which may read the store.
	outbox  chan ports.Signal
	changes workQueue[presence.Change]

	stop     chan struct{}
	stopOnce sync.Once
	done     sync.WaitGroup
}

// outboxSize bounds the signals waiting for the bus; past it they are
// dropped, and the next heartbeat repairs what a lost join or leave broke.
const outboxSize = 4096

// peersLimit bounds the conversations read to find a user's peers.
const peersLimit = 10_000

// NewPresence sets up presence and typing on app, signalling on signals and
// keeping last-seen times in lastSeen; observer may be nil. It subscribes
// to signals, so call it before the signals adapter starts, and Start it
// before the node serves.
func NewPresence(app *Application, cfg PresenceConfig, signals ports.Signals, lastSeen ports.LastSeenStore, observer PresenceObserver) (*Presence, error) {
	if app == nil || signals == nil || lastSeen == nil || cfg.Node == "" {
		return nil, errors.New("application: presence needs the application, signals, a last-seen store and a node name")
	}
	def := DefaultPresenceConfig()
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = def.Heartbeat
	}
	if cfg.Grace <= 0 {
		cfg.Grace = def.Grace
	}
	if cfg.PeersTTL <= 0 {
		cfg.PeersTTL = def.PeersTTL
	}
	if observer == nil {
		observer = noObserver{}
	}
	forget := missedHeartbeats * cfg.Heartbeat
	p := &Presence{
		cfg: cfg, signals: signals, lastSeen: lastSeen, sessions: app.Sessions, clock: app.clock,
		observer: observer, forgetAge: forget,
		peers: &peerCache{readModel: app.readModel, ttl: cfg.PeersTTL, entries: map[user.ID]peerEntry{}},
		dir:   presence.NewDirectory(cfg.Node, cfg.Grace, forget),
		local: map[user.ID]int{}, outbox: make(chan ports.Signal, outboxSize),
	}
	p.changes.init()
	p.typing = &Typing{presence: p, aggregates: app.aggregates, throttle: presence.NewTypingThrottle()}
	signals.Subscribe(p.handle)
	app.Sessions.observe(p)
	app.aggregates.afterCommit(p.learnStarted)
	app.Presence, app.Typing = p, p.typing
	return p, nil
}

type noObserver struct{}

func (noObserver) PresenceChanged(bool) {}
func (noObserver) TypingRelayed()       {}
func (noObserver) TypingDropped()       {}

// Start runs the heartbeat, the publisher and the announcer.
func (p *Presence) Start() {
	p.stop = make(chan struct{})
	p.done.Add(3)
	go p.publishLoop()
	go p.announceLoop()
	go p.tickLoop()
}

// Stop ends the loops once the signals queued so far (the leaves of the
// sessions a drain closed) are published, or ctx ends.
func (p *Presence) Stop(ctx context.Context) error {
	p.stopOnce.Do(func() { close(p.stop) })
	finished := make(chan struct{})
	go func() { p.done.Wait(); close(finished) }()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		return ctx.Err()
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
	p.send(ports.Signal{Kind: ports.SignalJoin, Node: p.cfg.Node, Seq: seq, At: now, User: u})
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
	p.send(ports.Signal{Kind: ports.SignalLeave, Node: p.cfg.Node, Seq: seq, At: now, User: u})
	p.changes.push(changes...)
}

// send queues s for the bus without waiting.
func (p *Presence) send(s ports.Signal) {
	select {
	case p.outbox <- s:
	default:
		slog.Warn("presence signal dropped: the bus is behind", "kind", s.Kind, "user", s.User)
	}
}

// handle applies a signal from another node.
func (p *Presence) handle(ctx context.Context, s ports.Signal) {
	if s.Node == p.cfg.Node {
		return
	}
	now := p.clock.Now()
	if s.Kind == ports.SignalTyping {
		// A typing signal late by more than its interval says nothing true.
		if now.Sub(s.At) <= 2*presence.TypingInterval {
			p.typing.push(s.To, ports.TypingView{Conversation: s.Conversation, User: s.User})
		}
		return
	}
	// A presence signal older than a forgotten node's silence (replayed
	// after a restart, say) would undo newer state that is not here yet.
	if now.Sub(s.At) > p.forgetAge {
		return
	}
	var changes []presence.Change
	p.mu.Lock()
	switch s.Kind {
	case ports.SignalJoin:
		changes = p.dir.Join(s.Node, s.User, s.Seq, now)
	case ports.SignalLeave:
		changes = p.dir.Leave(s.Node, s.User, s.Seq, s.At, now)
	case ports.SignalHeartbeat:
		changes = p.dir.Heartbeat(s.Node, s.Users, s.Seq, now)
	}
	p.mu.Unlock()
	p.changes.push(changes...)
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
	for _, peer := range peers {
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

// learnStarted learns the pair of a conversation c starts. This node's own
// commits come here the moment they commit, not only when the bus brings
// them back: the new contact may connect on another node at once, and its
// join signal can arrive before the broadcast of the commit does, to be
// pushed to peers that do not include the writer yet.
func (p *Presence) learnStarted(c ports.Commit) {
	for _, ev := range c.Events {
		if started, ok := ev.(conversation.ConversationStarted); ok {
			p.peers.learn(started.Participants[0], started.Participants[1], p.clock.Now())
		}
	}
}

func (p *Presence) publishLoop() {
	defer p.done.Done()
	for {
		select {
		case s := <-p.outbox:
			p.publish(s)
		case <-p.stop:
			for {
				select {
				case s := <-p.outbox:
					p.publish(s)
				default:
					return
				}
			}
		}
	}
}

func (p *Presence) publish(s ports.Signal) {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.Heartbeat)
	defer cancel()
	if err := p.signals.Publish(ctx, s); err != nil {
		slog.Warn("presence signal not published", "kind", s.Kind, "err", err)
	}
}

// tickLoop heartbeats, and checks often enough for the grace and for
// silent nodes that a change is announced promptly after it is due.
func (p *Presence) tickLoop() {
	defer p.done.Done()
	p.heartbeat()
	every := min(p.cfg.Heartbeat, p.cfg.Grace) / 5
	every = min(max(every, 10*time.Millisecond), time.Second)
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	lastBeat := time.Now()
	for {
		select {
		case <-p.stop:
			return
		case <-ticker.C:
		}
		now := p.clock.Now()
		p.mu.Lock()
		changes := p.dir.Tick(now)
		p.mu.Unlock()
		p.changes.push(changes...)
		p.typing.prune(now)
		p.peers.prune(now)
		if time.Since(lastBeat) >= p.cfg.Heartbeat {
			lastBeat = time.Now()
			p.heartbeat()
		}
	}
}

// heartbeat tells the other nodes every user this node holds.
func (p *Presence) heartbeat() {
	now := p.clock.Now()
	p.mu.Lock()
	users := make([]user.ID, 0, len(p.local))
	for u := range p.local {
		users = append(users, u)
	}
	seq := p.nextSeq(now)
	p.mu.Unlock()
	p.send(ports.Signal{Kind: ports.SignalHeartbeat, Node: p.cfg.Node, Seq: seq, At: now, Users: users})
}

func (p *Presence) announceLoop() {
	defer p.done.Done()
	for {
		batch, ok := p.changes.pop(p.stop)
		if !ok {
			return
		}
		p.announce(batch)
	}
}

// announce records the last-seen times this node owes, then pushes each
// change to the sessions here of the user's peers.
func (p *Presence) announce(changes []presence.Change) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var seen []ports.LastSeen
	for _, c := range changes {
		if !c.Online && c.Record {
			seen = append(seen, ports.LastSeen{User: c.User, At: c.LastSeen})
		}
	}
	if len(seen) > 0 {
		if err := p.lastSeen.Touch(ctx, seen); err != nil {
			slog.Warn("last seen not stored", "users", len(seen), "err", err)
		}
	}
	for _, c := range changes {
		p.observer.PresenceChanged(c.Online)
		if p.sessions.Count() == 0 {
			continue
		}
		peers, err := p.peers.of(ctx, c.User, p.clock.Now())
		if err != nil {
			slog.Warn("presence change not pushed", "user", c.User, "err", err)
			continue
		}
		view := ports.PresenceView{User: c.User, Online: c.Online, LastSeen: c.LastSeen}
		for _, peer := range peers {
			for _, st := range p.sessions.of(peer) {
				st.session.PushPresence(view)
			}
		}
	}
}

// peerCache holds, per user, the users they share a conversation with:
// the read model's answer, cached for a while, plus the conversations
// started since, learnt from the bus, because the projection that would
// show them may lag the first message by a moment.
type peerCache struct {
	readModel ports.ReadModel
	ttl       time.Duration

	mu      sync.Mutex
	entries map[user.ID]peerEntry
	// recent holds the pairs learnt within recentPeers, for the loads
	// that the projection may not have caught up with yet.
	recent map[user.ID][]learnt
}

type peerEntry struct {
	peers  []user.ID
	loaded time.Time
}

type learnt struct {
	peer user.ID
	at   time.Time
}

// maxPeerEntries bounds the cache; an evicted user is read again.
const maxPeerEntries = 100_000

// recentPeers is how long a learnt pair is added to what the read model
// says; projections take far less.
const recentPeers = time.Minute

func (c *peerCache) of(ctx context.Context, u user.ID, now time.Time) ([]user.ID, error) {
	c.mu.Lock()
	e, ok := c.entries[u]
	c.mu.Unlock()
	if ok && now.Sub(e.loaded) < c.ttl {
		return e.peers, nil
	}
	views, err := c.readModel.ListFor(ctx, u, peersLimit)
	if err != nil {
		return nil, err
	}
	peers := make([]user.ID, 0, len(views))
	for _, v := range views {
		if v.Participants[0] == u {
			peers = append(peers, v.Participants[1])
		} else {
			peers = append(peers, v.Participants[0])
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.recent[u] {
		peers = appendNew(peers, l.peer)
	}
	if len(c.entries) >= maxPeerEntries {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[u] = peerEntry{peers: peers, loaded: now}
	return peers, nil
}

// learn adds a new conversation's pair to what is known of either user.
func (c *peerCache) learn(a, b user.ID, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.recent == nil {
		c.recent = map[user.ID][]learnt{}
	}
	for _, pair := range [2][2]user.ID{{a, b}, {b, a}} {
		// A pair is learnt twice on the node that wrote the commit: when
		// it commits and when the bus brings it back.
		ls := slices.DeleteFunc(c.recent[pair[0]], func(l learnt) bool { return l.peer == pair[1] })
		c.recent[pair[0]] = append(ls, learnt{peer: pair[1], at: now})
		if e, ok := c.entries[pair[0]]; ok {
			// A copy: readers hold the old slice without the lock.
			e.peers = appendNew(append([]user.ID(nil), e.peers...), pair[1])
			c.entries[pair[0]] = e
		}
	}
}

// prune drops the learnt pairs the read model shows by now.
func (c *peerCache) prune(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for u, ls := range c.recent {
		kept := ls[:0]
		for _, l := range ls {
			if now.Sub(l.at) < recentPeers {
				kept = append(kept, l)
			}
		}
		if len(kept) == 0 {
			delete(c.recent, u)
		} else {
			c.recent[u] = kept
		}
	}
}

func appendNew(list []user.ID, u user.ID) []user.ID {
	for _, x := range list {
		if x == u {
			return list
		}
	}
	return append(list, u)
}

// workQueue is an unbounded FIFO between goroutines: presence changes must
// not be lost, and whoever makes them must not wait for them to be pushed.
type workQueue[T any] struct {
	mu    sync.Mutex
	items []T
	ready chan struct{}
}

func (q *workQueue[T]) init() { q.ready = make(chan struct{}, 1) }

func (q *workQueue[T]) push(items ...T) {
	if len(items) == 0 {
		return
	}
	q.mu.Lock()
	q.items = append(q.items, items...)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// pop waits for items and takes them all; false once stop is closed.
func (q *workQueue[T]) pop(stop <-chan struct{}) ([]T, bool) {
	for {
		q.mu.Lock()
		items := q.items
		q.items = nil
		q.mu.Unlock()
		if len(items) > 0 {
			return items, true
		}
		select {
		case <-q.ready:
		case <-stop:
			return nil, false
		}
	}
}
