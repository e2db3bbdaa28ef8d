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

// members counts the commits sent so far.
func (g *gatedSend) members() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, b := range g.batches {
		n += len(b)
	}
	return n
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

// TestLanesBatchWhatWaits: a commit goes out at once while its lane has
// room for another batch in flight; what comes when it has none waits and
// goes out in the next batches, within the bounds, survivors first; every
// caller returns settled.
func TestLanesBatchWhatWaits(t *testing.T) {
	tests := []struct {
		name    string
		bounds  Bounds
		survive []string
		want    [][]string
		// rest, when set, is what the batches after want carry, in any
		// split: leaders that finish together share out the waiting.
		rest []string
	}{
		{"the waiting go together", Bounds{MaxCommits: 64, MaxBytes: 1 << 20}, nil,
			[][]string{{"c0"}, {"c1", "c2", "c3", "c4"}}, nil},
		{"a batch stops at its count", Bounds{MaxCommits: 3, MaxBytes: 1 << 20}, nil,
			[][]string{{"c0"}, {"c1", "c2", "c3"}, {"c4"}}, nil},
		{"a batch stops at its bytes", Bounds{MaxCommits: 64, MaxBytes: 25}, nil,
			[][]string{{"c0"}, {"c1", "c2"}, {"c3", "c4"}}, nil},
		{"survivors go out again first", Bounds{MaxCommits: 2, MaxBytes: 1 << 20}, []string{"c1"},
			[][]string{{"c0"}, {"c1", "c2"}, {"c1", "c3"}, {"c4"}}, nil},
		{"two batches in flight before any waits", Bounds{MaxCommits: 64, MaxBytes: 1 << 20, MaxInFlight: 2}, nil,
			[][]string{{"c0"}, {"c1"}}, []string{"c2", "c3", "c4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ls Lanes
			g := newGatedSend(tt.survive...)
			var members []*Member
			var wg sync.WaitGroup
			for i := range 5 {
				m := member(fmt.Sprintf("c%d", i))
				members = append(members, m)
				wg.Go(func() { ls.Publish(3, m, tt.bounds, g.send) })
				eventually.True(t, m.Commit.ID+" to be sent or wait", func() bool { return g.members()+ls.waiting(3) == i+1 })
			}
			close(g.gate)
			wg.Wait()
			got := g.sent()
			if tt.rest != nil {
				rest := slices.Concat(got[min(len(tt.want), len(got)):]...)
				slices.Sort(rest)
				got = got[:min(len(tt.want), len(got))]
				if !slices.Equal(rest, tt.rest) {
					t.Fatalf("the later batches carry %v, want %v", rest, tt.rest)
				}
			}
			if !slices.EqualFunc(got, tt.want, slices.Equal) {
				t.Fatalf("batches %v, want %v", got, tt.want)
			}
			for _, m := range members {
				if m.State != ports.TxCommit {
					t.Errorf("%s returned %v, want commit", m.Commit.ID, m.State)
				}
			}
			if n := ls.waiting(3); n != 0 || ls.lanes[3].flying != 0 {
				t.Errorf("the lane is left with %d waiting, %d in flight", n, ls.lanes[3].flying)
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
