package mongo

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/ports"

	"github.com/evchat/chatd/tests/eventually"
)

// slowInserter stands in for the commits collection: each batch blocks
// until release is closed, and every batch is recorded with the deadline
// it was written under.
type slowInserter struct {
	started chan struct{}
	release chan struct{}

	mu      sync.Mutex
	batches []writtenBatch
}

type writtenBatch struct {
	ids         []string
	deadline    time.Time
	hasDeadline bool
}

func newSlowInserter() *slowInserter {
	return &slowInserter{started: make(chan struct{}, 64), release: make(chan struct{})}
}

func (f *slowInserter) insertMany(ctx context.Context, docs []any) error {
	b := writtenBatch{}
	b.deadline, b.hasDeadline = ctx.Deadline()
	for _, d := range docs {
		b.ids = append(b.ids, d.(commitDoc).ID)
	}
	f.mu.Lock()
	f.batches = append(f.batches, b)
	f.mu.Unlock()
	f.started <- struct{}{}
	<-f.release
	return nil
}

func (f *slowInserter) written() []writtenBatch {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.batches)
}

// occupyFlushers starts as many appends as there are flushers, one at a
// time, each once the one before is inside its slow batch: started at
// once, several could share a batch and leave a flusher free. Then the
// next append must queue.
func occupyFlushers(t *testing.T, g *groupCommit, f *slowInserter) *sync.WaitGroup {
	t.Helper()
	var busy sync.WaitGroup
	for i := range maxGroupFlushers {
		busy.Go(func() {
			if err := g.insert(context.Background(), commitDoc{ID: "busy-" + string(rune('a'+i))}); err != nil {
				t.Errorf("busy append %d: %v", i, err)
			}
		})
		select {
		case <-f.started:
		case <-time.After(5 * time.Second):
			t.Fatalf("busy append %d never reached the inserter", i)
		}
	}
	return &busy
}

func queued(g *groupCommit) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}

// An append queued behind slow batches, whose deadline passes before a
// flusher is free, must fail and never be written later: past its deadline
// checkback may already have rolled its transaction back.
func TestGroupCommitNeverWritesAnAppendPastItsDeadline(t *testing.T) {
	f := newSlowInserter()
	g := &groupCommit{insertMany: f.insertMany}
	busy := occupyFlushers(t, g, f)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := g.insert(ctx, commitDoc{ID: "late"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("append past its deadline: got %v, want context.DeadlineExceeded", err)
	}
	close(f.release)
	busy.Wait()

	for _, b := range f.written() {
		if slices.Contains(b.ids, "late") {
			t.Fatalf("the append was written after its deadline had passed and it had failed: batch %v", b.ids)
		}
	}
	if n := queued(g); n != 0 {
		t.Fatalf("%d appends left in the queue", n)
	}
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// The same through a local transaction: its append, queued behind a slow
// batch, fails as unavailable (the client resends) once half the
// transaction timeout has passed, and is not written when the batch ahead
// of it ends later, which could be after checkback rolled it back.
func TestLocalTransactionQueuedBehindASlowBatchIsNeverWrittenLate(t *testing.T) {
	f := newSlowInserter()
	store := &EventStore{known: map[string]uint64{}, group: &groupCommit{insertMany: f.insertMany}}
	const timeout = 200 * time.Millisecond
	tx, err := application.NewTransactions(store, wallClock{}, timeout)
	if err != nil {
		t.Fatal(err)
	}
	busy := occupyFlushers(t, store.group, f)

	c := ports.Commit{ID: "m_late", Stream: "c_late", Version: 1, CommittedAt: time.Now()}
	state, err := tx.ExecuteLocal(context.Background(), c)
	if state != ports.TxUnknown || !errors.Is(err, ports.ErrUnavailable) {
		t.Errorf("ExecuteLocal behind a slow batch = %v, %v; want unknown and ErrUnavailable", state, err)
	}
	close(f.release)
	busy.Wait()
	for _, b := range f.written() {
		if slices.Contains(b.ids, c.ID) {
			t.Fatalf("the commit was written after its append had failed: batch %v", b.ids)
		}
	}
}

// A batch is written under the earliest deadline of its members, so the
// driver tells the server (maxTimeMS) to give up before any member's
// transaction may be rolled back.
func TestGroupCommitWritesABatchUnderItsEarliestDeadline(t *testing.T) {
	f := newSlowInserter()
	g := &groupCommit{insertMany: f.insertMany}
	busy := occupyFlushers(t, g, f)

	early := time.Now().Add(3 * time.Second)
	waiting := map[string]time.Time{"early": early, "later": early.Add(time.Second), "none": {}}
	var members sync.WaitGroup
	for id, deadline := range waiting {
		members.Go(func() {
			ctx := context.Background()
			if !deadline.IsZero() {
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, deadline)
				defer cancel()
			}
			if err := g.insert(ctx, commitDoc{ID: id}); err != nil {
				t.Errorf("append %s: %v", id, err)
			}
		})
	}
	eventually.True(t, "every member to queue", func() bool { return queued(g) >= len(waiting) })
	close(f.release)
	busy.Wait()
	members.Wait()

	var found bool
	for _, b := range f.written() {
		if !slices.Contains(b.ids, "early") {
			continue
		}
		found = true
		if len(b.ids) != len(waiting) {
			t.Errorf("the queued appends went out as %v, want one batch of %d", b.ids, len(waiting))
		}
		if !b.hasDeadline || !b.deadline.Equal(early) {
			t.Errorf("batch %v written under deadline %v (set %v), want the earliest member's %v", b.ids, b.deadline, b.hasDeadline, early)
		}
	}
	if !found {
		t.Fatal("the queued appends were never written")
	}
}
