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
			usersOf := func(context.Context, conversation.ID) ([]user.ID, error) { return []user.ID{"alice", "bob"}, nil }
			f := newRouteForwarder(nil, fixedNow{now}, 7500*time.Millisecond,
				func(u user.ID) []string { return tt.holders[u] }, usersOf, slog.New(slog.DiscardHandler))
			posted := conversation.MessagePosted{Conversation: "c_ab", Seq: 1, From: "alice", To: "bob"}
			f.sent(ports.Commit{ID: "m_1", Events: []conversation.Event{posted}, Route: ports.RouteTo("n1")})
			// An edit of that message goes where the message went.
			edited := conversation.MessageEdited{Conversation: "c_ab", Seq: 1, Rev: 1, Body: "x"}
			f.sent(ports.Commit{ID: "ch_1", Stream: conversation.ChangesStream("c_ab"), Events: []conversation.Event{edited}, Route: ports.RouteTo("n1")})
			tt.want = append(tt.want, tt.want...)
			if got := forwardedTo(f); !slices.Equal(got, tt.want) {
				t.Fatalf("forwarded to %v, want %v", got, tt.want)
			}
		})
	}
}

// TestAGroupCommitIsForwardedToTheNodesItsUsersJoined: a group's message,
// membership change and receipt are kept for every member, and a change
// for the user it adds or removes, whom delivery's members may not show
// yet.
func TestAGroupCommitIsForwardedToTheNodesItsUsersJoined(t *testing.T) {
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	const group = conversation.ID("g_team")
	posted := ports.Commit{ID: "m_1", Stream: conversation.MessagesStream(group),
		Events: []conversation.Event{conversation.MessagePosted{Conversation: group, Seq: 1, From: "ann"}}}
	removed := ports.Commit{ID: "ch_1", Stream: conversation.ChangesStream(group),
		Events: []conversation.Event{conversation.MemberRemoved{Conversation: group, User: "dan", By: "ann"}}}
	marked := ports.Commit{ID: "r_1", Stream: conversation.ReceiptsStream(group),
		Events: []conversation.Event{conversation.ReadUpTo{Conversation: group, User: "bob", Seq: 1}}}
	tests := []struct {
		name    string
		commit  ports.Commit
		holders map[user.ID][]string
		want    []string
	}{
		{"a message, a member joined n2", posted, map[user.ID][]string{"cid": {"n2"}}, []string{"n2"}},
		{"a message, a member already reached", posted, map[user.ID][]string{"bob": {"n1"}}, nil},
		{"a message, a stranger joined n2", posted, map[user.ID][]string{"dan": {"n2"}}, nil},
		{"a removal, the removed user joined n3", removed, map[user.ID][]string{"dan": {"n3"}}, []string{"n3"}},
		{"a marker, a member joined n2", marked, map[user.ID][]string{"cid": {"n2"}}, []string{"n2"}},
		{"a marker, a stranger joined n2", marked, map[user.ID][]string{"dan": {"n2"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			usersOf := func(context.Context, conversation.ID) ([]user.ID, error) { return []user.ID{"ann", "bob", "cid"}, nil }
			f := newRouteForwarder(nil, fixedNow{now}, 7500*time.Millisecond,
				func(u user.ID) []string { return tt.holders[u] }, usersOf, slog.New(slog.DiscardHandler))
			c := tt.commit
			c.Route = ports.RouteTo("n1")
			f.sent(c)
			if got := forwardedTo(f); !slices.Equal(got, tt.want) {
				t.Fatalf("forwarded to %v, want %v", got, tt.want)
			}
		})
	}
}

// forwardedTo is the nodes of the forwards f has queued.
func forwardedTo(f *routeForwarder) []string {
	var got []string
	f.forwards.mu.Lock()
	defer f.forwards.mu.Unlock()
	for _, c := range f.forwards.items {
		got = append(got, c.Route.Nodes...)
	}
	return got
}

type fixedNow struct{ now time.Time }

func (c fixedNow) Now() time.Time { return c.now }
