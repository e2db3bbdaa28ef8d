package websocket

import (
	"container/heap"
	"sync"
	"time"
)

// deadlines acts on each session when a deadline of one kind passes: a
// token's exp (the session is closed) or a parked session's read deadline
// (its reader is woken to find it passed). One runtime timer serves the
// whole node for each kind, armed for the earliest deadline of a min-heap
// of sessions: a timer per session cost an idle session about 400 bytes of
// RSS (its runtime timer and closure, with the garbage collector's
// headroom), where a heap slot costs a pointer.
type deadlines struct {
	// slot is the session's deadline of this kind; due acts on a session
	// whose deadline has passed, outside the lock.
	slot func(*session) *deadline
	due  func(*session)

	mu    sync.Mutex
	queue deadlineQueue
	timer *time.Timer // nil until the first session is scheduled
}

// deadline is a session's place in one deadlines: when, and its index in
// the heap, -1 while out of it. Touched only under the deadlines' lock.
type deadline struct {
	at    time.Time
	index int
}

var noDeadline = deadline{index: -1}

func newDeadlines(slot func(*session) *deadline, due func(*session)) *deadlines {
	return &deadlines{slot: slot, due: due, queue: deadlineQueue{slot: slot}}
}

// schedule acts on s at `at`, or at the new time if s is scheduled already.
func (d *deadlines) schedule(s *session, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	slot := d.slot(s)
	slot.at = at
	if slot.index >= 0 {
		heap.Fix(&d.queue, slot.index)
	} else {
		heap.Push(&d.queue, s)
	}
	d.armLocked()
}

// cancel forgets s, whose session has ended.
func (d *deadlines) cancel(s *session) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if i := d.slot(s).index; i >= 0 {
		heap.Remove(&d.queue, i)
	}
}

// fire acts on the sessions whose deadline has passed, then waits for the
// next.
func (d *deadlines) fire() {
	now := time.Now()
	var due []*session
	d.mu.Lock()
	for len(d.queue.sessions) > 0 && !d.slot(d.queue.sessions[0]).at.After(now) {
		due = append(due, heap.Pop(&d.queue).(*session))
	}
	d.armLocked()
	d.mu.Unlock()
	for _, s := range due {
		d.due(s)
	}
}

// armLocked sets the timer for the earliest deadline; d.mu is held. A
// timer firing early or for a session gone since only finds nothing due.
func (d *deadlines) armLocked() {
	if len(d.queue.sessions) == 0 {
		return
	}
	wait := time.Until(d.slot(d.queue.sessions[0]).at)
	if d.timer == nil {
		d.timer = time.AfterFunc(wait, d.fire)
		return
	}
	d.timer.Reset(wait)
}

// deadlineQueue is a min-heap of sessions by one kind of deadline, for
// container/heap; each session keeps its index in its slot.
type deadlineQueue struct {
	sessions []*session
	slot     func(*session) *deadline
}

func (q deadlineQueue) Len() int { return len(q.sessions) }
func (q deadlineQueue) Less(i, j int) bool {
	return q.slot(q.sessions[i]).at.Before(q.slot(q.sessions[j]).at)
}
func (q deadlineQueue) Swap(i, j int) {
	q.sessions[i], q.sessions[j] = q.sessions[j], q.sessions[i]
	q.slot(q.sessions[i]).index, q.slot(q.sessions[j]).index = i, j
}

func (q *deadlineQueue) Push(x any) {
	s := x.(*session)
	q.slot(s).index = len(q.sessions)
	q.sessions = append(q.sessions, s)
}

func (q *deadlineQueue) Pop() any {
	old := q.sessions
	s := old[len(old)-1]
	old[len(old)-1] = nil
	q.slot(s).index = -1
	q.sessions = old[:len(old)-1]
	return s
}
