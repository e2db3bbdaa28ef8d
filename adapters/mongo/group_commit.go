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
	doc  commitDoc
	err  error
	done chan struct{}
}

// insert stores doc in the next batch and returns its own outcome: nil, a
// driver.WriteException for this document alone, or the batch's error.
func (g *groupCommit) insert(ctx context.Context, doc commitDoc) error {
	p := &pendingInsert{doc: doc, done: make(chan struct{})}
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
		// The batch may still store it; checkback will find out.
		return ctx.Err()
	}
}

func (g *groupCommit) flush() {
	for {
		g.mu.Lock()
		n := min(len(g.queue), maxGroupBatch)
		if n == 0 {
			g.flushers--
			g.mu.Unlock()
			return
		}
		batch := make([]*pendingInsert, n)
		copy(batch, g.queue)
		g.queue = append(g.queue[:0], g.queue[n:]...)
		g.mu.Unlock()
		g.write(batch)
	}
}

// write inserts a batch under a deadline of its own: it serves many callers,
// and none of their contexts may cut the others' insert short.
func (g *groupCommit) write(batch []*pendingInsert) {
	ctx, cancel := context.WithTimeout(context.Background(), groupWriteTimeout)
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
