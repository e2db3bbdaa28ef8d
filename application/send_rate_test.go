package application_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/application"
)

// TestSendRateRunsOnTheInjectedClock: a sender's bucket refills as the
// node's clock moves, and only then, so no test of the limit waits.
func TestSendRateRunsOnTheInjectedClock(t *testing.T) {
	clock := application.NewManualClock(time.Now())
	cfg := testConfig()
	cfg.SendRate, cfg.SendBurst = 1, 2
	n := newNodeWithClock(t, cfg, memory.NewEventStore(), clock)
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
			Sender: "alice", ClientID: fmt.Sprintf("k%d", i), To: "bob", Body: "hi"})
		if limited := errors.Is(err, application.ErrRateLimited); limited != s.limited || (!limited && err != nil) {
			t.Fatalf("send %d after %v more: %v, want rate limited %v", i, s.advance, err, s.limited)
		}
	}
}
