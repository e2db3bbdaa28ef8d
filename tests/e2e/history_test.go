package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/evchat/chatd/tests/eventually"
)

// Page is the answer of GET /api/conversations/{id}/messages.
type Page struct {
	Messages []Message `json:"messages"`
	More     bool      `json:"more"`
}

// history gets a page of a conversation's history; query is the raw query
// string, such as "after=2&limit=2".
func history(t testing.TB, n *Node, token, conv, query string) Page {
	t.Helper()
	path := "/api/conversations/" + conv + "/messages"
	if query != "" {
		path += "?" + query
	}
	status, body := n.Do(t, http.MethodGet, path, token, nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s, want 200", path, status, body)
	}
	var raw map[string]json.RawMessage
	mustUnmarshal(t, body, &raw)
	if m, ok := raw["messages"]; !ok || m[0] != '[' {
		t.Errorf("GET %s: %s has no messages array", path, body)
	}
	if _, ok := raw["more"]; !ok {
		t.Errorf("GET %s: %s has no more field", path, body)
	}
	var p Page
	mustUnmarshal(t, body, &p)
	return p
}

// ConversationSummary is one entry of GET /api/conversations.
type ConversationSummary struct {
	Conversation  string   `json:"conversation"`
	Kind          string   `json:"kind"`
	Peer          string   `json:"peer"`
	Title         string   `json:"title"`
	Members       []string `json:"members"`
	LastSeq       uint64   `json:"lastSeq"`
	DeliveredUpTo uint64   `json:"deliveredUpTo"`
	ReadUpTo      uint64   `json:"readUpTo"`
	Unread        uint64   `json:"unread"`
	LastMessage   *Message `json:"lastMessage"`
}

// conversationsUntil polls the list until done holds or a few seconds pass,
// and returns the last list: the read model is a projection, current a few
// milliseconds after the ack rather than at it.
func conversationsUntil(t testing.TB, n *Node, token string, done func([]ConversationSummary) bool) []ConversationSummary {
	t.Helper()
	var c []ConversationSummary
	_ = eventually.Poll(3*time.Second, func() (bool, error) {
		c = conversations(t, n, token)
		return done(c), nil
	})
	return c
}

func conversations(t testing.TB, n *Node, token string) []ConversationSummary {
	t.Helper()
	status, body := n.Do(t, http.MethodGet, "/api/conversations", token, nil)
	if status != http.StatusOK {
		t.Fatalf("GET /api/conversations: %d %s, want 200", status, body)
	}
	var raw []map[string]json.RawMessage
	mustUnmarshal(t, body, &raw)
	for _, c := range raw {
		keys := []string{"conversation", "kind", "peer", "lastSeq", "deliveredUpTo", "readUpTo", "unread", "lastMessage"}
		if string(c["kind"]) == `"group"` {
			keys = []string{"conversation", "kind", "title", "members", "lastSeq", "deliveredUpTo", "readUpTo", "unread", "lastMessage"}
		}
		for _, k := range keys {
			if _, ok := c[k]; !ok {
				t.Errorf("GET /api/conversations: entry lacks %q: %s", k, body)
			}
		}
	}
	var out []ConversationSummary
	mustUnmarshal(t, body, &out)
	return out
}

func seqs(ms []Message) []uint64 {
	out := make([]uint64, len(ms))
	for i, m := range ms {
		out[i] = m.Seq
	}
	return out
}

// syncPage sends a `sync` and returns the `messages` answer.
func syncPage(c *Client, conv string, after uint64, limit int) Frame {
	c.t.Helper()
	req := map[string]any{"type": "sync", "conversation": conv, "after": after}
	if limit > 0 {
		req["limit"] = limit
	}
	c.Send(req)
	f := c.Next("messages", nil)
	if f.Conversation != conv {
		c.t.Errorf("sync answer %s: conversation %q, want %q", f, f.Conversation, conv)
	}
	if m, ok := f.Fields["messages"]; !ok || m[0] != '[' {
		c.t.Errorf("sync answer %s: no messages array", f)
	}
	if _, ok := f.Fields["more"]; !ok {
		c.t.Errorf("sync answer %s: no more field", f)
	}
	return f
}

