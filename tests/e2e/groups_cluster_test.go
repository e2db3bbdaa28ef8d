package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/evchat/chatd/tests/eventually"
)

// Groups across the cluster's nodes beyond groupAcrossNodes: typing and
// presence among a group's members (TestPresenceCluster), and a node
// killed during membership changes (testClusterKillDuringSends).

// testPresenceInGroups: typing in a group reaches a member on the other
// node; a small group's co-member is pushed a member's coming online, a
// 33-member group's is not, but is answered when they ask.
func testPresenceInGroups(t *testing.T, n1, n2 *Node) {
	small := groupCall(t, n1, http.MethodPost, "/api/groups", n1.Token(t, "pann"),
		map[string]any{"title": "small", "members": []string{"pbob", "pcid"}}, http.StatusCreated).Conversation
	bigMembers := make([]string, 32)
	for i := range bigMembers {
		bigMembers[i] = fmt.Sprintf("px%d", i)
	}
	groupCall(t, n1, http.MethodPost, "/api/groups", n1.Token(t, "pbig"),
		map[string]any{"title": "big", "members": bigMembers}, http.StatusCreated)
	// Presence finds a user's groups in the read model.
	for _, u := range []string{"pcid", "pbig"} {
		if c := conversationsUntil(t, n2, n2.Token(t, u), func(c []ConversationSummary) bool { return len(c) == 1 }); len(c) != 1 {
			t.Fatalf("%s's list %+v, want their group", u, c)
		}
	}
	ann, bob, x0 := n1.Dial(t, "pann"), n2.Dial(t, "pbob"), n2.Dial(t, "px0")
	// Typing goes to the nodes ann's node knows the members on, and is
	// not kept for a node it learns of later: ann types once her node has
	// heard of bob's session, which her page learns as his coming online
	// (CI once typed first, and bob's typing never came).
	ann.Next("presence", presenceOf("pbob", true))

	for range 5 {
		ann.Send(map[string]any{"type": "typing", "conversation": small})
	}
	bob.Next("typing", func(f Frame) bool { return f.Conversation == small && f.User == "pann" })
	ann.Ping()
	ann.None("error", nil)
	bob.None("typing", nil)

	// pbig's join is signalled before pcid's, on the same path.
	n1.Dial(t, "pbig")
	n1.Dial(t, "pcid")
	bob.Next("presence", presenceOf("pcid", true))
	x0.None("presence", presenceOf("pbig", true))
	x0.Send(map[string]any{"type": "presence", "users": []string{"pbig"}})
	x0.Next("presence", presenceOf("pbig", true))
}

// memberToggler changes a group's membership on one node again and again,
// as its owner's client would: it adds one user, removes them, adds them
// again, and so on, until stop is closed or a change is not acked (the
// node died under it), which it keeps as the change in flight.
type memberToggler struct {
	conv, owner, token, user string
	// acked are the acked changes in order: true adds, false removes.
	acked []bool
	// inFlight is the change not acked, nil when stop ended the run.
	inFlight *bool
	err      error
}

func (m *memberToggler) run(n *Node, stop <-chan struct{}) {
	// A pace, not a wait on anything: the change in flight when the node
	// dies is one of a few dozen, not of thousands.
	pace := time.NewTicker(20 * time.Millisecond)
	defer pace.Stop()
	for add := true; ; add = !add {
		select {
		case <-stop:
			return
		case <-pace.C:
		}
		if err := m.change(n, add); err != nil {
			m.inFlight, m.err = &add, err
			return
		}
		m.acked = append(m.acked, add)
	}
}

// change adds or removes the user on n; an error unless it is acked.
func (m *memberToggler) change(n *Node, add bool) error {
	op := "remove"
	if add {
		op = "add"
	}
	data, err := json.Marshal(map[string][]string{op: {m.user}})
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, n.URL()+"/api/groups/"+m.conv+"/members", bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+m.token)
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", op, m.user, resp.StatusCode, body)
	}
	return nil
}

// members are the group's members as n answers them.
func (m *memberToggler) members(t *testing.T, n *Node) []string {
	t.Helper()
	g := groupCall(t, n, http.MethodGet, "/api/groups/"+m.conv, m.token, nil, http.StatusOK)
	return g.Members
}

// checkGroupAfterKill checks, on the surviving node n, a group whose
// membership m was changing on a node killed under it. Each acked change
// is durable and was delivered: watch, a member's session on n, got its
// member frame, in order, and GET /api/groups shows the last one's effect
// unless the change in flight committed. The change in flight either
// committed (GET shows it) or not; either way its retry on n is acked and
// the change delivered, and GET and the member's conversation list agree.
func checkGroupAfterKill(t *testing.T, n *Node, m *memberToggler, watch *Client, watchToken string) {
	t.Helper()
	change := map[bool]string{true: "added", false: "removed"}
	for _, add := range m.acked {
		watch.Next("member", memberFrame(m.conv, m.user, change[add], m.owner))
	}
	if m.inFlight == nil {
		t.Fatalf("%d membership changes acked, and none was in flight when the node died", len(m.acked))
	}
	t.Logf("%d membership changes acked before the kill; the one in flight: %v", len(m.acked), m.err)
	// The user is in the group or not: the change in flight committed
	// when that is its effect, since the last acked change had the other.
	committed := slices.Contains(m.members(t, n), m.user) == *m.inFlight
	t.Logf("the change in flight committed before the kill: %v", committed)
	if err := m.change(n, *m.inFlight); err != nil {
		t.Fatalf("the change in flight, retried on the surviving node: %v", err)
	}
	// Committed, it is published by the retry's node, which finds it
	// stored, once the bus has not brought it back for two
	// CHAT_REPUBLISH_AFTER (3 s); else the retry commits it.
	const published = 15 * time.Second
	if _, err := watch.Await(published, "member", memberFrame(m.conv, m.user, change[*m.inFlight], m.owner)); err != nil {
		t.Fatalf("the change in flight (committed before the kill: %v), retried: no member frame: %v", committed, err)
	}
	members := m.members(t, n)
	if slices.Contains(members, m.user) != *m.inFlight {
		t.Fatalf("members %v after the retry of the change in flight (added: %v)", members, *m.inFlight)
	}
	var list []ConversationSummary
	_ = eventually.Poll(published, func() (bool, error) {
		list = conversations(t, n, watchToken)
		i := slices.IndexFunc(list, func(s ConversationSummary) bool { return s.Conversation == m.conv })
		return i >= 0 && slices.Equal(list[i].Members, members), nil
	})
	if i := slices.IndexFunc(list, func(s ConversationSummary) bool { return s.Conversation == m.conv }); i < 0 || !slices.Equal(list[i].Members, members) {
		t.Errorf("the member's list %+v, want the group with members %v", list, members)
	}
}
