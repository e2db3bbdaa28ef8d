package txbatch

import "sync"

// Lanes gathers concurrent publications into batches, one lane per queue of
// the bus. A lane has at most one batch in flight; the commits that come
// meanwhile wait, and the next batch takes all of them (within Bounds). No
// batch waits for company: an idle lane sends a lone commit at once, so
// batches grow only as fast as the bus round trip makes commits queue.
//
// The batch is sent by one of its callers (the leader), not by a goroutine
// of the lane's: an idle lane costs no hand-over between goroutines, and the
// leader hands the lane to the next waiting caller when its batch is done.
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
	// busy is true while a caller leads the lane; waiting is empty
	// whenever it is false.
	busy bool
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
	l.waiting = append(l.waiting, w)
	lead := !l.busy
	l.busy = true
	l.mu.Unlock()
	for {
		if lead {
			l.lead(bounds, send)
		}
		if settled := <-w.wake; settled {
			return
		}
		lead = true
	}
}

// lead sends one batch from the front of l's waiting callers (the leader is
// first among them), wakes its settled callers and hands the lane on.
func (l *lane) lead(bounds Bounds, send Send) {
	l.mu.Lock()
	members := make([]*Member, len(l.waiting))
	for i, w := range l.waiting {
		members[i] = w.m
	}
	n := bounds.Take(members)
	batch := append([]*waiter(nil), l.waiting[:n]...)
	l.waiting = l.waiting[n:]
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
		l.busy = false
		l.mu.Unlock()
		return
	}
	next := l.waiting[0]
	l.mu.Unlock()
	next.wake <- false
}