// TestOfflineSyncAndHistory: messages sent while the recipient is offline
// are kept and read back with `sync` and the history API, paged.
func TestOfflineSyncAndHistory(t *testing.T) {
	t.Parallel()
	n := StartNode(t, nil)
	alice := n.Dial(t, "alice")
	var acks []Frame
	for i := 1; i <= 5; i++ {
		acks = append(acks, alice.SendMessage(fmt.Sprintf("off-%d", i), "bob", fmt.Sprintf("offline %d", i)))
	}
	conv := acks[0].Conversation
	for i, a := range acks {
		if a.Conversation != conv || a.Seq != uint64(i+1) {
			t.Fatalf("ack %d: %s, want conversation %s seq %d", i, a, conv, i+1)
		}
	}
	bobTok := n.Token(t, "bob")

	// History before bob ever connected: every message is only sent.
	all := history(t, n, bobTok, conv, "")
	if got := seqs(all.Messages); !slices.Equal(got, []uint64{1, 2, 3, 4, 5}) || all.More {
		t.Fatalf("full history: seqs %v more %v, want 1..5 and no more", got, all.More)
	}
	for i, m := range all.Messages {
		checkMessage(t, m, acks[i], "alice", "bob", fmt.Sprintf("offline %d", i+1))
		if m.Status != "sent" {
			t.Errorf("history of an unread, undelivered message: status %q, want sent", m.Status)
		}
	}

	bob := n.DialToken(t, "bob", bobTok)
	for _, p := range []struct {
		after     uint64
		limit     int
		want      []uint64
		wantMore  bool
		whatLimit string
	}{
		{0, 2, []uint64{1, 2}, true, "2"},
		{2, 2, []uint64{3, 4}, true, "2"},
		{4, 2, []uint64{5}, false, "2"},
		{5, 2, []uint64{}, false, "2"},
		{0, 0, []uint64{1, 2, 3, 4, 5}, false, "the default"},
		{3, 500, []uint64{4, 5}, false, "500"},
	} {
		f := syncPage(bob, conv, p.after, p.limit)
		if got := seqs(f.Messages); !slices.Equal(got, p.want) || f.More != p.wantMore {
			t.Errorf("sync after %d limit %s: seqs %v more %v, want %v more %v", p.after, p.whatLimit, got, f.More, p.want, p.wantMore)
		}
		for _, m := range f.Messages {
			checkMessage(t, m, acks[m.Seq-1], "alice", "bob", fmt.Sprintf("offline %d", m.Seq))
		}
	}

	for _, p := range []struct {
		query    string
		want     []uint64
		wantMore bool
	}{
		{"after=2", []uint64{3, 4, 5}, false},
		{"after=1&limit=2", []uint64{2, 3}, true},
		{"after=3&limit=2", []uint64{4, 5}, false},
		{"before=3", []uint64{1, 2}, false},
		{"after=1&before=4", []uint64{2, 3}, false},
		{"after=5", []uint64{}, false},
	} {
		page := history(t, n, bobTok, conv, p.query)
		if got := seqs(page.Messages); !slices.Equal(got, p.want) || page.More != p.wantMore {
			t.Errorf("history ?%s: seqs %v more %v, want %v more %v", p.query, got, page.More, p.want, p.wantMore)
		}
	}
	// Alice, the other participant, reads the same history.
	if got := seqs(history(t, n, n.Token(t, "alice"), conv, "").Messages); !slices.Equal(got, []uint64{1, 2, 3, 4, 5}) {
		t.Errorf("alice's history: seqs %v, want 1..5", got)
	}
}

