package application

import "sync"

// workQueue is an unbounded FIFO between goroutines: presence changes must
// not be lost, and whoever makes them must not wait for them to be pushed.
type workQueue[T any] struct {
	mu    sync.Mutex
	items []T
	ready chan struct{}
}

func newWorkQueue[T any]() *workQueue[T] { return &workQueue[T]{ready: make(chan struct{}, 1)} }

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
