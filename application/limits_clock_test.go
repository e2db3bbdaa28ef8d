package application_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/presence"
)

// The limits of the use cases, moved across by a manual clock: none of
// these tests waits, and none would pass on the wall clock.

// newManualNode is a node whose clock moves only when the test moves it;
// it starts at the wall time, which the in-process bus's deadlines use.
func newManualNode(t *testing.T, cfg application.Config) (*node, *application.ManualClock) {
	t.Helper()
	clock := application.NewManualClock(time.Now())
	return newNodeWithClock(t, cfg, memory.NewEventStore(), clock), clock
}

// TestSendRateRunsOnTheInjectedClock: a sender's bucket refills as the
// node's clock moves, and only then, so no test of the limit waits.
func TestSendRateRunsOnTheInjectedClock(t *testing.T) {
	cfg := testConfig()
	cfg.SendRate, cfg.SendBurst = 1, 2
	n, clock := newManualNode(t, cfg)
	steps := []struct {
		advance time.Duration
		limited bool
	}{
		{0, false}, {0, false}, // the burst
		{0, true},
		{999 * time.Millisecond, true}, // not a whole token yet
		{time.Millisecond, false},
		{0, true},
		{time.Hour, false}, {0, false}, // refilled to the burst, no more
		{0, true},
	}
	for i, s := range steps {
		clock.Add(s.advance)
		_, err := n.app.Send.Handle(context.Background(), application.SendMessageCommand{
			Sender: "alice", ClientID: message.ClientID(fmt.Sprintf("k%d", i)), To: "bob", Body: "hi"})
		if limited := errors.Is(err, application.ErrRateLimited); limited != s.limited || (!limited && err != nil) {
			t.Fatalf("send %d after %v more: %v, want rate limited %v", i, s.advance, err, s.limited)
		}
	}
}

// TestTypingThrottleRunsOnTheInjectedClock: of a user's typing in one
// conversation, one signal an interval of the node's clock reaches the
// peer, whatever the wall clock does.
func TestTypingThrottleRunsOnTheInjectedClock(t *testing.T) {
	n, clock := newManualNode(t, testConfig())
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
