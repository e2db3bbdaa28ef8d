package application

import (
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// Sessions is the registry of the sessions connected to this node, with each
// session's delivery cursor per conversation.
type Sessions struct {
	clock ports.Clock
	// ticks orders session openings and delivery starts on this node.
	ticks atomic.Uint64

	mu     sync.RWMutex
	byUser map[user.ID][]*sessionState
	count  int
	// observer hears of every session opening and closing, outside the
	// lock; presence counts them.
	observer SessionObserver
	// onOpen hears of each session's state as it opens, outside the
	// lock; the hand-over schedules its catch-ups.
	onOpen func(*sessionState)
}

// SessionObserver hears of each session that opens or closes on this node.
type SessionObserver interface {
	SessionOpened(u user.ID)
	SessionClosed(u user.ID)
}

// noSessionObserver is the observer of a registry that nothing counts.
type noSessionObserver struct{}

func (noSessionObserver) SessionOpened(user.ID) {}
func (noSessionObserver) SessionClosed(user.ID) {}

// observe makes o hear of sessions from now on; New sets presence as the
// observer before any session can open.
func (r *Sessions) observe(o SessionObserver) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.observer = o
}

// afterOpen makes fn hear of each session opening from now on; New sets
// it before any session can open.
func (r *Sessions) afterOpen(fn func(*sessionState)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onOpen = fn
}

// sessionState is one session's delivery position: per conversation, the
// messages pushed to it, and per conversation and participant, the markers
// its receipts told. The maps are made on first use, so an idle session
// costs a few words here.
type sessionState struct {
	session ports.Session
	// opened is the tick at which the session opened, openedAt the time.
	opened   uint64
	openedAt time.Time

	mu       sync.Mutex
	cursors  map[string]cursor
	receipts map[receiptKey]ports.Receipt
	// revs is the rev of the last update pushed, per conversation.
	revs map[string]uint64
	// removed holds the groups whose removal of the session's user was
	// pushed to it: nothing more of them is pushed to it until it is told
	// of an addition, though a message committed beside the removal may
	// be handled after it here.
	removed map[string]bool
	// memberships are the changes stream versions of the latest commits
	// of each group whose member frames were pushed to it.
	memberships map[string][]uint64
}

// cursor is what a session was pushed of one conversation: every message
// from first through last, in order, of which the transport has written
// those up to written to the connection. Messages before first it has only
// if its client fetched them.
type cursor struct{ first, last, written uint64 }

// advanced is c after seq, the next message of its run, was pushed.
func (c cursor) advanced(seq uint64) cursor {
	if c.first == 0 {
		c.first = seq
	}
	c.last = seq
	return c
}

type receiptKey struct {
	conversation string
	user         user.ID
}

// NewSessions returns an empty registry that times openings by clock.
func NewSessions(clock ports.Clock) *Sessions {
	return &Sessions{clock: clock, byUser: map[user.ID][]*sessionState{}, observer: noSessionObserver{}}
}

// tick returns the next tick of this node's order of events.
func (r *Sessions) tick() uint64 { return r.ticks.Add(1) }

// ErrTooManySessions refuses a session to a user who has as many on this
// node as the transport allows.
var ErrTooManySessions = errors.New("too many sessions of this user on this node")

// Register adds s, however many sessions its user has, and returns the
// function that removes it again.
func (r *Sessions) Register(s ports.Session) (unregister func()) {
	unregister, _ = r.RegisterAtMost(s, math.MaxInt)
	return unregister
}

// RegisterAtMost adds s unless its user already has limit sessions here,
// then it returns ErrTooManySessions and changes nothing. The count is
// checked under the same lock as the addition, so that two sessions racing
// for the last place cannot both take it.
func (r *Sessions) RegisterAtMost(s ports.Session, limit int) (unregister func(), err error) {
	st := &sessionState{session: s, openedAt: r.clock.Now()}
	u := s.User()
	r.mu.Lock()
	st.opened = r.tick()
	if len(r.byUser[u]) >= limit {
		r.mu.Unlock()
		return nil, ErrTooManySessions
	}
	r.byUser[u] = append(r.byUser[u], st)
	r.count++
	observer, onOpen := r.observer, r.onOpen
	r.mu.Unlock()
	observer.SessionOpened(u)
	if onOpen != nil {
		onOpen(st)
	}
	var once sync.Once
	return func() {
		once.Do(func() { r.remove(u, st).SessionClosed(u) })
	}, nil
}

func (r *Sessions) remove(u user.ID, st *sessionState) SessionObserver {
	r.mu.Lock()
	defer r.mu.Unlock()
	list := r.byUser[u]
	for i, s := range list {
		if s == st {
			list[i] = list[len(list)-1]
			list = list[:len(list)-1]
			r.count--
			break
		}
	}
	if len(list) == 0 {
		delete(r.byUser, u)
	} else {
		r.byUser[u] = list
	}
	return r.observer
}

// Count is the number of sessions on this node.
func (r *Sessions) Count() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.count
}

// holds tells whether u has a session on this node, without the copy that
// of makes: delivery asks it of every message's participants.
func (r *Sessions) holds(u user.ID) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.byUser[u]) > 0
}

// stateOf returns s's delivery state, nil once s is unregistered.
func (r *Sessions) stateOf(s ports.Session) *sessionState {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, st := range r.byUser[s.User()] {
		if st.session == s {
			return st
		}
	}
	return nil
}

// of returns a snapshot of u's sessions, safe to use without the lock.
func (r *Sessions) of(u user.ID) []*sessionState {
	r.mu.RLock()
	defer r.mu.RUnlock()
	list := r.byUser[u]
	if len(list) == 0 {
		return nil
	}
	return append([]*sessionState(nil), list...)
}
