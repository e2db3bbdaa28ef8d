package application

import (
	"context"
	"time"

	"github.com/evchat/chatd/domain/presence"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// Start runs the publisher of the signals, the announcer of the changes,
// the ticker of heartbeats and deadlines, and the hand-over's catch-ups
// and forwards.
func (p *Presence) Start(context.Context) error {
	// The directory warms up from now, when the signals begin to flow.
	p.mu.Lock()
	p.router.startedAt = p.clock.Now()
	p.mu.Unlock()
	p.done.Add(5)
	go func() { defer p.done.Done(); p.outbox.run(p.stop) }()
	go func() { defer p.done.Done(); p.handOver.run(p.stop) }()
	go func() { defer p.done.Done(); p.forwarder.run(p.stop) }()
	go p.announceLoop()
	go p.tickLoop()
	return nil
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

// tickLoop heartbeats, and checks often enough for the grace and for
// silent nodes that a change is announced promptly after it is due. The
// ticker only wakes it: what is due is decided by the injected clock.
func (p *Presence) tickLoop() {
	defer p.done.Done()
	lastBeat := p.clock.Now()
	p.heartbeat(lastBeat)
	every := min(p.cfg.Heartbeat, p.cfg.Grace) / 5
	every = min(max(every, 10*time.Millisecond), time.Second)
	ticker := time.NewTicker(every)
	defer ticker.Stop()
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
		p.peers.prune(now)
		p.forwarder.prune(now)
		if now.Sub(lastBeat) >= p.cfg.Heartbeat {
			lastBeat = now
			p.heartbeat(now)
		}
	}
}

// heartbeat tells the other nodes every user this node holds.
func (p *Presence) heartbeat(now time.Time) {
	p.mu.Lock()
	users := make([]user.ID, 0, len(p.local))
	for u := range p.local {
		users = append(users, u)
	}
	seq := p.nextSeq(now)
	p.mu.Unlock()
	p.outbox.send(ports.Signal{Kind: ports.SignalHeartbeat, Node: p.cfg.Node, Seq: seq, At: now, Users: users})
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
			p.log.Warn("last seen not stored", "users", len(seen), "err", err)
		}
	}
	for _, c := range changes {
		p.observer.PresenceChanged(c.Online)
		if p.sessions.Count() == 0 {
			continue
		}
		peers, err := p.peers.of(ctx, c.User, p.clock.Now())
		if err != nil {
			p.log.Warn("presence change not pushed", "user", c.User, "err", err)
			continue
		}
		view := ports.PresenceView{User: c.User, Online: c.Online, LastSeen: c.LastSeen}
		for _, peer := range peers.pushed {
			for _, st := range p.sessions.of(peer) {
				st.session.PushPresence(view)
			}
		}
	}
}
