package presence

import (
	"testing"
	"time"
)

// The throttle's size is not part of its API, so this test reads it inside
// the package: pruning exists to bound memory, and only the size shows it.
func TestTypingThrottlePrunesWhatCannotThrottle(t *testing.T) {
	start := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	th := NewTypingThrottle()
	th.Allow("bob", "c1", start)
	th.Allow("bob", "c2", start.Add(time.Second))
	th.Prune(start.Add(2500 * time.Millisecond))
	if len(th.last) != 1 || !th.Throttled("bob", "c2", start.Add(2500*time.Millisecond)) {
		t.Fatalf("after pruning: %d pairs remembered, want only c2's", len(th.last))
	}
}
