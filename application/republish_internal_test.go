package application

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/evchat/chatd/ports"
)

// recordingPublisher records republished commits and fails them while err is set.
type recordingPublisher struct {
	mu          sync.Mutex
	republished []string
	err         error
}

func (p *recordingPublisher) Publish(context.Context, ports.Commit) (ports.TxState, error) {
	return ports.TxCommit, nil
}

func (p *recordingPublisher) Ping(context.Context) error { return nil }

func (p *recordingPublisher) Republish(_ context.Context, c ports.Commit) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.republished = append(p.republished, c.ID)
	return p.err
}

func (p *recordingPublisher) takeRepublished() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.republished
	p.republished = nil
	return out
}

const testAfter = 3 * time.Second

func newTestRepublisher() (*Republisher, *recordingPublisher, *ManualClock) {
	pub := &recordingPublisher{}
	clock := NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	return newRepublisher(pub, clock, testAfter, slog.Default()), pub, clock
}

// passTheBus has the bus bring back a commit of this node watched now, as
// its consumer does when it is not behind.
func passTheBus(r *Republisher) {
	later := ports.Commit{ID: "later", Stream: "other", Version: 1}
	r.publishing(later)
	r.acked(later)
	r.seen(later.ID)
}

// failingToRepublish has r watch a commit acked now, which the bus does not
// bring back and pub fails to republish at the first sweep due; it returns
// when the commit was acked.
func failingToRepublish(r *Republisher, pub *recordingPublisher, clock *ManualClock) time.Time {
	pub.err = ports.ErrUnavailable
	c := ports.Commit{ID: "c", Stream: "s", Version: 1}
	acked := clock.Now()
	r.publishing(c)
	r.acked(c)
	passTheBus(r)
	sweepAt(r, clock, acked, testAfter)
	return acked
}

// sweepAt moves the clock to since+at and sweeps.
func sweepAt(r *Republisher, clock *ManualClock, since time.Time, at time.Duration) {
	clock.Add(since.Add(at).Sub(clock.Now()))
	r.Sweep(context.Background())
}

func TestAnAckedCommitNotSeenIsRepublishedWithABackOffThenGivenUp(t *testing.T) {
	r, pub, clock := newTestRepublisher()
	c := ports.Commit{ID: "c1", Stream: "s", Version: 1}
	acked := clock.Now()
	r.publishing(c)
	r.acked(c)
	passTheBus(r)
	steps := []struct {
		at   time.Duration
		want []string
	}{
		{testAfter - time.Millisecond, nil},
		{testAfter, []string{"c1"}},
		{testAfter + 2*testAfter - time.Millisecond, nil},
		{testAfter + 2*testAfter, []string{"c1"}},
		{testAfter + 2*testAfter + 4*testAfter, []string{"c1"}},
		{testAfter + 2*testAfter + 4*testAfter + 8*testAfter - time.Millisecond, nil},
		// Republished maxRepublishes times: given up, never sent again.
		{testAfter + 2*testAfter + 4*testAfter + 8*testAfter, nil},
		{time.Hour, nil},
	}
	for _, s := range steps {
		sweepAt(r, clock, acked, s.at)
		if got := pub.takeRepublished(); !slices.Equal(got, s.want) {
			t.Fatalf("%s after the ack: republished %v, want %v", s.at, got, s.want)
		}
	}
	if n := len(r.awaiting); n != 0 {
		t.Fatalf("%d commits still watched after giving up", n)
	}
}

