package e2e

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// Groups (PROTOCOL v1.3) over REST, with their member frames and sends by
// the group's id. One node on the embedded store here;
// testClusterGuarantees checks member frames, a group send and the
// receipts endpoint across nodes (groupAcrossNodes).

// Group is a group as the groups routes answer it.
type Group struct {
	Conversation string   `json:"conversation"`
	Kind         string   `json:"kind"`
	Title        string   `json:"title"`
	Owner        string   `json:"owner"`
	Members      []string `json:"members"`
	CreatedAt    string   `json:"createdAt"`
}

// groupCall makes a groups call that must answer want, and returns the group.
func groupCall(t testing.TB, n *Node, method, path, token string, body any, want int) Group {
	t.Helper()
	status, data := n.Do(t, method, path, token, body)
	if status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, status, data, want)
	}
	var g Group
	mustUnmarshal(t, data, &g)
	return g
}

// memberFrame matches a `member` frame of conv about user.
func memberFrame(conv, user, change, by string) func(Frame) bool {
	return func(f Frame) bool {
		var got struct{ Change, By, At string }
		_ = json.Unmarshal([]byte(f.Raw), &got)
		return f.Conversation == conv && f.User == user && got.Change == change && got.By == by && got.At != ""
	}
}

func TestGroupsOverREST(t *testing.T) {
	t.Parallel()
	n := StartNode(t, map[string]string{"CHAT_MAX_GROUP_MEMBERS": "4"})
	tok := map[string]string{}
	for _, u := range []string{"gann", "gbob", "gcid", "gdan", "geve"} {
		tok[u] = n.Token(t, u)
	}
	bob, dan := n.Dial(t, "gbob"), n.Dial(t, "gdan")

	g := groupCall(t, n, http.MethodPost, "/api/groups", tok["gann"], map[string]any{"title": "team", "members": []string{"gbob", "gcid", "gbob"}}, http.StatusCreated)
	if !strings.HasPrefix(g.Conversation, "g_") || g.Kind != "group" || g.Owner != "gann" || !slices.Equal(g.Members, []string{"gann", "gbob", "gcid"}) {
		t.Fatalf("created %+v", g)
	}
	conv, path := g.Conversation, "/api/groups/"+g.Conversation
	bob.Next("member", memberFrame(conv, "gbob", "added", "gann"))

	status, body := n.Do(t, http.MethodPost, "/api/groups", tok["gann"], map[string]any{"title": "big", "members": []string{"gbob", "gcid", "gdan", "geve"}})
	expectError(t, "a group over the cap", status, body, http.StatusBadRequest, "bad_request")
	status, body = n.Do(t, http.MethodGet, path, tok["geve"], nil)
	expectError(t, "a non-member gets the group", status, body, http.StatusNotFound, "not_found")
	status, body = n.Do(t, http.MethodPost, path+"/members", tok["gbob"], map[string]any{"add": []string{"geve"}})
	expectError(t, "a member adds", status, body, http.StatusForbidden, "forbidden")

	if g = groupCall(t, n, http.MethodPatch, path, tok["gcid"], map[string]string{"title": "renamed"}, http.StatusOK); g.Title != "renamed" {
		t.Fatalf("renamed %+v", g)
	}
	list := conversationsUntil(t, n, tok["gbob"], func(c []ConversationSummary) bool { return len(c) == 1 && c[0].Title == "renamed" })
	if len(list) != 1 || list[0].Conversation != conv || list[0].Kind != "group" || len(list[0].Members) != 3 || list[0].Peer != "" {
		t.Fatalf("gbob's list %+v", list)
	}

	g = groupCall(t, n, http.MethodPost, path+"/members", tok["gann"], map[string]any{"add": []string{"gdan"}}, http.StatusOK)
	for _, c := range []*Client{bob, dan} {
		c.Next("member", memberFrame(conv, "gdan", "added", "gann"))
	}
	status, body = n.Do(t, http.MethodPost, path+"/members", tok["gann"], map[string]any{"add": []string{"geve"}})
	expectError(t, "an addition over the cap", status, body, http.StatusBadRequest, "bad_request")

	// A send by the group's id reaches the other members with no `to`; a
	// non-member finds no such conversation.
	bob.Send(map[string]any{"type": "send", "id": "gs-1", "conversation": conv, "body": "hello group"})
	if ack := bob.Next("ack", byID("gs-1")); ack.Conversation != conv || ack.Seq != 1 {
		t.Fatalf("ack of the group send: %s", ack)
	}
	f := dan.Next("message", msgWithBody("hello group"))
	if m, _ := f.Msg(); m.From != "gbob" || m.To != "" || strings.Contains(f.Raw, `"to"`) {
		t.Fatalf("a group's message frame: %s", f)
	}
	eve := n.Dial(t, "geve")
	eve.Send(map[string]any{"type": "send", "id": "gs-2", "conversation": conv, "body": "let me in"})
	if e := eve.Next("error", byID("gs-2")); e.Code != "not_found" {
		t.Fatalf("a non-member's send: %s", e)
	}

	// The owner leaves: gbob, who joined earliest after gann, takes over.
	g = groupCall(t, n, http.MethodPost, path+"/members", tok["gann"], map[string]any{"remove": []string{"gann"}}, http.StatusOK)
	if g.Owner != "gbob" || !slices.Equal(g.Members, []string{"gbob", "gcid", "gdan"}) {
		t.Fatalf("after the owner left: %+v", g)
	}
	dan.Next("member", memberFrame(conv, "gann", "removed", "gann"))
	status, body = n.Do(t, http.MethodGet, "/api/conversations/"+conv+"/messages", tok["gann"], nil)
	expectError(t, "the history for who left", status, body, http.StatusNotFound, "not_found")

	// The new owner removes gdan, who is told.
	groupCall(t, n, http.MethodPost, path+"/members", tok["gbob"], map[string]any{"remove": []string{"gdan"}}, http.StatusOK)
	dan.Next("member", memberFrame(conv, "gdan", "removed", "gbob"))

	receiptsOf(t, n, tok["gcid"], conv, map[string][2]uint64{"gbob": {0, 0}, "gcid": {0, 0}})
	status, body = n.Do(t, http.MethodGet, "/api/conversations/"+conv+"/receipts", tok["gdan"], nil)
	expectError(t, "the receipts for who was removed", status, body, http.StatusNotFound, "not_found")

	for _, u := range []string{"gbob", "gcid"} {
		groupCall(t, n, http.MethodPost, path+"/members", tok[u], map[string]any{"remove": []string{u}}, http.StatusOK)
	}
	status, body = n.Do(t, http.MethodGet, path, tok["gcid"], nil)
	expectError(t, "an ended group", status, body, http.StatusNotFound, "not_found")
}

