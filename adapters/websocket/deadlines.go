package websocket

import (
	"container/heap"
	"sync"
	"time"
)

// expiries closes each session when its token's exp passes. One runtime
// timer serves the whole node, armed for the earliest exp of a min-heap of
// sessions: a timer per session cost an idle session about 400 bytes of
// RSS (its runtime timer and closure, with the garbage collector's
// headroom), where a heap slot costs a pointer.
type expiries struct {
	mu    sync.Mutex
	queue expiryQueue
	timer *time.Timer // nil until the first session is scheduled
}

// schedule closes s at exp, or at the new exp if s is scheduled already.
func (e *expiries) schedule(s *session, exp time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s.expiresAt = exp
	if s.expiryIndex >= 0 {
		heap.Fix(&e.queue, s.expiryIndex)
	} else {
		heap.Push(&e.queue, s)
	}
	e.armLocked()
}

// cancel forgets s, whose session has ended.
func (e *expiries) cancel(s *session) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s.expiryIndex >= 0 {
		heap.Remove(&e.queue, s.expiryIndex)
	}
}

// fire closes the sessions whose exp has passed, then waits for the next.
func (e *expiries) fire() {
	now := time.Now()
	var due []*session
	e.mu.Lock()
	for len(e.queue) > 0 && !e.queue[0].expiresAt.After(now) {
		due = append(due, heap.Pop(&e.queue).(*session))
	}
	e.armLocked()
	e.mu.Unlock()
	for _, s := range due {
		s.closeWith(closeTokenExpired, "token expired")
	}
}

// armLocked sets the timer for the earliest exp; e.mu is held. A timer
// firing early or for a session gone since only finds nothing due.
func (e *expiries) armLocked() {
	if len(e.queue) == 0 {
		return
	}
	wait := time.Until(e.queue[0].expiresAt)
	if e.timer == nil {
		e.timer = time.AfterFunc(wait, e.fire)
		return
	}
	e.timer.Reset(wait)
}

// expiryQueue is a min-heap of sessions by expiresAt for container/heap;
// each session keeps its index, -1 once out.
type expiryQueue []*session

func (q expiryQueue) Len() int           { return len(q) }
func (q expiryQueue) Less(i, j int) bool { return q[i].expiresAt.Before(q[j].expiresAt) }
func (q expiryQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].expiryIndex, q[j].expiryIndex = i, j
}

func (q *expiryQueue) Push(x any) {
	s := x.(*session)
	s.expiryIndex = len(*q)
	*q = append(*q, s)
}

func (q *expiryQueue) Pop() any {
	old := *q
	s := old[len(old)-1]
	old[len(old)-1] = nil
	s.expiryIndex = -1
	*q = old[:len(old)-1]
	return s
}
