package rocketmq

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evchat/chatd/ports"
	"github.com/evchat/chatd/tests/eventually"
)

func commitsOf(versions ...uint64) []ports.Commit {
	out := make([]ports.Commit, len(versions))
	for i, v := range versions {
		out[i] = ports.Commit{Stream: "s", Version: v}
	}
	return out
}

func versionsOf(commits []ports.Commit) []uint64 {
	out := make([]uint64, len(commits))
	for i, c := range commits {
		out[i] = c.Version
	}
	return out
}

// TestQueueGateMergesWaitingBatches: batches that arrive while a call runs
// go together into the next call, one call at a time, and each batch gets
// the outcome of the call that handled it.
func TestQueueGateMergesWaitingBatches(t *testing.T) {
	var g queueGate
	release := make(chan struct{})
	var (
		mu         sync.Mutex
		calls      [][]uint64
		inCall     atomic.Int32
		overlapped atomic.Bool
	)
	failing := errors.New("store down")
	handle := func(_ context.Context, commits []ports.Commit) error {
		if inCall.Add(1) > 1 {
			overlapped.Store(true)
		}
		defer inCall.Add(-1)
		mu.Lock()
		calls = append(calls, versionsOf(commits))
		first := len(calls) == 1
		mu.Unlock()
		if first {
			<-release
			return nil
		}
		return failing
	}

	firstDone := make(chan error, 1)
	go func() { firstDone <- g.run(context.Background(), commitsOf(1), 0, handle) }()
	eventually.True(t, "the first call", func() bool { mu.Lock(); defer mu.Unlock(); return len(calls) == 1 })

	// Two batches arrive while the first call runs; they must wait.
	results := make([]chan error, 2)
	for i := range results {
		results[i] = make(chan error, 1)
		go func() { results[i] <- g.run(context.Background(), commitsOf(uint64(2+2*i), uint64(3+2*i)), 0, handle) }()
		eventually.True(t, "the batch to wait", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.waiting) == i+1 })
	}
	close(release)

	if err := <-firstDone; err != nil {
		t.Fatalf("first batch: %v", err)
	}
	for i, r := range results {
		if err := <-r; !errors.Is(err, failing) {
			t.Fatalf("waiting batch %d: %v, want the merged call's error", i, err)
		}
	}
	want := [][]uint64{{1}, {2, 3, 4, 5}}
	if !slices.EqualFunc(calls, want, slices.Equal) || overlapped.Load() {
		t.Fatalf("calls %v (overlapping: %v), want %v one at a time", calls, overlapped.Load(), want)
	}
	if g.running || len(g.waiting) != 0 {
		t.Fatalf("gate left running %v with %d waiting", g.running, len(g.waiting))
	}
}

// TestQueueGateLingers: with a linger, batches arriving within it share the
// first call.
func TestQueueGateLingers(t *testing.T) {
	var g queueGate
	var mu sync.Mutex
	var calls [][]uint64
	handle := func(_ context.Context, commits []ports.Commit) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, versionsOf(commits))
		return nil
	}
	var wg sync.WaitGroup
	for v := range uint64(3) {
		wg.Add(1)
		go func() { defer wg.Done(); _ = g.run(context.Background(), commitsOf(v+1), 300*time.Millisecond, handle) }()
		eventually.True(t, "the batch to wait", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.waiting) == int(v+1) })
	}
	wg.Wait()
	if len(calls) != 1 || len(calls[0]) != 3 {
		t.Fatalf("calls %v, want one call with the three batches", calls)
	}
}

// TestQueueGatePassesTheLead: a leader returns after its own call even while
// batches keep coming; a waiting batch leads the next.
func TestQueueGatePassesTheLead(t *testing.T) {
	var g queueGate
	entered := make(chan struct{}, 4)
	proceed := make(chan struct{})
	handle := func(context.Context, []ports.Commit) error {
		entered <- struct{}{}
		<-proceed
		return nil
	}
	first := make(chan error, 1)
	go func() { first <- g.run(context.Background(), commitsOf(1), 0, handle) }()
	<-entered
	second := make(chan error, 1)
	go func() { second <- g.run(context.Background(), commitsOf(2), 0, handle) }()
	eventually.True(t, "the second batch to wait", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.waiting) == 1 })
	proceed <- struct{}{}
	select {
	case err := <-first:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the first leader did not return after its own call")
	}
	<-entered // the second batch leads its own call
	proceed <- struct{}{}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
}

// TestQueueGateSurvivesAPanic: a handler that panics (the client recovers
// it) still answers the batches merged into its call, and the queue goes
// on.
func TestQueueGateSurvivesAPanic(t *testing.T) {
	var g queueGate
	var calls atomic.Int32
	handle := func(context.Context, []ports.Commit) error {
		if calls.Add(1) == 1 {
			panic("handler bug")
		}
		return nil
	}
	go func() {
		defer func() { _ = recover() }()
		_ = g.run(context.Background(), commitsOf(1), 200*time.Millisecond, handle)
	}()
	eventually.True(t, "the gate to run", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.running })
	merged := make(chan error, 1)
	go func() { merged <- g.run(context.Background(), commitsOf(2), 200*time.Millisecond, handle) }()
	select {
	case err := <-merged:
		if !errors.Is(err, errHandlerPanicked) {
			t.Fatalf("batch merged into the call that panicked: %v, want errHandlerPanicked", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a batch merged into a call that panicked was never answered")
	}
	if err := g.run(context.Background(), commitsOf(3), 0, handle); err != nil {
		t.Fatalf("the next batch: %v", err)
	}
}