// TestReadReceiptsAndUnread: a `read` moves the reader's marker, sends a
// receipt to both participants' sessions, and shows in the history's status
// and the conversation list's unread count.
func TestReadReceiptsAndUnread(t *testing.T) {
	t.Parallel()
	n := StartNode(t, nil)
	aliceTok, bobTok := n.Token(t, "alice"), n.Token(t, "bob")
	alice := n.DialToken(t, "alice", aliceTok)
	b1, b2 := n.DialToken(t, "bob", bobTok), n.DialToken(t, "bob", bobTok)

	var last Frame
	for i := 1; i <= 3; i++ {
		last = alice.SendMessage(fmt.Sprintf("r-%d", i), "bob", fmt.Sprintf("read me %d", i))
	}
	conv := last.Conversation
	for i := 1; i <= 3; i++ {
		b1.Next("message", msgWithBody(fmt.Sprintf("read me %d", i)))
	}
	// Reaching bob's open sessions moves his delivered marker, and both
	// participants hear of it.
	deliveredAll := func(f Frame) bool { return f.User == "bob" && f.Conversation == conv && f.DeliveredUpTo == 3 }
	for _, s := range []*Client{alice, b1, b2} {
		s.Next("receipt", deliveredAll)
	}

	list := conversations(t, n, bobTok)
	if len(list) != 1 {
		t.Fatalf("bob's conversations: %+v, want one", list)
	}
	c := list[0]
	if c.Conversation != conv || c.Peer != "alice" || c.LastSeq != 3 || c.ReadUpTo != 0 || c.Unread != 3 {
		t.Errorf("bob's conversation before reading: %+v, want %s with alice, lastSeq 3, readUpTo 0, unread 3", c, conv)
	}
	if c.LastMessage == nil || c.LastMessage.Body != "read me 3" || c.LastMessage.Seq != 3 {
		t.Errorf("bob's conversation lastMessage: %+v, want seq 3 read me 3", c.LastMessage)
	}
	if a := conversations(t, n, aliceTok); len(a) != 1 || a[0].Peer != "bob" || a[0].Unread != 0 || a[0].LastSeq != 3 {
		t.Errorf("alice's conversations: %+v, want one with bob, lastSeq 3, unread 0", a)
	}

	b1.Send(map[string]any{"type": "read", "conversation": conv, "upTo": 2})
	readBy := func(f Frame) bool { return f.User == "bob" && f.ReadUpTo == 2 && f.Conversation == conv }
	for _, s := range []*Client{alice, b1, b2} {
		f := s.Next("receipt", readBy)
		if _, ok := f.Fields["readUpTo"]; !ok {
			t.Errorf("%s: receipt %s lacks readUpTo", s.User, f)
		}
	}
	b1.None("error", nil)

	if c := conversations(t, n, bobTok); len(c) != 1 || c[0].ReadUpTo != 2 || c[0].DeliveredUpTo != 3 || c[0].Unread != 1 {
		t.Errorf("bob's conversation after reading up to 2: %+v, want deliveredUpTo 3, readUpTo 2, unread 1", c)
	}
	for _, m := range history(t, n, aliceTok, conv, "").Messages {
		want := "read"
		if m.Seq == 3 {
			want = "delivered"
		}
		if m.Status != want {
			t.Errorf("after delivery up to 3 and a read up to 2: message %d has status %q, want %q", m.Seq, m.Status, want)
		}
	}

	// Reading everything clears the count; a read marker never goes back.
	b2.Send(map[string]any{"type": "read", "conversation": conv, "upTo": 3})
	alice.Next("receipt", func(f Frame) bool { return f.User == "bob" && f.ReadUpTo == 3 })
	b2.Send(map[string]any{"type": "read", "conversation": conv, "upTo": 1})
	b2.Ping()
	if c := conversations(t, n, bobTok); len(c) != 1 || c[0].ReadUpTo != 3 || c[0].Unread != 0 {
		t.Errorf("bob's conversation after reading all, then up to 1: %+v, want readUpTo 3, unread 0", c)
	}
	for _, m := range history(t, n, bobTok, conv, "").Messages {
		if m.Status != "read" {
			t.Errorf("after reading all: message %d has status %q, want read", m.Seq, m.Status)
		}
	}

	// Most recent activity first: a newer conversation comes before, until
	// the older one has a newer message.
	carol := n.Dial(t, "carol")
	carol.SendMessage("c-1", "bob", "hi from carol")
	if c := conversationsUntil(t, n, bobTok, func(c []ConversationSummary) bool {
		return len(c) == 2 && c[0].Peer == "carol" && c[1].Peer == "alice" && c[0].Unread == 1
	}); len(c) != 2 || c[0].Peer != "carol" || c[1].Peer != "alice" || c[0].Unread != 1 {
		t.Errorf("bob's conversations after carol wrote: %+v, want carol (unread 1) then alice", c)
	}
	alice.SendMessage("r-4", "bob", "back on top")
	if c := conversationsUntil(t, n, bobTok, func(c []ConversationSummary) bool {
		return len(c) == 2 && c[0].Peer == "alice" && c[0].Unread == 1 && c[0].LastSeq == 4
	}); len(c) != 2 || c[0].Peer != "alice" || c[0].Unread != 1 || c[0].LastSeq != 4 {
		t.Errorf("bob's conversations after alice wrote again: %+v, want alice (lastSeq 4, unread 1) first", c)
	}
}