func TestOnlyAnAckedCommitNotSeenIsRepublished(t *testing.T) {
	tests := []struct {
		name string
		// run drives the watch for commit c, as commitPublication.publish
		// and observed would.
		run  func(r *Republisher, c ports.Commit)
		want []string
	}{
		{"acked and not seen", func(r *Republisher, c ports.Commit) { r.publishing(c); r.acked(c) }, []string{"c"}},
		{"seen after the ack", func(r *Republisher, c ports.Commit) { r.publishing(c); r.acked(c); r.seen(c.ID) }, nil},
		{"seen before Publish returned", func(r *Republisher, c ports.Commit) { r.publishing(c); r.seen(c.ID); r.acked(c) }, nil},
		{"still being published", func(r *Republisher, c ports.Commit) { r.publishing(c) }, nil},
		{"not acked", func(r *Republisher, c ports.Commit) { r.publishing(c); r.forget(c.ID) }, nil},
		{"acked from the store to a resend", func(r *Republisher, c ports.Commit) { r.ackedFromStore(c) }, []string{"c"}},
		{"acked to a resend while watched", func(r *Republisher, c ports.Commit) { r.publishing(c); r.acked(c); r.ackedFromStore(c) }, []string{"c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, pub, clock := newTestRepublisher()
			start := clock.Now()
			tt.run(r, ports.Commit{ID: "c", Stream: "s", Version: 1})
			passTheBus(r)
			sweepAt(r, clock, start, testAfter)
			if got := pub.takeRepublished(); !slices.Equal(got, tt.want) {
				t.Fatalf("republished %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAFailedRepublishIsTriedAgainAfterItsBackOff(t *testing.T) {
	r, pub, clock := newTestRepublisher()
	acked := failingToRepublish(r, pub, clock)
	sweepAt(r, clock, acked, testAfter+time.Second)
	if got := pub.takeRepublished(); len(got) != 1 {
		t.Fatalf("a failed republish was tried %d times within its back-off, want once", len(got))
	}
	pub.err = nil
	sweepAt(r, clock, acked, 3*testAfter)
	if got := pub.takeRepublished(); len(got) != 1 {
		t.Fatalf("republished %v after the back-off, want the commit once", got)
	}
}

func TestTheWatchIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, pub, clock := newTestRepublisher()
		start := clock.Now()
		for i := range maxAwaiting + 10 {
			c := ports.Commit{ID: strconv.Itoa(i), Stream: "s", Version: uint64(i + 1)}
			r.publishing(c)
			r.acked(c)
		}
		if n := len(r.awaiting); n != maxAwaiting {
			t.Fatalf("%d commits watched, want at most %d", n, maxAwaiting)
		}
		// Nothing came back: each waits one more RepublishAfter.
		sweepAt(r, clock, start, 2*testAfter)
		if got := pub.takeRepublished(); len(got) != maxAwaiting {
			t.Fatalf("republished %d commits, want the %d watched", len(got), maxAwaiting)
		}
	})
}

// BenchmarkWatchOneCommit is what every commit costs while all is well:
// watched before its publish, acked, seen back.
func BenchmarkWatchOneCommit(b *testing.B) {
	r, _, _ := newTestRepublisher()
	commits := make([]ports.Commit, 1024)
	for i := range commits {
		commits[i] = ports.Commit{ID: strconv.Itoa(i), Stream: "s", Version: uint64(i + 1)}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c := commits[i%len(commits)]
		r.publishing(c)
		r.acked(c)
		r.forget(c.ID)
	}
}

func TestACommitTheBusHasNotPassedWaitsOneMoreRepublishAfter(t *testing.T) {
	tests := []struct {
		name string
		// back drives what the bus brings back, around c's ack at zero.
		back func(r *Republisher, clock *ManualClock)
		// want is when c is first republished after its ack.
		want time.Duration
	}{
		{"a commit watched after its ack came back", func(r *Republisher, clock *ManualClock) {
			clock.Add(time.Second)
			passTheBus(r)
		}, testAfter},
		{"a commit watched with its ack came back", func(r *Republisher, _ *ManualClock) { passTheBus(r) }, testAfter},
		{"nothing came back", func(*Republisher, *ManualClock) {}, 2 * testAfter},
		{"only a commit watched before its ack came back", func(r *Republisher, _ *ManualClock) {
			r.seen("earlier")
		}, 2 * testAfter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, pub, clock := newTestRepublisher()
			earlier := ports.Commit{ID: "earlier", Stream: "other", Version: 1}
			r.publishing(earlier)
			clock.Add(time.Millisecond)
			c := ports.Commit{ID: "c", Stream: "s", Version: 1}
			r.publishing(c)
			r.acked(c)
			acked := clock.Now()
			tt.back(r, clock)
			sweepAt(r, clock, acked, tt.want-time.Millisecond)
			if got := pub.takeRepublished(); len(got) != 0 {
				t.Fatalf("republished %v %v after the ack, want nothing before %v", got, tt.want-time.Millisecond, tt.want)
			}
			sweepAt(r, clock, acked, tt.want)
			if got := pub.takeRepublished(); !slices.Equal(got, []string{"c"}) {
				t.Fatalf("republished %v %v after the ack, want c", got, tt.want)
			}
		})
	}
}

func TestACommitIsJudgedByTheLaterCommitsOfItsConversation(t *testing.T) {
	tests := []struct {
		name string
		// back drives what the bus brings back after c's ack at zero, and
		// what this node commits meanwhile.
		back func(r *Republisher, clock *ManualClock)
		// want is when c is first republished after its ack.
		want time.Duration
	}{
		{"a later commit of its conversation came back", func(r *Republisher, clock *ManualClock) {
			clock.Add(time.Second)
			next := ports.Commit{ID: "next", Stream: "s", Version: 2}
			r.publishing(next)
			r.acked(next)
			r.seen(next.ID)
		}, testAfter},
		{"a later commit of its conversation is out, another conversation's came back", func(r *Republisher, clock *ManualClock) {
			clock.Add(time.Second)
			next := ports.Commit{ID: "next", Stream: "s", Version: 2}
			r.publishing(next)
			r.acked(next)
			passTheBus(r)
		}, testAfter + laneHoldWaits*testAfter},
		{"only its conversation's receipts came back", func(r *Republisher, clock *ManualClock) {
			clock.Add(time.Second)
			receipt := ports.Commit{ID: "receipt", Stream: "s.receipts", Version: 1}
			r.publishing(receipt)
			r.acked(receipt)
			r.seen(receipt.ID)
		}, testAfter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, pub, clock := newTestRepublisher()
			c := ports.Commit{ID: "c", Stream: "s", Version: 1}
			r.publishing(c)
			r.acked(c)
			acked := clock.Now()
			tt.back(r, clock)
			sweepAt(r, clock, acked, tt.want-time.Millisecond)
			if got := pub.takeRepublished(); slices.Contains(got, "c") {
				t.Fatalf("republished %v %v after the ack, want c not before %v", got, tt.want-time.Millisecond, tt.want)
			}
			sweepAt(r, clock, acked, tt.want)
			if got := pub.takeRepublished(); !slices.Contains(got, "c") {
				t.Fatalf("republished %v %v after the ack, want c among them", got, tt.want)
			}
		})
	}
}

