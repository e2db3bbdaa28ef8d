package presence_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evchat/chatd/domain/presence"
	"github.com/evchat/chatd/domain/user"
)

func describeHoldings(hs []presence.Holding) string {
	var parts []string
	for _, h := range hs {
		state := "left"
		if h.Present {
			state = "holds"
		}
		parts = append(parts, h.Node+" "+state+" changed@"+h.ChangedAt.Sub(t0).String())
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

func TestDirectoryHoldings(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  string
	}{
		{
			name: "a join is a change when it is learnt",
			steps: []step{
				{at: time.Second, op: "join", node: other, user: "bob", seq: 1},
			},
			want: "n2 holds changed@1s",
		},
		{
			name: "a heartbeat that repeats a join is no change",
			steps: []step{
				{at: time.Second, op: "join", node: other, user: "bob", seq: 1},
				{at: 6 * time.Second, op: "heartbeat", node: other, users: []user.ID{"bob"}, seq: 2},
			},
			want: "n2 holds changed@1s",
		},
		{
			name: "a leave is a change",
			steps: []step{
				{at: time.Second, op: "join", node: other, user: "bob", seq: 1},
				{at: 3 * time.Second, op: "leave", node: other, user: "bob", seq: 2},
			},
			want: "n2 left changed@3s",
		},
		{
			name: "a heartbeat that first lists a user is a change",
			steps: []step{
				{at: 2 * time.Second, op: "heartbeat", node: other, users: []user.ID{"bob"}, seq: 1},
			},
			want: "n2 holds changed@2s",
		},
		{
			name: "every node that said something of the user",
			steps: []step{
				{at: time.Second, op: "join", node: self, user: "bob", seq: 1},
				{at: 2 * time.Second, op: "join", node: other, user: "bob", seq: 1},
				{at: 2 * time.Second, op: "join", node: "n3", user: "carol", seq: 1},
			},
			want: "n1 holds changed@1s, n2 holds changed@2s",
		},
		{
			name: "a forgotten node holds nothing",
			steps: []step{
				{op: "join", node: other, user: "bob", seq: 1},
				{at: forget + time.Second, op: "tick"},
			},
			want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := presence.NewDirectory(self, grace, forget)
			for _, s := range tt.steps {
				run(d, s)
			}
			got := describeHoldings(d.Holdings("bob"))
			if got != tt.want {
				t.Fatalf("Holdings(bob) = %q, want %q", got, tt.want)
			}
			for _, node := range []string{self, other} {
				if holds, want := d.Holds(node, "bob"), strings.Contains(got, node+" holds"); holds != want {
					t.Errorf("Holds(%s, bob) = %v, want %v", node, holds, want)
				}
			}
		})
	}
}

func TestDirectoryQuietestPeer(t *testing.T) {
	tests := []struct {
		name   string
		steps  []step
		want   time.Duration
		wantOK bool
	}{
		{name: "no node but self", steps: []step{{op: "join", node: self, user: "bob", seq: 1}}},
		{
			name: "the peer heard least recently",
			steps: []step{
				{op: "join", node: self, user: "bob", seq: 1},
				{at: time.Second, op: "heartbeat", node: other, seq: 1},
				{at: 2 * time.Second, op: "heartbeat", node: "n3", seq: 1},
				{at: 4 * time.Second, op: "heartbeat", node: other, seq: 2},
			},
			want: 2 * time.Second, wantOK: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := presence.NewDirectory(self, grace, forget)
			for _, s := range tt.steps {
				run(d, s)
			}
			got, ok := d.QuietestPeer()
			if ok != tt.wantOK || (ok && got.Sub(t0) != tt.want) {
				t.Fatalf("QuietestPeer = %v, %v; want %v, %v", got.Sub(t0), ok, tt.want, tt.wantOK)
			}
		})
	}
}