// TestNonParticipantIsNotFound: only participants read or mark a
// conversation, and to anyone else it does not exist: the very answer of an
// unknown conversation (v1.2), so its public id tells nobody who talks to whom.
func TestNonParticipantIsNotFound(t *testing.T) {
	t.Parallel()
	n := StartNode(t, nil)
	alice := n.Dial(t, "alice")
	conv := alice.SendMessage("f-1", "bob", "private").Conversation

	// A conversation id that is well formed but unknown here: the id of a
	// conversation made on another node, whose store this node does not share.
	other := StartNode(t, nil)
	unknown := other.Dial(t, "dave").SendMessage("x-1", "erin", "elsewhere").Conversation

	carolTok := n.Token(t, "carol")
	status, strangerBody := n.Do(t, http.MethodGet, "/api/conversations/"+conv+"/messages", carolTok, nil)
	expectError(t, "history for a non-participant", status, strangerBody, http.StatusNotFound, "not_found")
	status, unknownBody := n.Do(t, http.MethodGet, "/api/conversations/"+unknown+"/messages", carolTok, nil)
	expectError(t, "history of an unknown conversation", status, unknownBody, http.StatusNotFound, "not_found")
	if string(strangerBody) != string(unknownBody) {
		t.Errorf("a non-participant's answer %s differs from an unknown conversation's %s", strangerBody, unknownBody)
	}

	carol := n.DialToken(t, "carol", carolTok)
	answers := map[string]string{}
	for _, id := range []string{conv, unknown} {
		for _, frame := range []map[string]any{
			{"type": "sync", "conversation": id, "after": 0},
			{"type": "read", "conversation": id, "upTo": 1},
		} {
			carol.Send(frame)
			e := carol.Next("error", nil)
			if e.Code != "not_found" {
				t.Errorf("%s by a non-participant: got %s, want code not_found", frame["type"], e)
			}
			carol.Ping()
			what := frame["type"].(string)
			if prev, ok := answers[what]; ok && prev != e.Raw {
				t.Errorf("%s: a non-participant got %s, an unknown conversation %s", what, prev, e.Raw)
			}
			answers[what] = e.Raw
		}
	}
	carol.None("messages", nil)
	alice.None("receipt", func(f Frame) bool { return f.User == "carol" })
	if c := conversations(t, n, carolTok); len(c) != 0 {
		t.Errorf("carol's conversations: %+v, want none", c)
	}
}

// TestSyncLimits: `sync` pages 100 messages by default and never more than
// 500; a limit beyond the maximum is either refused or capped.
func TestSyncLimits(t *testing.T) {
	t.Parallel()
	const total = 502
	n := StartNode(t, map[string]string{"CHAT_SEND_RATE": "10000", "CHAT_SEND_BURST": "10000"})
	alice := n.Dial(t, "alice")
	// Pipelined in windows, to keep the test short: a window well inside
	// the server's per-session queue (256), which holds the acks too.
	const window = 100
	var conv string
	for start := 1; start <= total; start += window {
		end := min(start+window-1, total)
		for i := start; i <= end; i++ {
			alice.Send(map[string]string{"type": "send", "id": fmt.Sprintf("l-%d", i), "to": "bob", "body": fmt.Sprintf("bulk %d", i)})
		}
		for i := start; i <= end; i++ {
			conv = alice.Next("ack", byID(fmt.Sprintf("l-%d", i))).Conversation
		}
	}
	bob := n.Dial(t, "bob")

	f := syncPage(bob, conv, 0, 0)
	if len(f.Messages) != 100 || !f.More || f.Messages[0].Seq != 1 || f.Messages[99].Seq != 100 {
		t.Errorf("sync with the default limit: %d messages (seqs %d..) more %v, want 1..100 and more", len(f.Messages), firstSeq(f.Messages), f.More)
	}
	f = syncPage(bob, conv, 1, 500)
	if len(f.Messages) != 500 || !f.More || f.Messages[499].Seq != 501 {
		t.Errorf("sync after 1 with limit 500: %d messages more %v, want 2..501 and more", len(f.Messages), f.More)
	}
	bob.Send(map[string]any{"type": "sync", "conversation": conv, "after": 0, "limit": 501})
	got, err := bob.Await(frameTimeout, "messages", nil)
	if err != nil {
		e, err2 := bob.Await(0, "error", nil)
		if err2 != nil {
			t.Fatalf("sync with limit 501: neither messages nor an error: %v", err)
		}
		if e.Code != "bad_request" {
			t.Errorf("sync with limit 501: got %s, want a page of at most 500 or code bad_request", e)
		}
	} else if len(got.Messages) > 500 || len(got.Messages) == 0 {
		t.Errorf("sync with limit 501: %d messages, want at most 500", len(got.Messages))
	}
}

func firstSeq(ms []Message) uint64 {
	if len(ms) == 0 {
		return 0
	}
	return ms[0].Seq
}

// TestHistoryBadParameters: malformed paging parameters, and integers above
// 2^53-1 (v1.2), are a 400 with the protocol's error body, not a page or a
// 500: an after of 2^64-1 once wrapped around to page from seq 1.
func TestHistoryBadParameters(t *testing.T) {
	t.Parallel()
	n := StartNode(t, nil)
	conv := n.Dial(t, "alice").SendMessage("h-1", "bob", "x").Conversation
	tok := n.Token(t, "alice")
	for _, q := range []string{"after=abc", "after=-1", "before=1.5", "limit=ten", "after=1e3",
		"after=18446744073709551615", "after=9007199254740992", "before=18446744073709551615", "limit=18446744073709551615"} {
		path := "/api/conversations/" + conv + "/messages?" + q
		status, body := n.Do(t, http.MethodGet, path, tok, nil)
		expectError(t, "GET "+path, status, body, http.StatusBadRequest, "bad_request")
	}
}
