package contract

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/evchat/chatd/ports"

	"github.com/evchat/chatd/tests/eventually"
)

// testBatches: commits that share a half message are delivered one by
// one, each where its route reaches, and only if every commit of the
// batch is stored; the stored ones of a batch that is not go out again.
func testBatches(t *testing.T, features TxBusFeatures, newBus TxBusFactory) {
	t.Run("a batch with a loser delivers its survivors once and never the loser", func(t *testing.T) {
		t.Parallel()
		handler := newScriptedHandler(ports.TxCommit, ports.TxCommit)
		stream := uniqueName(t, "s")
		first, loser, second := sampleCommit(stream, 1), sampleCommit(stream, 2), sampleCommit(stream, 3)
		handler.lose(loser.ID)
		bus := newBus(t, handler, 2)
		inboxes := subscribeDelivery(bus)
		grouped := subscribeGroup(t, bus)
		bus.Start(t)
		out := bus.Publisher.PublishBatch(context.Background(), []ports.Commit{first, loser, second})
		assertOutcomes(t, out, []ports.TxState{ports.TxCommit, ports.TxRollback, ports.TxCommit})
		if !errors.Is(out[1].Err, ports.ErrVersionConflict) {
			t.Errorf("the loser's error is %v, want its version conflict", out[1].Err)
		}
		for _, id := range []string{first.ID, second.ID} {
			if handler.checks(id) == 0 {
				t.Errorf("survivor %s went out again without a check that it is stored", id)
			}
		}
		assertDeliveredOnce(t, features, inboxes, grouped, []ports.Commit{first, second}, []ports.Commit{loser})
		for _, c := range []ports.Commit{first, second} {
			assertCommits(t, []ports.Commit{inboxes[0].get(c.ID)}, []ports.Commit{c})
		}
	})

	t.Run("a committed batch reaches each node with the commits routed to it", func(t *testing.T) {
		t.Parallel()
		bus := newBus(t, newScriptedHandler(ports.TxCommit, ports.TxCommit), 2)
		inboxes := subscribeDelivery(bus)
		bus.Start(t)
		stream := uniqueName(t, "s")
		toA, toB := sampleCommit(stream, 1), sampleCommit(stream, 2)
		toA.Route, toB.Route = ports.RouteTo(bus.NodeIDs[0]), ports.RouteTo(bus.NodeIDs[1])
		out := bus.Publisher.PublishBatch(context.Background(), []ports.Commit{toA, toB})
		assertOutcomes(t, out, []ports.TxState{ports.TxCommit, ports.TxCommit})
		want := [][]ports.Commit{{toA}, {toB}}
		if !features.Routes {
			want = [][]ports.Commit{{toA, toB}, {toA, toB}}
		}
		for i, in := range inboxes {
			for _, c := range want[i] {
				eventually.Within(t, features.Settle, fmt.Sprintf("node %d to get %s", i, c.ID), func() bool { return in.count(c.ID) >= 1 })
			}
		}
		time.Sleep(features.Quiet)
		for i, in := range inboxes {
			got := in.count(toA.ID) + in.count(toB.ID)
			if got != len(want[i]) {
				t.Errorf("node %d got %d deliveries of the batch's 2 commits, want %d", i, got, len(want[i]))
			}
			for _, c := range want[i] {
				// A route says where a commit goes, and a bus need not
				// carry it further.
				got := in.get(c.ID)
				c.Route = got.Route
				assertCommits(t, []ports.Commit{got}, []ports.Commit{c})
			}
		}
	})

	t.Run("a batch of unknown outcome is checked back commit by commit: survivors once, the loser never", func(t *testing.T) {
		t.Parallel()
		handler := newScriptedHandler(ports.TxUnknown, ports.TxCommit)
		stream := uniqueName(t, "s")
		stored, loser := sampleCommit(stream, 1), sampleCommit(stream+"-b", 1)
		handler.lose(loser.ID)
		bus := newBus(t, handler, 1)
		inboxes := subscribeDelivery(bus)
		grouped := subscribeGroup(t, bus)
		bus.Start(t)
		// The loser's local transaction rolls back, the other's outcome is
		// unknown: the batch waits for checkback.
		out := bus.Publisher.PublishBatch(context.Background(), []ports.Commit{stored, loser})
		assertOutcomes(t, out, []ports.TxState{ports.TxUnknown, ports.TxRollback})
		eventually.Within(t, features.Settle, "checkback of the batch", func() bool { return handler.checks(loser.ID) > 0 })
		assertDeliveredOnce(t, features, inboxes, grouped, []ports.Commit{stored}, []ports.Commit{loser})
	})

	t.Run("concurrent publications share half messages, each delivered once, losers never", func(t *testing.T) {
		t.Parallel()
		handler := newScriptedHandler(ports.TxCommit, ports.TxCommit)
		stream := uniqueName(t, "s")
		var commits, winners, losers []ports.Commit
		for v := uint64(1); v <= 40; v++ {
			c := sampleCommit(stream, v)
			commits = append(commits, c)
			if v%7 == 0 {
				handler.lose(c.ID)
				losers = append(losers, c)
			} else {
				winners = append(winners, c)
			}
		}
		bus := newBus(t, handler, 1)
		inboxes := subscribeDelivery(bus)
		grouped := subscribeGroup(t, bus)
		bus.Start(t)
		states := make([]ports.TxState, len(commits))
		var wg sync.WaitGroup
		for i, c := range commits {
			wg.Go(func() { states[i], _ = bus.Publisher.Publish(context.Background(), c) })
		}
		wg.Wait()
		for i, c := range commits {
			want := ports.TxCommit
			if handler.losers[c.ID] {
				want = ports.TxRollback
			}
			if states[i] != want {
				t.Errorf("publish %s: %v, want %v", c.ID, states[i], want)
			}
		}
		assertDeliveredOnce(t, features, inboxes, grouped, winners, losers)
	})

	if features.CrashProducer == nil {
		return
	}

	t.Run("a producer killed mid-batch: checkback delivers the batch's stored commits once, never its loser", func(t *testing.T) {
		t.Parallel()
		stream := uniqueName(t, "s")
		first, loser, second := sampleCommit(stream, 1), sampleCommit(stream, 2), sampleCommit(stream, 3)
		handler := newScriptedHandler(ports.TxUnknown, ports.TxCommit)
		handler.lose(loser.ID)
		bus := newBus(t, handler, 1)
		inboxes := subscribeDelivery(bus)
		grouped := subscribeGroup(t, bus)
		bus.Start(t)
		features.CrashProducer(t, []ports.Commit{first, loser, second}, true)
		eventually.Within(t, features.Settle, "checkback of the crashed producer's batch", func() bool { return handler.checks(loser.ID) > 0 })
		assertDeliveredOnce(t, features, inboxes, grouped, []ports.Commit{first, second}, []ports.Commit{loser})
	})
}

