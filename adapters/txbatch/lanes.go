package txbatch

import "sync"

// Lanes gathers concurrent publications into batches, one lane per queue of
// the bus. A lane has at most Bounds.MaxInFlight batches in flight; the
// commits that come meanwhile wait, and the next batch takes all of them
// (within Bounds). No batch waits for company: a lane with room sends a
// commit at once, so batches grow only as fast as the bus round trip makes
// commits queue.
//
// The batch is sent by one of its callers (the leader), not by a goroutine
// of the lane's: a lane with room costs no hand-over between goroutines, and
// a leader hands its place to the first waiting caller when its batch is
// done.
//
// The zero value is ready to use.
type Lanes struct {
	lanes [MaxLanes]lane
}

// MaxLanes is the number of lanes: a topic has a few queues per broker.
const MaxLanes = 256

// Send runs one batch to its end and returns its survivors (Settle); every
// other member of the batch is settled.
type Send func(batch []*Member) []*Member

type lane struct {
	mu sync.Mutex
	// waiting holds the callers in the order their commits go out;
	// survivors of a batch go first.
	waiting []*waiter
	// flying counts the batches in flight; waiting is empty whenever it
	// is below the bound.
	flying int
}

type waiter struct {
	m *Member
	// wake says true when m is settled, false when its caller must lead.
	wake chan bool
}

// Publish publishes m on lane i (modulo MaxLanes) in batches within bounds
// that send runs, and returns when m is settled. Every call on a lane must
// pass the same bounds and send.
func (ls *Lanes) Publish(i int, m *Member, bounds Bounds, send Send) {
	l := &ls.lanes[i%MaxLanes]
	w := &waiter{m: m, wake: make(chan bool, 1)}
	l.mu.Lock()
	lead := l.flying < max(bounds.MaxInFlight, 1)
	if lead {
		l.flying++
	} else {
		l.waiting = append(l.waiting, w)
	}
	l.mu.Unlock()
	for {
		if lead {
			l.lead(w, bounds, send)
		}
		if settled := <-w.wake; settled {
			return
		}
		lead = true
	}
}

// lead sends one batch of first and the callers waiting at the front of
// l, wakes its settled callers and hands its place on.
func (l *lane) lead(first *waiter, bounds Bounds, send Send) {
	l.mu.Lock()
	batch := append([]*waiter{first}, l.waiting...)
	members := make([]*Member, len(batch))
	for i, w := range batch {
		members[i] = w.m
	}
	n := bounds.Take(members)
	batch = batch[:n]
	l.waiting = l.waiting[n-1:]
	l.mu.Unlock()

	survivors := send(members[:n])
	again := make(map[*Member]bool, len(survivors))
	for _, m := range survivors {
		again[m] = true
	}
	var requeued []*waiter
	for _, w := range batch {
		if again[w.m] {
			requeued = append(requeued, w)
		} else {
			w.wake <- true
		}
	}

	l.mu.Lock()
	l.waiting = append(requeued, l.waiting...)
	if len(l.waiting) == 0 {
		l.flying--
		l.mu.Unlock()
		return
	}
	next := l.waiting[0]
	l.waiting = l.waiting[1:]
	l.mu.Unlock()
	next.wake <- false
}