// groupAcrossNodes checks, in testClusterGuarantees, a group made on one
// node and changed on the other: its member frames and a send to it reach
// the members' sessions on both nodes, and the receipts endpoint answers the markers
// of alice's and bob's direct conversation conv (bob has read 1 of its 2
// messages, alice both) on either node. a1 is alice's session on n1, a2
// hers and b2 bob's on n2.
func groupAcrossNodes(t *testing.T, n1, n2 *Node, a1, a2, b2 *Client, conv string) {
	t.Helper()
	g := groupCall(t, n1, http.MethodPost, "/api/groups", n1.Token(t, "alice"), map[string]any{"title": "nodes", "members": []string{"bob"}}, http.StatusCreated)
	b2.Next("member", memberFrame(g.Conversation, "bob", "added", "alice"))
	groupCall(t, n2, http.MethodPost, "/api/groups/"+g.Conversation+"/members", n2.Token(t, "alice"), map[string]any{"add": []string{"carol"}}, http.StatusOK)
	for _, c := range []*Client{a1, a2, b2} {
		c.Next("member", memberFrame(g.Conversation, "carol", "added", "alice"))
	}
	a1.Send(map[string]any{"type": "send", "id": "gn-1", "conversation": g.Conversation, "body": "to the nodes' group"})
	a1.Next("ack", byID("gn-1"))
	for _, c := range []*Client{a2, b2} {
		c.Next("message", msgWithBody("to the nodes' group"))
	}
	for _, n := range []*Node{n1, n2} {
		receiptsOf(t, n, n.Token(t, "bob"), conv, map[string][2]uint64{"alice": {2, 2}, "bob": {1, 1}})
	}
}

// receiptsOf checks the receipts endpoint of a conversation: one entry per
// member with the given delivered and read markers.
func receiptsOf(t testing.TB, n *Node, token, conv string, want map[string][2]uint64) {
	t.Helper()
	status, body := n.Do(t, http.MethodGet, "/api/conversations/"+conv+"/receipts", token, nil)
	var receipts []struct {
		User          string `json:"user"`
		DeliveredUpTo uint64 `json:"deliveredUpTo"`
		ReadUpTo      uint64 `json:"readUpTo"`
	}
	mustUnmarshal(t, body, &receipts)
	if status != http.StatusOK || len(receipts) != len(want) {
		t.Fatalf("receipts of %s: %d %s", conv, status, body)
	}
	for _, r := range receipts {
		if w, ok := want[r.User]; !ok || w != [2]uint64{r.DeliveredUpTo, r.ReadUpTo} {
			t.Errorf("receipts of %s: %s, want %v", conv, body, want)
		}
	}
}
