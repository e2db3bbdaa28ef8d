package application_test

import (
	"context"
	"testing"
	"time"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/ports"
)

type fixedClock struct{ now time.Time }

func (c fixedClock) Now() time.Time { return c.now }

func TestCheckbackReadsTheStore(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	store := memory.NewEventStore()
	stored := ports.Commit{ID: "m_1", Stream: "c_s", Version: 1, CommittedAt: now}
	if err := store.Append(context.Background(), stored); err != nil {
		t.Fatal(err)
	}
	tx, err := application.NewTransactions(store, fixedClock{now}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		commit ports.Commit
		want   ports.TxState
	}{
		{"stored as published", stored, ports.TxCommit},
		{"same id stored at another version by a retry", ports.Commit{ID: "m_1", Stream: "c_s", Version: 2, CommittedAt: now}, ports.TxRollback},
		{"absent and young", ports.Commit{ID: "m_2", Stream: "c_s", Version: 2, CommittedAt: now.Add(-time.Second)}, ports.TxUnknown},
		{"absent past the timeout", ports.Commit{ID: "m_3", Stream: "c_s", Version: 2, CommittedAt: now.Add(-6 * time.Second)}, ports.TxRollback},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tx.Check(context.Background(), tt.commit); got != tt.want {
				t.Fatalf("Check = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLocalTransactionOutcomes(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name  string
		store ports.EventStore
		want  ports.TxState
	}{
		{"stored", memory.NewEventStore(), ports.TxCommit},
		{"store unreachable", downStore{memory.NewEventStore()}, ports.TxUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx, _ := application.NewTransactions(tt.store, fixedClock{now}, time.Second)
			if got, _ := tx.ExecuteLocal(context.Background(), ports.Commit{ID: "x", Stream: "s", Version: 1, CommittedAt: now}); got != tt.want {
				t.Fatalf("ExecuteLocal = %v, want %v", got, tt.want)
			}
		})
	}
	store := memory.NewEventStore()
	tx, _ := application.NewTransactions(store, fixedClock{now}, time.Second)
	_, _ = tx.ExecuteLocal(context.Background(), ports.Commit{ID: "x", Stream: "s", Version: 1, CommittedAt: now})
	if got, _ := tx.ExecuteLocal(context.Background(), ports.Commit{ID: "y", Stream: "s", Version: 1, CommittedAt: now}); got != ports.TxRollback {
		t.Fatalf("a version conflict must roll back, got %v", got)
	}
}

// deadlineStore records how long each append was given.
type deadlineStore struct {
	ports.EventStore
	budget time.Duration
}

func (s *deadlineStore) Append(ctx context.Context, c ports.Commit) error {
	if deadline, ok := ctx.Deadline(); ok {
		s.budget = time.Until(deadline)
	}
	return s.EventStore.Append(ctx, c)
}

// The append must end half the transaction timeout after the commit was
// built, however long the half message took, so that it can never land
// after checkback rolled the transaction back (at the whole timeout).
func TestLocalTransactionEndsByHalfTheTimeoutAfterTheCommitWasBuilt(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	const timeout = 6 * time.Second
	tests := []struct {
		name       string
		age        time.Duration
		want       ports.TxState
		wantBudget time.Duration
	}{
		{"built just now", 0, ports.TxCommit, timeout / 2},
		{"half message took two seconds", 2 * time.Second, ports.TxCommit, timeout/2 - 2*time.Second},
		{"half the timeout gone", timeout / 2, ports.TxUnknown, 0},
		{"past the timeout, as checkback may roll back", timeout + time.Second, ports.TxUnknown, -timeout/2 - time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &deadlineStore{EventStore: memory.NewEventStore()}
			tx, _ := application.NewTransactions(store, fixedClock{now}, timeout)
			c := ports.Commit{ID: "m_1", Stream: "c_s", Version: 1, CommittedAt: now.Add(-tt.age)}
			got, err := tx.ExecuteLocal(context.Background(), c)
			if got != tt.want {
				t.Fatalf("ExecuteLocal = %v (%v), want %v", got, err, tt.want)
			}
			if store.budget > tt.wantBudget || store.budget < tt.wantBudget-time.Second {
				t.Errorf("the append was given %v, want %v", store.budget, tt.wantBudget)
			}
			_, err = store.FindCommit(context.Background(), c.ID)
			if stored := err == nil; stored != (tt.want == ports.TxCommit) {
				t.Errorf("stored = %v after ExecuteLocal = %v", stored, got)
			}
		})
	}
}

// findCounter counts the checkback reads that reach the store.
type findCounter struct {
	ports.EventStore
	finds int
}

func (f *findCounter) FindCommit(ctx context.Context, id string) (ports.Commit, error) {
	f.finds++
	return f.EventStore.FindCommit(ctx, id)
}

// TestCheckbackReadsTheStoreOncePerCommit: a broker asks again and again
// about the same half messages when its checks fall behind; where a commit
// is stored, once known, is answered from memory, while an absent commit
// is read again each time, since a later attempt may store it.
func TestCheckbackReadsTheStoreOncePerCommit(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	store := &findCounter{EventStore: memory.NewEventStore()}
	tx, err := application.NewTransactions(store, fixedClock{now}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	executedHere := ports.Commit{ID: "m_1", Stream: "c_s", Version: 1, CommittedAt: now}
	if state, err := tx.ExecuteLocal(ctx, executedHere); state != ports.TxCommit {
		t.Fatal(state, err)
	}
	storedElsewhere := ports.Commit{ID: "m_2", Stream: "c_s", Version: 2, CommittedAt: now}
	if err := store.Append(ctx, storedElsewhere); err != nil {
		t.Fatal(err)
	}
	absent := ports.Commit{ID: "m_3", Stream: "c_s", Version: 3, CommittedAt: now}
	steps := []struct {
		name      string
		commit    ports.Commit
		want      ports.TxState
		wantFinds int // store reads so far
	}{
		{"stored by this node's local transaction", executedHere, ports.TxCommit, 0},
		{"the same id at another version", ports.Commit{ID: "m_1", Stream: "c_s", Version: 2, CommittedAt: now}, ports.TxRollback, 0},
		{"stored by another node, first check", storedElsewhere, ports.TxCommit, 1},
		{"stored by another node, asked again", storedElsewhere, ports.TxCommit, 1},
		{"absent", absent, ports.TxUnknown, 2},
		{"absent, asked again", absent, ports.TxUnknown, 3},
	}
	for _, s := range steps {
		if got := tx.Check(ctx, s.commit); got != s.want || store.finds != s.wantFinds {
			t.Fatalf("%s: Check = %v after %d store reads, want %v after %d", s.name, got, store.finds, s.want, s.wantFinds)
		}
	}
}
