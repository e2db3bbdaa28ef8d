package presence_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evchat/chatd/domain"
	"github.com/evchat/chatd/domain/presence"
	"github.com/evchat/chatd/domain/user"
)

const (
	grace  = 5 * time.Second
	forget = 15 * time.Second
	self   = "n1"
	other  = "n2"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// step is one thing that happens to the directory, at an offset from t0.
type step struct {
	at    time.Duration
	op    string // join, leave, heartbeat, tick
	node  string
	user  user.ID
	users []user.ID
	seq   uint64
}

func run(d *presence.Directory, s step) []presence.Change {
	now := t0.Add(s.at)
	switch s.op {
	case "join":
		return d.Join(s.node, s.user, s.seq, now)
	case "leave":
		return d.Leave(s.node, s.user, s.seq, now, now)
	case "heartbeat":
		return d.Heartbeat(s.node, s.users, s.seq, now)
	case "tick":
		return d.Tick(now)
	}
	panic("unknown op " + s.op)
}

func describe(cs []presence.Change) string {
	var parts []string
	for _, c := range cs {
		if c.Online {
			parts = append(parts, string(c.User)+" online")
		} else {
			parts = append(parts, fmt.Sprintf("%s offline@%s record=%v", c.User, c.LastSeen.Sub(t0), c.Record))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

func TestDirectory(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		// want is the changes of all steps, in order, one string per step
		// that made any.
		want       []string
		online     map[user.ID]bool
		finalCheck time.Duration
	}{
		{
			name:   "a first session on any node makes the user online",
			steps:  []step{{op: "join", node: other, user: "bob", seq: 1}},
			want:   []string{"bob online"},
			online: map[user.ID]bool{"bob": true, "carol": false},
		},
		{
			name: "a second node listing the user changes nothing",
			steps: []step{
				{op: "join", node: other, user: "bob", seq: 1},
				{op: "join", node: self, user: "bob", seq: 1},
				{at: time.Second, op: "leave", node: other, user: "bob", seq: 2},
				{at: 10 * time.Second, op: "tick"},
			},
			want:   []string{"bob online"},
			online: map[user.ID]bool{"bob": true},
		},
		{
			name: "the last session closing makes the user offline after the grace, not before",
			steps: []step{
				{op: "join", node: self, user: "bob", seq: 1},
				{at: time.Second, op: "leave", node: self, user: "bob", seq: 2},
				{at: 5900 * time.Millisecond, op: "tick"},
				{at: 6 * time.Second, op: "tick"},
			},
			want:   []string{"bob online", "bob offline@1s record=true"},
			online: map[user.ID]bool{"bob": false},
		},
		{
			name: "another node's user going offline is not recorded here",
			steps: []step{
				{op: "join", node: other, user: "bob", seq: 1},
				{at: time.Second, op: "leave", node: other, user: "bob", seq: 2},
				{at: 6 * time.Second, op: "tick"},
			},
			want: []string{"bob online", "bob offline@1s record=false"},
		},
		{
			name: "a reconnect within the grace, on another node, does not flap",
			steps: []step{
				{op: "join", node: self, user: "bob", seq: 1},
				{at: time.Second, op: "leave", node: self, user: "bob", seq: 2},
				{at: 3 * time.Second, op: "join", node: other, user: "bob", seq: 7},
				{at: 20 * time.Second, op: "heartbeat", node: other, users: []user.ID{"bob"}, seq: 8},
				{at: 20 * time.Second, op: "tick"},
			},
			want:   []string{"bob online"},
			online: map[user.ID]bool{"bob": true},
		},
		{
			name: "a join older than the leave already applied is ignored",
			steps: []step{
				{op: "join", node: other, user: "bob", seq: 5},
				{op: "leave", node: other, user: "bob", seq: 6},
				{op: "join", node: other, user: "bob", seq: 5},
				{at: 6 * time.Second, op: "tick"},
			},
			want:   []string{"bob online", "bob offline@0s record=false"},
			online: map[user.ID]bool{"bob": false},
		},
		{
			name: "a heartbeat joins the users it lists and leaves those it no longer lists",
			steps: []step{
				{op: "heartbeat", node: other, users: []user.ID{"bob", "carol"}, seq: 1},
				{at: time.Second, op: "heartbeat", node: other, users: []user.ID{"carol"}, seq: 2},
				{at: 7 * time.Second, op: "tick"},
			},
			want:   []string{"bob online, carol online", "bob offline@1s record=false"},
			online: map[user.ID]bool{"bob": false, "carol": true},
		},
		{
			name: "a heartbeat older than a join does not undo it",
			steps: []step{
				{op: "join", node: other, user: "bob", seq: 10},
				{op: "heartbeat", node: other, users: nil, seq: 9},
				{at: 7 * time.Second, op: "tick"},
			},
			want:   []string{"bob online"},
			online: map[user.ID]bool{"bob": true},
		},
		{
			name: "a node silent past ForgetAfter is forgotten and its users go offline at once",
			steps: []step{
				{op: "heartbeat", node: other, users: []user.ID{"bob", "carol"}, seq: 1},
				{op: "join", node: self, user: "carol", seq: 1},
				{at: 15 * time.Second, op: "tick"},
				{at: 15001 * time.Millisecond, op: "tick"},
			},
			want:   []string{"bob online, carol online", "bob offline@0s record=true"},
			online: map[user.ID]bool{"bob": false, "carol": true},
		},
		{
			name: "this node is never forgotten",
			steps: []step{
				{op: "join", node: self, user: "bob", seq: 1},
				{at: time.Hour, op: "tick"},
			},
			want:   []string{"bob online"},
			online: map[user.ID]bool{"bob": true},
		},
		{
			name: "a restarted node's higher sequence replaces what it said before",
			steps: []step{
				{op: "heartbeat", node: other, users: []user.ID{"bob"}, seq: 100},
				{at: time.Second, op: "heartbeat", node: other, users: nil, seq: 2000},
				{at: 7 * time.Second, op: "tick"},
			},
			want:   []string{"bob online", "bob offline@1s record=false"},
			online: map[user.ID]bool{"bob": false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := presence.NewDirectory(self, grace, forget)
			var got []string
			for _, s := range tt.steps {
				if cs := run(d, s); len(cs) > 0 {
					got = append(got, describe(cs))
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("changes %q, want %q", got, tt.want)
			}
			for u, want := range tt.online {
				if d.Online(u) != want {
					t.Errorf("Online(%s) = %v, want %v", u, !want, want)
				}
			}
		})
	}
}

func TestDirectoryRemembersLastSeen(t *testing.T) {
	d := presence.NewDirectory(self, grace, forget)
	d.Join(other, "bob", 1, t0)
	d.Leave(other, "bob", 2, t0.Add(time.Second), t0.Add(time.Second))
	if _, ok := d.LastSeen("bob"); ok {
		t.Fatal("last seen known while in the grace")
	}
	d.Tick(t0.Add(7 * time.Second))
	if got, ok := d.LastSeen("bob"); !ok || !got.Equal(t0.Add(time.Second)) {
		t.Fatalf("LastSeen = %v, %v", got, ok)
	}
	d.Join(other, "bob", 3, t0.Add(8*time.Second))
	if _, ok := d.LastSeen("bob"); ok {
		t.Fatal("last seen kept for a user online again")
	}
}

func TestParseUsers(t *testing.T) {
	many := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("u%d", i)
		}
		return out
	}
	tests := []struct {
		name string
		ids  []string
		want int
		err  bool
	}{
		{"one", []string{"1001"}, 1, false},
		{"two hundred", many(200), 200, false},
		{"repeats are answered once", []string{"a", "b", "a"}, 2, false},
		{"none", nil, 0, true},
		{"two hundred and one", many(201), 0, true},
		{"a bad id", []string{"ok", "not ok"}, 0, true},
		{"an empty id", []string{""}, 0, true},
		{"an id too long", []string{strings.Repeat("x", 65)}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := presence.ParseUsers(tt.ids)
			if tt.err {
				if domain.KindOf(err) != domain.Invalid {
					t.Fatalf("err = %v, want an Invalid domain error", err)
				}
				return
			}
			if err != nil || len(got) != tt.want {
				t.Fatalf("got %d users, %v; want %d", len(got), err, tt.want)
			}
		})
	}
	if _, err := presence.ParseUsers(many(201)); !errors.Is(err, presence.ErrQuerySize) {
		t.Errorf("201 users: %v, want ErrQuerySize", err)
	}
}
