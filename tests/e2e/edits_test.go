package e2e

import (
	"net/http"
	"testing"
)

// Edits and recalls (PROTOCOL v1.3) across two nodes, on the cluster that
// testClusterGuarantees has booted: the changed answer, updates in rev
// order to the peer's and the author's other sessions on either node and
// never to the asking one, the refusals, a resend on the other node, sync
// with changesAfter, and the history and the list without a recalled body.
func clusterEditsAndRecalls(t *testing.T, n1, n2 *Node) {
	author := n1.Dial(t, "edit-author") // asks for every change
	other := n2.Dial(t, "edit-author")  // the author's other session, on the other node
	peer := n2.Dial(t, "edit-peer")
	peerHere := n1.Dial(t, "edit-peer")
	first := author.SendMessage("ed-1", "edit-peer", "first draft")
	author.SendMessage("ed-2", "edit-peer", "a secret")
	conv := first.Conversation
	for _, c := range []*Client{peer, peerHere, other} {
		c.Next("message", msgWithBody("a secret"))
	}

	edited := change(t, author, map[string]any{"type": "edit", "id": "ed-e1", "conversation": conv, "seq": 1, "body": "final draft"})
	recalled := change(t, author, map[string]any{"type": "recall", "id": "ed-r2", "conversation": conv, "seq": 2})
	if edited.Rev != 1 || edited.Seq != 1 || recalled.Rev != 2 || recalled.Seq != 2 {
		t.Errorf("changed answers %s and %s, want rev 1 for seq 1 and rev 2 for seq 2", edited, recalled)
	}
	for _, c := range []*Client{peer, peerHere, other} {
		if u := c.Next("update", nil); u.Rev != 1 || u.Seq != 1 || u.Body != "final draft" {
			t.Errorf("%s: first update %s, want the edit of seq 1 at rev 1", c.Name, u)
		}
		if u := c.Next("update", nil); u.Rev != 2 || u.Seq != 2 || !u.Recalled || u.Body != "" {
			t.Errorf("%s: second update %s, want the recall of seq 2 at rev 2", c.Name, u)
		}
	}

	// A resend on the other node is the first answer; the rules then refuse
	// the peer, an outsider and a second recall alike.
	if again := change(t, other, map[string]any{"type": "recall", "id": "ed-r2", "conversation": conv, "seq": 2}); again.Rev != 2 {
		t.Errorf("resent recall on %s: %s, want rev 2", n2.Name, again)
	}
	refused := func(c *Client, frame map[string]any, code string) {
		t.Helper()
		c.Send(frame)
		if e := c.Next("error", byID(frame["id"].(string))); e.Code != code {
			t.Errorf("%s: %v answered %s, want %s", c.Name, frame, e, code)
		}
	}
	refused(peer, map[string]any{"type": "edit", "id": "ed-p", "conversation": conv, "seq": 1, "body": "mine"}, "forbidden")
	refused(n2.Dial(t, "edit-outsider"), map[string]any{"type": "recall", "id": "ed-o", "conversation": conv, "seq": 1}, "not_found")
	refused(author, map[string]any{"type": "edit", "id": "ed-e2", "conversation": conv, "seq": 2, "body": "back"}, "forbidden")
	refused(author, map[string]any{"type": "edit", "id": "ed-e3", "conversation": conv, "seq": 9, "body": "none"}, "not_found")

	// sync from the other node: the current state, and what changed after rev 1.
	peer.Send(map[string]any{"type": "sync", "conversation": conv, "after": 0, "changesAfter": 1})
	page := peer.Next("messages", nil)
	if len(page.Messages) != 2 || page.Messages[0].Body != "final draft" || page.Messages[0].EditedAt == "" ||
		!page.Messages[1].Recalled || page.Messages[1].Body != "" {
		t.Errorf("sync after the changes: %s", page)
	}
	if len(page.Updates) != 1 || page.Updates[0].Seq != 2 || page.Updates[0].Rev != 2 || !page.Updates[0].Recalled {
		t.Errorf("sync's updates after rev 1: %s, want the recall of seq 2", page)
	}
	tok := n1.Token(t, "edit-peer")
	if h := fullHistory(t, n1, tok, conv); len(h) != 2 || h[1].Body != "" || !h[1].Recalled || h[0].Body != "final draft" {
		t.Errorf("history after the recall: %+v", h)
	}
	list := conversationsUntil(t, n2, tok, func(cs []ConversationSummary) bool {
		return len(cs) == 1 && cs[0].LastMessage != nil && cs[0].LastMessage.Recalled
	})
	if len(list) != 1 || list[0].LastMessage == nil || list[0].LastMessage.Body != "" {
		t.Errorf("the list's last message after its recall: %+v", list)
	}
	author.Ping()
	author.None("update", nil)
	if status, body := n2.Do(t, http.MethodGet, "/api/conversations/"+conv+"/messages", n2.Token(t, "edit-outsider"), nil); status != http.StatusNotFound {
		t.Errorf("an outsider's history: %d %s, want 404", status, body)
	}
}

// change sends an edit or recall and returns its `changed` answer.
func change(t *testing.T, c *Client, frame map[string]any) Frame {
	t.Helper()
	c.Send(frame)
	f, err := c.Await(frameTimeout, "changed", byID(frame["id"].(string)))
	if err != nil {
		if e, err2 := c.Await(0, "error", byID(frame["id"].(string))); err2 == nil {
			t.Fatalf("%s: %v got %s, want changed", c.Name, frame, e)
		}
		t.Fatal(err)
	}
	if f.Conversation != frame["conversation"] || f.Seq != uint64(frame["seq"].(int)) {
		t.Errorf("%s: %v answered %s", c.Name, frame, f)
	}
	return f
}
