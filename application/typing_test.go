package application_test

import (
	"context"
	"testing"
	"time"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/presence"
)

// TestTypingThrottleRunsOnTheInjectedClock: of a user's typing in one
// conversation, one signal an interval of the node's clock reaches the
// peer, whatever the wall clock does.
func TestTypingThrottleRunsOnTheInjectedClock(t *testing.T) {
	clock := application.NewManualClock(time.Now())
	n := newNodeWithClock(t, testConfig(), memory.NewEventStore(), clock)
	ack := send(t, n, "alice", "k1", "bob", "hi")
	bob := connect(t, n, "b1", "bob")
	steps := []struct {
		advance   time.Duration
		wantTotal int
	}{
		{0, 1},
		{0, 1},
		{presence.TypingInterval - time.Millisecond, 1},
		{time.Millisecond, 2},
		{time.Hour, 3},
	}
	for i, s := range steps {
		clock.Add(s.advance)
		if err := n.app.Typing.Handle(context.Background(), application.TypingCommand{User: "alice", Conversation: ack.Conversation}); err != nil {
			t.Fatal(err)
		}
		if got := len(bob.typingSeen()); got != s.wantTotal {
			t.Fatalf("step %d, %v later: bob has %d typing frames, want %d", i, s.advance, got, s.wantTotal)
		}
	}
}
