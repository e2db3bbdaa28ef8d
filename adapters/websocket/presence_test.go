package websocket

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/presence"
	"github.com/evchat/chatd/tests/eventually"
)

func TestDecodePresenceAndTypingFrames(t *testing.T) {
	tests := []decodeCase{
		{"typing", `{"type":"typing","conversation":"` + testConv + `"}`, clientFrame{Type: "typing", Conversation: testConv}, ""},
		{"typing without a conversation", `{"type":"typing"}`, clientFrame{}, "missing field conversation"},
		{"typing in a malformed conversation", `{"type":"typing","conversation":"x"}`, clientFrame{}, "conversation id"},
		{"presence", `{"type":"presence","users":["a","b"]}`, clientFrame{Type: "presence", Users: presence.Users{"a", "b"}}, ""},
		{"presence without users", `{"type":"presence"}`, clientFrame{}, "missing field users"},
		{"presence with users not a list", `{"type":"presence","users":"a,b"}`, clientFrame{}, "users has the wrong type"},
		{"presence with a number for a user", `{"type":"presence","users":[1001]}`, clientFrame{}, "wrong type"},
		{"presence with no user", `{"type":"presence","users":[]}`, clientFrame{}, "1-200 user ids"},
		{"presence with 201 users", `{"type":"presence","users":[` + strings.Repeat(`"u",`, 200) + `"u"]}`, clientFrame{}, "1-200 user ids"},
		{"presence with a bad id", `{"type":"presence","users":["bob","b b"]}`, clientFrame{}, "user id"},
		{"presence asking twice for one user", `{"type":"presence","users":["a","a"]}`, clientFrame{Type: "presence", Users: presence.Users{"a"}}, ""},
	}
	checkDecoding(t, tests)
}

// TestPresenceFrameAnswersPeersOnly: a `presence` ask is answered truly for
// the asker and their conversation peers only; a stranger's presence is
// offline and never seen, like that of a user who does not exist (v1.2).
func TestPresenceFrameAnswersPeersOnly(t *testing.T) {
	h := newHarness(t, Config{})
	ctx := context.Background()
	if _, err := h.app.Send.Handle(ctx, application.SendMessageCommand{Sender: "alice", ClientID: "k", To: "bob", Body: "hi"}); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, "the conversation to be projected", func() bool {
		list, err := h.app.Conversations.Handle(ctx, "alice")
		return err == nil && len(list) == 1
	})
	alice, bob, dave := h.dial("alice"), h.dial("bob"), h.dial("dave")

	ask := func(c *client, users ...string) map[string]frame {
		c.t.Helper()
		data, _ := json.Marshal(map[string]any{"type": "presence", "users": users})
		c.sendRaw(string(data))
		got := map[string]frame{}
		for len(got) < len(users) {
			f := c.next(typePresence)
			got[f["user"].(string)] = f
		}
		return got
	}
	wantPresence := func(who string, got map[string]frame, u string, online bool) {
		t.Helper()
		f := got[u]
		if f["online"] != online || len(f) != 3 {
			t.Errorf("%s asked about %s: %v, want online %v and no lastSeen", who, u, f, online)
		}
	}
	for u, c := range map[string]*client{"alice": alice, "bob": bob, "dave": dave} {
		eventually.True(t, u+"'s session to count", func() bool { return ask(c, u)[u]["online"] == true })
	}
	got := ask(alice, "bob", "dave", "alice")
	wantPresence("alice", got, "bob", true)
	wantPresence("alice", got, "dave", false)
	wantPresence("alice", got, "alice", true)
	got = ask(dave, "alice", "bob", "dave")
	wantPresence("dave", got, "alice", false)
	wantPresence("dave", got, "bob", false)
	wantPresence("dave", got, "dave", true)
}
