package presence_test

import (
	"testing"
	"time"

	"github.com/evchat/chatd/domain/presence"
	"github.com/evchat/chatd/domain/user"
)

func TestTypingThrottle(t *testing.T) {
	type attempt struct {
		at   time.Duration
		user user.ID
		conv string
		want bool
	}
	tests := []struct {
		name     string
		attempts []attempt
	}{
		{"the first signal goes through", []attempt{{0, "bob", "c1", true}}},
		{"a burst lets one through per 2 s", []attempt{
			{0, "bob", "c1", true}, {100 * time.Millisecond, "bob", "c1", false},
			{1999 * time.Millisecond, "bob", "c1", false}, {2 * time.Second, "bob", "c1", true},
			{3 * time.Second, "bob", "c1", false}, {4 * time.Second, "bob", "c1", true},
		}},
		{"conversations are throttled apart", []attempt{
			{0, "bob", "c1", true}, {0, "bob", "c2", true}, {time.Second, "bob", "c2", false},
		}},
		{"users are throttled apart", []attempt{
			{0, "bob", "c1", true}, {0, "alice", "c1", true}, {time.Second, "alice", "c1", false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := presence.NewTypingThrottle()
			for i, a := range tt.attempts {
				if got := th.Allow(a.user, a.conv, t0.Add(a.at)); got != a.want {
					t.Fatalf("attempt %d (%s in %s at %v): allowed %v, want %v", i, a.user, a.conv, a.at, got, a.want)
				}
			}
		})
	}
}
