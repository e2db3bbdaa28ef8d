package load

import (
	"testing"
	"time"
)

// TestGroupResultCountsOnlyCompleteMessages: a message's latency is to its
// last member, so a message some member never got has none and is counted
// incomplete; frames count every member's receipt, a frame that overtook
// its ack included.
func TestGroupResultCountsOnlyCompleteMessages(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := &groupRun{cfg: GroupConfig{Members: 3}, sentAt: map[uint64]time.Time{}, firstAt: map[uint64]time.Time{},
		lastAt: map[uint64]time.Time{}, got: map[uint64]int{}}
	r.received(1, t0.Add(5*time.Millisecond)) // before its ack was read
	r.sentAt[1] = t0
	r.received(1, t0.Add(9*time.Millisecond))
	r.sentAt[2] = t0.Add(time.Second)
	r.received(2, t0.Add(time.Second+2*time.Millisecond))

	res := r.result([]uint64{1, 2})
	if res.Sent != 2 || res.Frames != 3 || res.Incomplete != 1 {
		t.Fatalf("sent %d, frames %d, incomplete %d; want 2, 3, 1", res.Sent, res.Frames, res.Incomplete)
	}
	if res.ToLast.N != 1 || res.ToLast.Max != 9*time.Millisecond || res.ToFirst.Max != 5*time.Millisecond {
		t.Fatalf("to last %v, to first %v; want 9 ms and 5 ms over one message", res.ToLast, res.ToFirst)
	}
}
