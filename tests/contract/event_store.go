package contract

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// TestEventStore runs the event store contract against stores made by newStore.
func TestEventStore(t *testing.T, newStore func(t *testing.T) ports.EventStore) {
	t.Run("append then load in version order", func(t *testing.T) {
		t.Parallel()
		store, ctx, stream := newStore(t), context.Background(), uniqueName(t, "s")
		want := []ports.Commit{sampleCommit(stream, 1), sampleCommit(stream, 2), sampleCommit(stream, 3)}
		for _, c := range want {
			if err := store.Append(ctx, c); err != nil {
				t.Fatalf("append v%d: %v", c.Version, err)
			}
		}
		assertCommits(t, mustLoad(t, store, stream, 1, 0), want)
		assertCommits(t, mustLoad(t, store, stream, 2, 2), want[1:2])
		assertCommits(t, mustLoad(t, store, stream, 2, 99), want[1:])
		assertCommits(t, mustLoad(t, store, stream, 4, 0), nil)
		assertCommits(t, mustLoad(t, store, uniqueName(t, "empty"), 1, 0), nil)
	})

	t.Run("every event type survives the round trip", func(t *testing.T) {
		t.Parallel()
		store, ctx, stream := newStore(t), context.Background(), uniqueName(t, "s")
		c := sampleCommit(stream, 1)
		c.Events = []conversation.Event{
			conversation.ConversationStarted{Conversation: "c_x", Participants: [2]user.ID{"1001", "1002"}},
			conversation.MessagePosted{Conversation: "c_x", Seq: 1, MessageID: "m_1", From: "1001", To: "1002",
				Body: "héllo {\"$gt\": 1} 🎉", SentAt: time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)},
			conversation.DeliveredUpTo{Conversation: "c_x", User: "1002", Seq: 1},
			conversation.ReadUpTo{Conversation: "c_x", User: "1002", Seq: 1},
		}
		if err := store.Append(ctx, c); err != nil {
			t.Fatal(err)
		}
		assertCommits(t, mustLoad(t, store, stream, 1, 0), []ports.Commit{c})
	})

	t.Run("a taken version is a conflict", func(t *testing.T) {
		t.Parallel()
		store, ctx, stream := newStore(t), context.Background(), uniqueName(t, "s")
		if err := store.Append(ctx, sampleCommit(stream, 1)); err != nil {
			t.Fatal(err)
		}
		again := sampleCommit(stream, 1)
		again.ID += "-again"
		err := store.Append(ctx, again)
		if !errors.Is(err, ports.ErrVersionConflict) {
			t.Fatalf("second append of v1: got %v, want ErrVersionConflict", err)
		}
		assertCommits(t, mustLoad(t, store, stream, 1, 0), []ports.Commit{sampleCommit(stream, 1)})
	})

	t.Run("a skipped version is a conflict", func(t *testing.T) {
		t.Parallel()
		store, ctx, stream := newStore(t), context.Background(), uniqueName(t, "s")
		err := store.Append(ctx, sampleCommit(stream, 2))
		if !errors.Is(err, ports.ErrVersionConflict) {
			t.Fatalf("append of v2 on an empty stream: got %v, want ErrVersionConflict", err)
		}
	})

	t.Run("a taken commit id is a duplicate", func(t *testing.T) {
		t.Parallel()
		store, ctx := newStore(t), context.Background()
		first := sampleCommit(uniqueName(t, "s"), 1)
		if err := store.Append(ctx, first); err != nil {
			t.Fatal(err)
		}
		again := sampleCommit(uniqueName(t, "s"), 1)
		again.ID = first.ID
		if err := store.Append(ctx, again); !errors.Is(err, ports.ErrDuplicateCommit) {
			t.Fatalf("got %v, want ErrDuplicateCommit", err)
		}
		assertCommits(t, mustLoad(t, store, again.Stream, 1, 0), nil)
	})

	t.Run("an append past its deadline fails and is never written", func(t *testing.T) {
		t.Parallel()
		store, stream := newStore(t), uniqueName(t, "s")
		if err := store.Append(context.Background(), sampleCommit(stream, 1)); err != nil {
			t.Fatal(err)
		}
		expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Millisecond))
		defer cancel()
		late := []ports.Commit{sampleCommit(stream, 2), sampleCommit(uniqueName(t, "fresh"), 1)}
		for _, c := range late {
			if err := store.Append(expired, c); !errors.Is(err, ports.ErrUnavailable) {
				t.Errorf("append of %s@%d past its deadline: got %v, want ErrUnavailable", c.Stream, c.Version, err)
			}
		}
		// Checkback rolls back what it cannot find once the transaction
		// timed out, so a late write would be stored and never published.
		time.Sleep(100 * time.Millisecond)
		for _, c := range late {
			if _, err := store.FindCommit(context.Background(), c.ID); !errors.Is(err, ports.ErrCommitNotFound) {
				t.Errorf("%s after its append failed past the deadline: got %v, want ErrCommitNotFound", c.ID, err)
			}
		}
		assertCommits(t, mustLoad(t, store, stream, 1, 0), []ports.Commit{sampleCommit(stream, 1)})
	})

	t.Run("find a commit by id", func(t *testing.T) {
		t.Parallel()
		store, ctx := newStore(t), context.Background()
		c := sampleCommit(uniqueName(t, "s"), 1)
		if err := store.Append(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, err := store.FindCommit(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		assertCommits(t, []ports.Commit{got}, []ports.Commit{c})
		if _, err := store.FindCommit(ctx, uniqueName(t, "missing")); !errors.Is(err, ports.ErrCommitNotFound) {
			t.Fatalf("missing id: got %v, want ErrCommitNotFound", err)
		}
	})

	t.Run("exactly one of twenty racing writers wins a version", func(t *testing.T) {
		t.Parallel()
		store, ctx, stream := newStore(t), context.Background(), uniqueName(t, "s")
		const writers = 20
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := sampleCommit(stream, 1)
				c.ID = fmt.Sprintf("%s-w%d", stream, i)
				errs[i] = store.Append(ctx, c)
			}()
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, ports.ErrVersionConflict):
				t.Errorf("loser got %v, want ErrVersionConflict", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d writers won v1, want exactly 1", wins)
		}
		if got := mustLoad(t, store, stream, 1, 0); len(got) != 1 {
			t.Fatalf("stream holds %d commits, want 1", len(got))
		}
	})

	t.Run("ping answers", func(t *testing.T) {
		t.Parallel()
		if err := newStore(t).Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("scan visits every commit of every stream in order", func(t *testing.T) {
		t.Parallel()
		store, ctx := newStore(t), context.Background()
		scanner, ok := store.(ports.StreamScanner)
		if !ok {
			t.Fatalf("%T does not implement ports.StreamScanner, which replay needs", store)
		}
		a, b := uniqueName(t, "a"), uniqueName(t, "b")
		for _, c := range []ports.Commit{sampleCommit(a, 1), sampleCommit(b, 1), sampleCommit(a, 2)} {
			if err := store.Append(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		last := map[string]uint64{}
		err := scanner.Scan(ctx, func(c ports.Commit) error {
			if c.Stream != a && c.Stream != b {
				return nil
			}
			if c.Version != last[c.Stream]+1 {
				return fmt.Errorf("%s: v%d after v%d", c.Stream, c.Version, last[c.Stream])
			}
			last[c.Stream] = c.Version
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if last[a] != 2 || last[b] != 1 {
			t.Fatalf("scan saw %v, want %s up to 2 and %s up to 1", last, a, b)
		}
	})
}

func sampleCommit(stream string, version uint64) ports.Commit {
	return ports.Commit{
		ID: fmt.Sprintf("%s-%d", stream, version), Stream: stream, Version: version,
		Events: []conversation.Event{conversation.MessagePosted{
			Conversation: "c_sample", Seq: version, MessageID: "m_sample", From: "alice", To: "bob",
			Body: "hello", SentAt: time.Date(2026, 11, 27, 8, 0, 0, 123_000_000, time.UTC),
		}},
		CommittedAt: time.Date(2026, 11, 27, 8, 0, 0, 456_000_000, time.UTC),
		Origin:      "node-1/session-7",
	}
}

func mustLoad(t *testing.T, store ports.EventStore, stream string, from, to uint64) []ports.Commit {
	t.Helper()
	commits, err := store.Load(context.Background(), stream, from, to)
	if err != nil {
		t.Fatalf("load %s [%d,%d]: %v", stream, from, to, err)
	}
	return commits
}

func assertCommits(t *testing.T, got, want []ports.Commit) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d commits, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.CommittedAt.Equal(w.CommittedAt) {
			t.Errorf("commit %d CommittedAt = %v, want %v", i, g.CommittedAt, w.CommittedAt)
		}
		g.CommittedAt, w.CommittedAt = time.Time{}, time.Time{}
		for j := range g.Events {
			if p, ok := g.Events[j].(conversation.MessagePosted); ok {
				p.SentAt = p.SentAt.UTC()
				g.Events[j] = p
			}
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("commit %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}
