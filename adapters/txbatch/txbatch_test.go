package txbatch

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/evchat/chatd/ports"
)

const (
	commit   = ports.TxCommit
	rollback = ports.TxRollback
	unknown  = ports.TxUnknown
)

// byID answers the local transaction and checkback of each commit by its
// id, and counts how often each was asked.
type byID struct {
	local, check map[string]ports.TxState
	appends      atomic.Int32
	checks       atomic.Int32
}

func (h *byID) ExecuteLocal(_ context.Context, c ports.Commit) (ports.TxState, error) {
	h.appends.Add(1)
	if s := h.local[c.ID]; s != commit {
		return s, ports.ErrVersionConflict
	}
	return commit, nil
}

func (h *byID) Check(_ context.Context, c ports.Commit) ports.TxState {
	h.checks.Add(1)
	return h.check[c.ID]
}

func commitsOf(ids ...string) []ports.Commit {
	out := make([]ports.Commit, len(ids))
	for i, id := range ids {
		out[i] = ports.Commit{ID: id}
	}
	return out
}

// TestBatchEndsAndSettles: a batch commits only when every commit of it is
// stored; otherwise its stored commits survive to go out again and the
// others keep their own outcome.
func TestBatchEndsAndSettles(t *testing.T) {
	tests := []struct {
		name          string
		local         map[string]ports.TxState
		wantEnd       ports.TxState
		wantSurvivors []string
		wantStates    []ports.TxState
	}{
		{"all stored", map[string]ports.TxState{"a": commit, "b": commit}, commit, nil, []ports.TxState{commit, commit}},
		{"a loser", map[string]ports.TxState{"a": commit, "b": rollback}, rollback, []string{"a"}, []ports.TxState{commit, rollback}},
		{"all lost", map[string]ports.TxState{"a": rollback, "b": rollback}, rollback, nil, []ports.TxState{rollback, rollback}},
		{"an unknown outcome", map[string]ports.TxState{"a": commit, "b": unknown}, unknown, []string{"a"}, []ports.TxState{commit, unknown}},
		{"unknown and lost", map[string]ports.TxState{"a": rollback, "b": unknown}, unknown, nil, []ports.TxState{rollback, unknown}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &byID{local: tt.local}
			members := []*Member{{Ctx: context.Background(), Commit: ports.Commit{ID: "a"}}, {Ctx: context.Background(), Commit: ports.Commit{ID: "b"}}}
			end := RunLocal(h, members)
			if end != tt.wantEnd {
				t.Fatalf("end %v, want %v", end, tt.wantEnd)
			}
			var survivors []string
			for _, m := range Settle(members, end) {
				if !m.Stored {
					t.Errorf("survivor %s not marked stored", m.Commit.ID)
				}
				survivors = append(survivors, m.Commit.ID)
			}
			if !slices.Equal(survivors, tt.wantSurvivors) {
				t.Errorf("survivors %v, want %v", survivors, tt.wantSurvivors)
			}
			for i, m := range members {
				if m.State != tt.wantStates[i] {
					t.Errorf("%s: %v, want %v", m.Commit.ID, m.State, tt.wantStates[i])
				}
			}
		})
	}
}

// TestStoredMembersAreCheckedNotAppended: a survivor's next local
// transaction only checks that it is stored.
func TestStoredMembersAreCheckedNotAppended(t *testing.T) {
	tests := []struct {
		name      string
		check     ports.TxState
		wantState ports.TxState
		wantErr   error
	}{
		{"found where it was stored", commit, commit, nil},
		{"the store does not answer", unknown, unknown, ErrNotConfirmed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &byID{check: map[string]ports.TxState{"a": tt.check}}
			m := &Member{Ctx: context.Background(), Commit: ports.Commit{ID: "a"}, Stored: true}
			RunLocal(h, []*Member{m})
			if h.appends.Load() != 0 || h.checks.Load() != 1 {
				t.Fatalf("%d appends and %d checks, want a check alone", h.appends.Load(), h.checks.Load())
			}
			if m.State != tt.wantState || !errors.Is(m.Err, tt.wantErr) {
				t.Fatalf("%v, %v; want %v, %v", m.State, m.Err, tt.wantState, tt.wantErr)
			}
		})
	}
}

// TestCheckOfABatch: checkback commits a batch only when every commit is
// stored, and returns the stored commits of a batch it rolls back.
func TestCheckOfABatch(t *testing.T) {
	tests := []struct {
		name       string
		check      map[string]ports.TxState
		wantState  ports.TxState
		wantStored []string
	}{
		{"all stored", map[string]ports.TxState{"a": commit, "b": commit}, commit, nil},
		{"a loser", map[string]ports.TxState{"a": commit, "b": rollback}, rollback, []string{"a"}},
		{"one not yet known", map[string]ports.TxState{"a": commit, "b": unknown}, unknown, nil},
		{"nothing stored", map[string]ports.TxState{"a": rollback, "b": rollback}, rollback, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state, stored := Check(context.Background(), &byID{check: tt.check}, commitsOf("a", "b"))
			var ids []string
			for _, c := range stored {
				ids = append(ids, c.ID)
			}
			if state != tt.wantState || !slices.Equal(ids, tt.wantStored) {
				t.Fatalf("%v with %v stored, want %v with %v", state, ids, tt.wantState, tt.wantStored)
			}
		})
	}
}

// TestUnsentMembers: a half message the bus never took stored nothing new,
// but a survivor of an earlier batch is stored and its outcome unknown.
func TestUnsentMembers(t *testing.T) {
	tests := []struct {
		name   string
		stored bool
		want   ports.TxState
	}{
		{"a fresh commit", false, rollback},
		{"a survivor", true, unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Member{Stored: tt.stored}
			err := errors.New("broker down")
			Unsent([]*Member{m}, err)
			if m.State != tt.want || !errors.Is(m.Err, err) {
				t.Fatalf("%v, %v; want %v, %v", m.State, m.Err, tt.want, err)
			}
		})
	}
}

// TestBoundsTake: a batch takes the longest prefix within its bounds, and
// at least one commit, however large.
func TestBoundsTake(t *testing.T) {
	sized := func(sizes ...int) []*Member {
		out := make([]*Member, len(sizes))
		for i, n := range sizes {
			out[i] = &Member{Body: make([]byte, n)}
		}
		return out
	}
	tests := []struct {
		name    string
		bounds  Bounds
		waiting []*Member
		want    int
	}{
		{"nothing waits", Bounds{MaxCommits: 4, MaxBytes: 100}, nil, 0},
		{"all fit", Bounds{MaxCommits: 4, MaxBytes: 100}, sized(10, 10, 10), 3},
		{"count bound", Bounds{MaxCommits: 2, MaxBytes: 100}, sized(10, 10, 10), 2},
		{"byte bound", Bounds{MaxCommits: 4, MaxBytes: 25}, sized(10, 10, 10), 2},
		{"an outsized commit goes alone", Bounds{MaxCommits: 4, MaxBytes: 25}, sized(60, 10), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.bounds.Take(tt.waiting); got != tt.want {
				t.Fatalf("took %d, want %d", got, tt.want)
			}
		})
	}
}
