package txbatch

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/evchat/chatd/ports"
	"github.com/evchat/chatd/tests/eventually"
)

// gatedSend records the batches it is given and holds each until the test
// lets it go; survive names commits that survive their first batch.
type gatedSend struct {
	mu      sync.Mutex
	batches [][]string
	gate    chan struct{}
	survive map[string]bool
}

func newGatedSend(survive ...string) *gatedSend {
	g := &gatedSend{gate: make(chan struct{}), survive: map[string]bool{}}
	for _, id := range survive {
		g.survive[id] = true
	}
	return g
}

func (g *gatedSend) send(batch []*Member) []*Member {
	ids := make([]string, len(batch))
	for i, m := range batch {
		ids[i] = m.Commit.ID
	}
	g.mu.Lock()
	g.batches = append(g.batches, ids)
	g.mu.Unlock()
	<-g.gate
	var survivors []*Member
	for _, m := range batch {
		if g.survive[m.Commit.ID] && !m.Stored {
			m.State = ports.TxCommit
			survivors = append(survivors, m)
			continue
		}
		m.State = ports.TxCommit
	}
	return Settle(survivors, ports.TxRollback)
}

func (g *gatedSend) sent() [][]string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.batches)
}

func (ls *Lanes) waiting(i int) int {
	l := &ls.lanes[i]
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.waiting)
}

func member(id string) *Member {
	return &Member{Ctx: context.Background(), Commit: ports.Commit{ID: id}, Body: make([]byte, 10)}
}

// TestLanesBatchWhatWaits: a lone commit goes out at once; what comes while
// a batch is in flight waits and goes out in the next batches, within the
// bounds, survivors first; every caller returns settled.
func TestLanesBatchWhatWaits(t *testing.T) {
	tests := []struct {
		name    string
		bounds  Bounds
		survive []string
		want    [][]string
	}{
		{"the waiting go together", Bounds{MaxCommits: 64, MaxBytes: 1 << 20}, nil,
			[][]string{{"c0"}, {"c1", "c2", "c3", "c4"}}},
		{"a batch stops at its count", Bounds{MaxCommits: 3, MaxBytes: 1 << 20}, nil,
			[][]string{{"c0"}, {"c1", "c2", "c3"}, {"c4"}}},
		{"a batch stops at its bytes", Bounds{MaxCommits: 64, MaxBytes: 25}, nil,
			[][]string{{"c0"}, {"c1", "c2"}, {"c3", "c4"}}},
		{"survivors go out again first", Bounds{MaxCommits: 2, MaxBytes: 1 << 20}, []string{"c1"},
			[][]string{{"c0"}, {"c1", "c2"}, {"c1", "c3"}, {"c4"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ls Lanes
			g := newGatedSend(tt.survive...)
			members := []*Member{member("c0")}
			var wg sync.WaitGroup
			wg.Go(func() { ls.Publish(3, members[0], tt.bounds, g.send) })
			eventually.True(t, "the first batch to go out", func() bool { return len(g.sent()) == 1 })
			for i := 1; i <= 4; i++ {
				m := member(fmt.Sprintf("c%d", i))
				members = append(members, m)
				wg.Go(func() { ls.Publish(3, m, tt.bounds, g.send) })
				eventually.True(t, m.Commit.ID+" to wait", func() bool { return ls.waiting(3) == i })
			}
			close(g.gate)
			wg.Wait()
			if got := g.sent(); !slices.EqualFunc(got, tt.want, slices.Equal) {
				t.Fatalf("batches %v, want %v", got, tt.want)
			}
			for _, m := range members {
				if m.State != ports.TxCommit {
					t.Errorf("%s returned %v, want commit", m.Commit.ID, m.State)
				}
			}
			if n := ls.waiting(3); n != 0 || ls.lanes[3].busy {
				t.Errorf("the lane is left with %d waiting, busy %v", n, ls.lanes[3].busy)
			}
		})
	}
}

// TestLanesDoNotWaitForEachOther: a batch in flight on one lane holds up
// nothing on another.
func TestLanesDoNotWaitForEachOther(t *testing.T) {
	var ls Lanes
	bounds := Bounds{MaxCommits: 64, MaxBytes: 1 << 20}
	held := newGatedSend()
	done := make(chan struct{})
	go func() { ls.Publish(1, member("held"), bounds, held.send); close(done) }()
	eventually.True(t, "the held batch to go out", func() bool { return len(held.sent()) == 1 })
	free := newGatedSend()
	close(free.gate)
	m := member("free")
	ls.Publish(2, m, bounds, free.send)
	if m.State != ports.TxCommit {
		t.Fatalf("the other lane's commit returned %v", m.State)
	}
	close(held.gate)
	<-done
}
