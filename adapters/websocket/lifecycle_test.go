package websocket

import (
	"fmt"
	"testing"
)

// TestLifecycle walks every event from every state: the lifecycle moves
// only forward, and an event too late for a state changes nothing.
func TestLifecycle(t *testing.T) {
	events := []event{connected, closeQueued, kickedOut, closeWritten, tornDown}
	tests := []struct {
		from lifecycle
		// want is the state after each of events, in their order.
		want    [5]lifecycle
		accepts bool
	}{
		{opening, [5]lifecycle{open, closing, kicked, opening, ended}, true},
		{open, [5]lifecycle{open, closing, kicked, open, ended}, true},
		{closing, [5]lifecycle{closing, closing, kicked, closed, ended}, false},
		{kicked, [5]lifecycle{kicked, kicked, kicked, closed, ended}, false},
		{closed, [5]lifecycle{closed, closed, closed, closed, ended}, false},
		{ended, [5]lifecycle{ended, ended, ended, ended, ended}, false},
	}
	for _, tt := range tests {
		t.Run(tt.from.String(), func(t *testing.T) {
			if got := tt.from.accepts(); got != tt.accepts {
				t.Errorf("%s accepts frames: %v, want %v", tt.from, got, tt.accepts)
			}
			for i, e := range events {
				if got := tt.from.on(e); got != tt.want[i] {
					t.Errorf("%s on %s = %s, want %s", tt.from, eventName(e), got, tt.want[i])
				}
			}
		})
	}
}

func eventName(e event) string {
	names := []string{"connected", "closeQueued", "kickedOut", "closeWritten", "tornDown"}
	if int(e) < len(names) {
		return names[e]
	}
	return fmt.Sprint(int(e))
}
