package memory

import (
	"context"
	"sync"
	"time"

	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// Signals is the in-process bus of ephemeral signals: every handler
// subscribed in the process gets every signal, in the order published, from
// one goroutine, so a publisher never runs a handler on its own stack.
type Signals struct {
	mu       sync.Mutex
	handlers []ports.SignalHandler
	queue    []ports.Signal
	ready    chan struct{}
	stop     chan struct{}
	done     sync.WaitGroup
}

var _ ports.Signals = (*Signals)(nil)

// NewSignals returns a stopped bus; Start it.
func NewSignals() *Signals { return &Signals{ready: make(chan struct{}, 1)} }

// Subscribe implements ports.Signals.
func (s *Signals) Subscribe(h ports.SignalHandler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers = append(s.handlers, h)
}

// Publish implements ports.Signals; it never waits for the handlers.
func (s *Signals) Publish(_ context.Context, sig ports.Signal) error {
	sig.Users = append([]user.ID(nil), sig.Users...)
	s.mu.Lock()
	s.queue = append(s.queue, sig)
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
	return nil
}

// Start runs the dispatcher.
func (s *Signals) Start(context.Context) error {
	s.stop = make(chan struct{})
	s.done.Add(1)
	go s.dispatch()
	return nil
}

// Stop ends the dispatcher after the signals already published.
func (s *Signals) Stop(ctx context.Context) error {
	close(s.stop)
	finished := make(chan struct{})
	go func() { s.done.Wait(); close(finished) }()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Signals) dispatch() {
	defer s.done.Done()
	for {
		s.mu.Lock()
		batch, handlers := s.queue, s.handlers
		s.queue = nil
		s.mu.Unlock()
		for _, sig := range batch {
			for _, h := range handlers {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				h(ctx, sig)
				cancel()
			}
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-s.ready:
		case <-s.stop:
			return
		}
	}
}

// LastSeen keeps last-seen times in memory: the embedded default, for which
// "across restarts" means as long as the process lives, like its store.
type LastSeen struct {
	mu   sync.Mutex
	seen map[user.ID]time.Time
}

var _ ports.LastSeenStore = (*LastSeen)(nil)

// NewLastSeen returns an empty store.
func NewLastSeen() *LastSeen { return &LastSeen{seen: map[user.ID]time.Time{}} }

// Touch implements ports.LastSeenStore.
func (l *LastSeen) Touch(_ context.Context, seen []ports.LastSeen) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range seen {
		if s.At.After(l.seen[s.User]) {
			l.seen[s.User] = s.At
		}
	}
	return nil
}

// Get implements ports.LastSeenStore.
func (l *LastSeen) Get(_ context.Context, users []user.ID) (map[user.ID]time.Time, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[user.ID]time.Time, len(users))
	for _, u := range users {
		if t, ok := l.seen[u]; ok {
			out[u] = t
		}
	}
	return out, nil
}
