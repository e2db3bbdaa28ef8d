package application_test

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
)

// receivedChanges is how many commits of conv's changes stream node's
// delivery received.
func (c *routedCluster) receivedChanges(node string, conv conversation.ID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, commit := range c.received[node] {
		if commit.Stream == conversation.ChangesStream(conv) {
			n++
		}
	}
	return n
}

// A group's commits reach the nodes of its members' sessions, and of the
// user a change adds or removes, and no other node.
func TestGroupCommitsReachOnlyTheNodesOfTheirMembers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := memory.NewSignals()
		c := newRoutedCluster(t, []string{"n1", "n2", "n3"}, func(string) *memory.Signals { return shared })
		n1 := c.nodes["n1"]
		settle(warmedUp)
		connect(t, n1, "ann-1", "ann")
		bob, dan := connect(t, c.nodes["n2"], "bob-1", "bob"), connect(t, c.nodes["n3"], "dan-1", "dan")
		settle(testWindow + testHeartbeat)
		ctx := context.Background()

		id := createGroup(t, n1, "ann", "bob", "cid").Conversation
		groupSend := func(key string) {
			t.Helper()
			if _, err := sendTo(n1, "ann", key, id); err != nil {
				t.Fatal(err)
			}
		}
		changeMembers := func(cmd application.ChangeMembersCommand) {
			t.Helper()
			cmd.By, cmd.Conversation = "ann", id
			if _, err := n1.app.Groups.ChangeMembers.Handle(ctx, cmd); err != nil {
				t.Fatal(err)
			}
		}
		groupSend("k1")
		settle(time.Second)
		if got := c.receivedMessages("n2", id); !slices.Equal(got, []uint64{1}) {
			t.Errorf("n2, bob's node, received %v of the group, want [1]", got)
		}
		if got, changes := c.receivedMessages("n3", id), c.receivedChanges("n3", id); len(got) != 0 || changes != 0 {
			t.Errorf("n3, no member's node, received messages %v and %d changes of the group", got, changes)
		}

		changeMembers(application.ChangeMembersCommand{Add: []user.ID{"dan"}})
		groupSend("k2")
		changeMembers(application.ChangeMembersCommand{Remove: []user.ID{"dan"}})
		groupSend("k3")
		settle(time.Second)
		if got, changes := c.receivedMessages("n3", id), c.receivedChanges("n3", id); !slices.Equal(got, []uint64{2}) || changes != 2 {
			t.Errorf("n3, dan's node, received messages %v and %d changes, want [2] and his addition and removal", got, changes)
		}
		// The history before him comes with his first message, as to any
		// session that opens (a new member reads the whole history).
		if got := dan.seqs(); !slices.Equal(got, []uint64{1, 2}) {
			t.Errorf("dan got %v live, want [1 2]: what was sent until he was removed", got)
		}
		if got := dan.membersSeen(); len(got) != 2 || got[0].Change != "added" || got[1].Change != "removed" {
			t.Errorf("dan was told %+v, want his addition and his removal", got)
		}
		if got := bob.seqs(); !slices.Equal(got, []uint64{1, 2, 3}) {
			t.Errorf("bob got %v live, want [1 2 3]", got)
		}
	})
}
