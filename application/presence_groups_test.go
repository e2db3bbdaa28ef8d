package application_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/presence"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
	"github.com/evchat/chatd/tests/eventually"
)

// Typing and presence in groups (PROTOCOL v1.3): typing reaches the other
// members on every node; sharing a group counts as sharing a conversation
// for presence answers, and unasked pushes go to co-members of small
// groups only.

// projectedGroup creates a group and waits until the read model lists it
// for every member, where presence finds a user's peers.
func projectedGroup(t *testing.T, n *node, owner user.ID, members ...user.ID) conversation.ID {
	t.Helper()
	g := createGroup(t, n, owner, members...)
	eventually.True(t, "the group to be projected", func() bool {
		for _, u := range append([]user.ID{owner}, members...) {
			views, err := n.rm.ListFor(context.Background(), u, 10)
			if err != nil || !slices.ContainsFunc(views, func(v ports.ConversationView) bool { return v.Conversation == string(g.Conversation) }) {
				return false
			}
		}
		return true
	})
	return g.Conversation
}

func TestTypingInAGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newPresenceCluster(t)
		ann, cid := connect(t, c.n1, "a1", "ann"), connect(t, c.n1, "c1", "cid")
		bob := connect(t, c.n2, "b1", "bob")
		id := createGroup(t, c.n1, "ann", "bob", "cid").Conversation
		ctx := context.Background()

		for range 10 {
			if err := c.n1.app.Typing.Handle(ctx, application.TypingCommand{User: "ann", Conversation: id}); err != nil {
				t.Fatal(err)
			}
		}
		eventually.True(t, "bob on the other node to see ann typing", func() bool { return len(bob.typingSeen()) > 0 })
		synctest.Wait()
		want := []ports.TypingView{{Conversation: string(id), User: "ann"}}
		for _, s := range []*fakeSession{bob, cid} {
			if got := s.typingSeen(); !slices.Equal(got, want) {
				t.Errorf("%s got %+v, want one typing frame of ann", s.user, got)
			}
		}
		if got := ann.typingSeen(); len(got) != 0 {
			t.Errorf("the typist's own session got %+v", got)
		}

		if _, err := c.n2.app.Groups.ChangeMembers.Handle(ctx, application.ChangeMembersCommand{By: "cid", Conversation: id, Remove: []user.ID{"cid"}}); err != nil {
			t.Fatal(err)
		}
		for _, typist := range []user.ID{"dan", "cid"} {
			err := c.n1.app.Typing.Handle(ctx, application.TypingCommand{User: typist, Conversation: id})
			if domain.KindOf(err) != domain.NotFound {
				t.Errorf("%s, not a member, typing: %v, want not found", typist, err)
			}
		}
	})
}

func TestPresencePushesReachSmallGroupsOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newPresenceCluster(t)
		ann, bigMember := connect(t, c.n1, "a1", "ann"), connect(t, c.n1, "x1", "x0")
		projectedGroup(t, c.n1, "ann", "bob", "cid")
		big := make([]user.ID, 32)
		for i := range big {
			big[i] = user.ID(fmt.Sprintf("x%d", i))
		}
		projectedGroup(t, c.n1, "bob", big...)

		connect(t, c.n2, "b1", "bob")
		eventually.True(t, "ann, in a group of 3 with bob, to see him online", func() bool {
			p, ok := lastPresence(ann, "bob")
			return ok && p.Online
		})
		synctest.Wait()
		if got := bigMember.presenceSeen(); len(got) != 0 {
			t.Errorf("a member of a group of 33 was pushed %+v", got)
		}
	})
}

func TestPresenceAnswersGroupMembers(t *testing.T) {
	c := newPresenceCluster(t)
	ctx := context.Background()
	big := make([]user.ID, 32)
	for i := range big {
		big[i] = user.ID(fmt.Sprintf("x%d", i))
	}
	projectedGroup(t, c.n1, "bob", big...)
	small := projectedGroup(t, c.n1, "ann", "bob", "cid")
	for _, u := range []user.ID{"ann", "bob", "cid", "x0"} {
		connect(t, c.n1, "s-"+string(u), u)
	}
	asked := presence.Users{"ann", "bob", "cid", "x0"}
	answers := func(asker user.ID) []bool {
		got, err := c.p1.Query(ctx, asker, asked)
		if err != nil {
			t.Fatal(err)
		}
		online := make([]bool, len(got))
		for i, p := range got {
			online[i] = p.Online
		}
		return online
	}
	tests := []struct {
		asker user.ID
		want  []bool
	}{
		{"ann", []bool{true, true, true, false}},
		{"bob", []bool{true, true, true, true}},
		{"x0", []bool{false, true, false, true}},
	}
	for _, tt := range tests {
		if got := answers(tt.asker); !slices.Equal(got, tt.want) {
			t.Errorf("%s asked %v: online %v, want %v", tt.asker, asked, got, tt.want)
		}
	}

	if _, err := c.n1.app.Groups.ChangeMembers.Handle(ctx, application.ChangeMembersCommand{By: "ann", Conversation: small, Remove: []user.ID{"cid"}}); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, "cid, removed, to see ann as a stranger", func() bool {
		return slices.Equal(answers("cid"), []bool{false, false, true, false})
	})
	if got := answers("ann"); !slices.Equal(got, []bool{true, true, false, false}) {
		t.Errorf("ann, after removing cid: online %v, want cid a stranger", got)
	}
}