func TestACommitHeldBehindALaterOneIsRepublishedWhenThatOneComesBack(t *testing.T) {
	r, pub, clock := newTestRepublisher()
	c := ports.Commit{ID: "c", Stream: "s", Version: 1}
	r.publishing(c)
	r.acked(c)
	acked := clock.Now()
	clock.Add(time.Second)
	next := ports.Commit{ID: "next", Stream: "s", Version: 2}
	r.publishing(next)
	r.acked(next)
	passTheBus(r)
	// The later commit, the newest of the conversation, is judged by the
	// other conversation's and sent again at its own due; c waits for it.
	sweepAt(r, clock, acked, testAfter)
	sweepAt(r, clock, acked, 2*testAfter)
	if got := pub.takeRepublished(); slices.Contains(got, "c") {
		t.Fatalf("republished %v while a later commit of its conversation was out, want c held", got)
	}
	r.seen(next.ID)
	sweepAt(r, clock, acked, 2*testAfter+time.Millisecond)
	if got := pub.takeRepublished(); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("republished %v once the later commit came back, want c", got)
	}
}

func TestTheLanesEndWithTheirWatch(t *testing.T) {
	r, _, _ := newTestRepublisher()
	for i, c := range []ports.Commit{{ID: "a", Stream: "s", Version: 1}, {ID: "b", Stream: "s.receipts", Version: 1}, {ID: "x", Stream: "t", Version: 1}} {
		r.publishing(c)
		if i%2 == 0 {
			r.acked(c)
			r.seen(c.ID)
		} else {
			r.forget(c.ID)
		}
	}
	if len(r.awaiting) != 0 || len(r.lanes) != 0 {
		t.Fatalf("%d commits and %d conversations watched after every commit came back or was forgotten", len(r.awaiting), len(r.lanes))
	}
}

// TestARepublisherTellsTheLoggerItWasGiven: what the background work cannot
// return to a caller goes to the node's logger, not the process's global one.
func TestARepublisherTellsTheLoggerItWasGiven(t *testing.T) {
	var logged bytes.Buffer
	r, pub, clock := newTestRepublisher()
	r.log = slog.New(slog.NewTextHandler(&logged, nil))
	failingToRepublish(r, pub, clock)
	if !strings.Contains(logged.String(), "commits not republished") {
		t.Fatalf("the injected logger heard %q, want the failed republish", logged.String())
	}
}
