package mongo

import (
	"context"
	"errors"
	"sync"
	"time"

	driver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Group commit: concurrent appends, of any streams, are gathered into one
// unordered insertMany, each commit still its own document under the unique
// (stream, version) index. The store is the bottleneck of the whole stack,
// and one round trip for many documents costs it far less than one each.
// There is no timer: an append that finds no flusher free waits for the
// insert under way, and whatever queued meanwhile makes up the next batch,
// so batches grow with the load and a lone append goes out at once.
const (
	maxGroupBatch     = 256
	maxGroupFlushers  = 4
	groupWriteTimeout = 5 * time.Second
)

type groupCommit struct {
	// insertMany writes one batch; a seam, so a test can make a batch slow.
	insertMany func(ctx context.Context, docs []any) error

	mu       sync.Mutex
	queue    []*pendingInsert
	flushers int
}

func newGroupCommit(commits *driver.Collection) *groupCommit {
	return &groupCommit{insertMany: func(ctx context.Context, docs []any) error {
		_, err := commits.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		return err
	}}
}

type pendingInsert struct {
	doc commitDoc
	// ctx is the appending caller's: its deadline is the last moment the
	// document may be written (see application.Transactions.ExecuteLocal).
	ctx  context.Context
	err  error
	done chan struct{}
}

// expired tells whether p's caller has given up, or its deadline has passed
// (the context's timer may fire a moment after the deadline itself).
func (p *pendingInsert) expired(now time.Time) bool {
	if p.ctx.Err() != nil {
		return true
	}
	deadline, ok := p.ctx.Deadline()
	return ok && !now.Before(deadline)
}

// insert stores doc in the next batch and returns its own outcome: nil, a
// driver.WriteException for this document alone, or the batch's error. An
// append never goes out after its context is done: it fails while it waits
// in the queue, and a batch it is in runs under its deadline.
func (g *groupCommit) insert(ctx context.Context, doc commitDoc) error {
	p := &pendingInsert{doc: doc, ctx: ctx, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, p)
	lead := g.flushers < maxGroupFlushers
	if lead {
		g.flushers++
	}
	g.mu.Unlock()
	if lead {
		// The caller waits anyway; it writes batches, its own among them,
		// until the queue is empty.
		g.flush()
	}
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		// Still queued, it will never be written; in a batch under way, it
		// is stored before its deadline or not at all, and checkback,
		// which rolls back only well after that deadline, finds out.
		return ctx.Err()
	}
}

func (g *groupCommit) flush() {
	for {
		g.mu.Lock()
		batch, expired := g.take(time.Now())
		if len(batch) == 0 && len(expired) == 0 {
			g.flushers--
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		for _, p := range expired {
			p.err = p.ctx.Err()
			if p.err == nil {
				p.err = context.DeadlineExceeded
			}
			close(p.done)
		}
		if len(batch) > 0 {
			g.write(batch)
		}
	}
}

// take removes up to maxGroupBatch live appends from the head of the queue,
// and the expired ones met on the way; g.mu is held.
func (g *groupCommit) take(now time.Time) (batch, expired []*pendingInsert) {
	i := 0
	for ; i < len(g.queue) && len(batch) < maxGroupBatch; i++ {
		if p := g.queue[i]; p.expired(now) {
			expired = append(expired, p)
		} else {
			batch = append(batch, p)
		}
	}
	g.queue = append(g.queue[:0], g.queue[i:]...)
	return batch, expired
}

// write inserts a batch under a deadline of its own, since no one member's
// cancellation may cut the others' insert short; but never later than the
// earliest deadline among them. The driver turns that deadline into the
// command's maxTimeMS, so the server too gives up before any member's
// transaction may be rolled back.
func (g *groupCommit) write(batch []*pendingInsert) {
	deadline := time.Now().Add(groupWriteTimeout)
	for _, p := range batch {
		if d, ok := p.ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	docs := make([]any, len(batch))
	for i, p := range batch {
		docs[i] = p.doc
	}
	err := g.insertMany(ctx, docs)
	var bulk driver.BulkWriteException
	switch {
	case err == nil:
	case errors.As(err, &bulk) && bulk.WriteConcernError == nil && len(bulk.WriteErrors) > 0:
		for _, we := range bulk.WriteErrors {
			if we.Index >= 0 && we.Index < len(batch) {
				batch[we.Index].err = driver.WriteException{WriteErrors: []driver.WriteError{we.WriteError}}
			}
		}
	default:
		for _, p := range batch {
			p.err = err
		}
	}
	for _, p := range batch {
		close(p.done)
	}
}