func assertOutcomes(t *testing.T, got []ports.TxOutcome, want []ports.TxState) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d outcomes, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].State != want[i] {
			t.Errorf("commit %d of the batch: %v (%v), want %v", i, got[i].State, got[i].Err, want[i])
		}
	}
}

// assertDeliveredOnce waits for every commit of delivered to reach each
// node and the cluster group, then checks that each came once to each node,
// and that none of never came at all.
func assertDeliveredOnce(t *testing.T, features TxBusFeatures, inboxes []*inbox, grouped *inbox, delivered, never []ports.Commit) {
	t.Helper()
	for _, c := range delivered {
		for i, in := range inboxes {
			eventually.Within(t, features.Settle, fmt.Sprintf("node %d to get %s", i, c.ID), func() bool { return in.count(c.ID) >= 1 })
		}
		eventually.Within(t, features.Settle, "the cluster group to get "+c.ID, func() bool { return grouped.count(c.ID) >= 1 })
	}
	time.Sleep(features.Quiet)
	for _, c := range delivered {
		for i, in := range inboxes {
			if n := in.count(c.ID); n != 1 {
				t.Errorf("node %d got %s %d times, want once", i, c.ID, n)
			}
		}
	}
	for _, c := range never {
		for i, in := range inboxes {
			if n := in.count(c.ID); n != 0 {
				t.Errorf("node %d got the loser %s %d times", i, c.ID, n)
			}
		}
		if n := grouped.count(c.ID); n != 0 {
			t.Errorf("the cluster group got the loser %s %d times", c.ID, n)
		}
	}
}
