package application

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// TestAJoinHandledWhileTheMessageWasPublishedIsForwardedAfterIt: the route
// is made before the publication and the message is kept after it, so a
// join handled in between finds nothing to forward; what the directory
// knows once the message is kept must be forwarded then.
func TestAJoinHandledWhileTheMessageWasPublishedIsForwardedAfterIt(t *testing.T) {
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		holders map[user.ID][]string
		want    []string // the routes of the forwards
	}{
		{"nobody elsewhere", nil, nil},
		{"the recipient already where it was routed", map[user.ID][]string{"bob": {"n1"}}, nil},
		{"the recipient joined n2 meanwhile", map[user.ID][]string{"bob": {"n1", "n2"}}, []string{"n2"}},
		{"the sender's other session joined n3 meanwhile", map[user.ID][]string{"alice": {"n3"}}, []string{"n3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pairOf := func(context.Context, conversation.ID) ([2]user.ID, error) { return [2]user.ID{"alice", "bob"}, nil }
			f := newRouteForwarder(nil, fixedNow{now}, 7500*time.Millisecond,
				func(u user.ID) []string { return tt.holders[u] }, pairOf, slog.New(slog.DiscardHandler))
			posted := conversation.MessagePosted{Conversation: "c_ab", Seq: 1, From: "alice", To: "bob"}
			f.sent(ports.Commit{ID: "m_1", Events: []conversation.Event{posted}, Route: ports.RouteTo("n1")})
			// An edit of that message goes where the message went.
			edited := conversation.MessageEdited{Conversation: "c_ab", Seq: 1, Rev: 1, Body: "x"}
			f.sent(ports.Commit{ID: "ch_1", Stream: conversation.ChangesStream("c_ab"), Events: []conversation.Event{edited}, Route: ports.RouteTo("n1")})
			tt.want = append(tt.want, tt.want...)
			var got []string
			f.forwards.mu.Lock()
			for _, c := range f.forwards.items {
				got = append(got, c.Route.Nodes...)
			}
			f.forwards.mu.Unlock()
			if !slices.Equal(got, tt.want) {
				t.Fatalf("forwarded to %v, want %v", got, tt.want)
			}
		})
	}
}

type fixedNow struct{ now time.Time }

func (c fixedNow) Now() time.Time { return c.now }
