package rocketmq

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/evchat/chatd/ports"
)

// queueGate runs the batches of one queue one at a time, and merges the
// batches that wait into one handler call. The client hands a queue's
// batches to goroutines side by side; one at a time keeps a conversation's
// commits (one queue, by sharding key) nearly in order, which spares the
// handlers most store reads to fill gaps. Merging is what one at a time
// makes possible: the batches that arrived during a call go together into
// the next, so a busy queue gets fewer, larger calls.
//
// The batch whose goroutine leads a call keeps the lead for that call only,
// then hands it to the first batch still waiting: a goroutine that led for
// ever would hold its batch's offset back, and the client stops pulling a
// queue whose unconsumed span grows too long.
type queueGate struct {
	mu      sync.Mutex
	running bool
	waiting []*gatedBatch
}

type gatedBatch struct {
	commits []ports.Commit
	// wake is closed when the batch was handled (err is its outcome) or,
	// with lead set, when it is this batch's turn to lead a call.
	wake chan struct{}
	lead bool
	err  error
}

// run handles commits, merged with whatever else waits for the queue, and
// returns the outcome of the call that handled them. linger, when set, is
// how long a leader waits for more batches before its call.
func (g *queueGate) run(ctx context.Context, commits []ports.Commit, linger time.Duration, handle ports.CommitHandler) error {
	b := &gatedBatch{commits: commits, wake: make(chan struct{})}
	g.mu.Lock()
	g.waiting = append(g.waiting, b)
	lead := !g.running
	g.running = true
	g.mu.Unlock()
	if !lead {
		<-b.wake
		if !b.lead {
			return b.err
		}
	}
	if linger > 0 {
		time.Sleep(linger)
	}
	g.mu.Lock()
	group := g.waiting
	g.waiting = nil
	g.mu.Unlock()

	merged := group[0].commits
	if len(group) > 1 {
		merged = make([]ports.Commit, 0, len(group)*len(commits))
		for _, w := range group {
			merged = append(merged, w.commits...)
		}
	}
	// Deferred, so that a handler that panics (the client recovers it)
	// still answers the batches it took and passes the lead on, instead of
	// leaving the queue stuck.
	err := errHandlerPanicked
	defer func() {
		for _, w := range group {
			if w != b {
				w.err = err
				close(w.wake)
			}
		}
		g.mu.Lock()
		if len(g.waiting) > 0 {
			next := g.waiting[0]
			next.lead = true
			close(next.wake)
		} else {
			g.running = false
		}
		g.mu.Unlock()
	}()
	err = handle(ctx, merged)
	return err
}

var errHandlerPanicked = errors.New("rocketmq: the handler panicked on a batch merged with this one")
