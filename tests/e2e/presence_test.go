package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/evchat/chatd/tests/infra"
)

// Presence and typing (PROTOCOL.md v1.1) across two nodes on RocketMQ and
// the MongoDB-wire server. Heartbeats and the grace are short, so that a
// dead node and a closed session show within seconds; the cluster has a
// broker of its own, because its nodes' fixed group names would otherwise
// meet TestCluster's on one broker.
const (
	presenceHeartbeat = time.Second
	presenceGrace     = 2 * time.Second
)

func startPresenceCluster(t *testing.T, rmq *infra.RocketMQ) (n1, n2 *Node) {
	t.Helper()
	env := mongoEnv(t, SharedMongo(t).URI())
	env["CHAT_ROCKETMQ_NAMESRV"] = rmq.NamesrvAddr()
	env["CHAT_ROCKETMQ_TOPIC"] = fmt.Sprintf("e2e_presence_%d", topicSeq.next())
	env["CHAT_PRESENCE_HEARTBEAT"] = presenceHeartbeat.String()
	env["CHAT_PRESENCE_GRACE"] = presenceGrace.String()
	var nodes [2]*Node
	for i := range nodes {
		e := maps.Clone(env)
		e[offsetDirEnv] = t.TempDir()
		nodes[i] = StartNode(t, e)
	}
	return nodes[0], nodes[1]
}

// presenceOf matches `presence` frames of user in the given state.
func presenceOf(user string, online bool) func(Frame) bool {
	return func(f Frame) bool {
		var on bool
		return f.User == user && json.Unmarshal(f.Fields["online"], &on) == nil && on == online
	}
}

// converse makes a and b share a conversation, a on one node and b on the
// other, and returns its id once b has the message.
func converse(t *testing.T, a, b *Client, key string) string {
	t.Helper()
	ack := a.SendMessage(key, b.User, "hello "+b.User)
	b.Next("message", msgWithBody("hello "+b.User))
	return ack.Conversation
}

func TestPresenceCluster(t *testing.T) {
	t.Parallel()
	rmq := infra.StartRocketMQ(t)
	n1, n2 := startPresenceCluster(t, rmq)
	warmUp(t, n1, n2)

	t.Run("OnlineTypingOffline", func(t *testing.T) {
		alice, bob := n1.Dial(t, "alice"), n2.Dial(t, "bob")
		conv := converse(t, alice, bob, "p-1")

		bob.Close()
		closed := time.Now()
		f := alice.Next("presence", presenceOf("bob", false))
		if waited := time.Since(closed); waited < presenceGrace-200*time.Millisecond {
			t.Errorf("bob offline %v after closing, before the grace of %v", waited, presenceGrace)
		}
		var lastSeen string
		if json.Unmarshal(f.Fields["lastSeen"], &lastSeen) != nil {
			t.Errorf("offline presence %s has no lastSeen", f)
		}
		checkTime(t, "lastSeen", lastSeen)

		bob = n2.Dial(t, "bob")
		alice.Next("presence", presenceOf("bob", true))

		// A burst of typing: one frame reaches alice, the rest are dropped
		// without an error.
		for range 5 {
			bob.Send(map[string]any{"type": "typing", "conversation": conv})
		}
		typing := alice.Next("typing", func(f Frame) bool { return f.Conversation == conv && f.User == "bob" })
		if len(typing.Fields) != 3 {
			t.Errorf("typing frame %s, want exactly type, conversation and user", typing)
		}
		bob.Ping()
		bob.None("error", nil)
		alice.None("typing", nil)
		bob.None("typing", nil)

		alice.Send(map[string]any{"type": "presence", "users": []string{"bob", "nobody-at-all"}})
		alice.Next("presence", presenceOf("bob", true))
		nobody := alice.Next("presence", presenceOf("nobody-at-all", false))
		if _, ok := nobody.Fields["lastSeen"]; ok {
			t.Errorf("a user never seen has a lastSeen: %s", nobody)
		}

		status, body := n1.Do(t, http.MethodGet, "/api/presence?users=bob,alice", n1.Token(t, "alice"), nil)
		if status != http.StatusOK || strings.TrimSpace(string(body)) != `[{"user":"bob","online":true},{"user":"alice","online":true}]` {
			t.Errorf("GET /api/presence: %d %s", status, body)
		}
		// carol shares no conversation with them (v1.2): both are offline and
		// never seen to her, bob's earlier lastSeen included, exactly as a
		// user who does not exist.
		status, body = n1.Do(t, http.MethodGet, "/api/presence?users=bob,alice,nobody-at-all", n1.Token(t, "carol"), nil)
		if status != http.StatusOK || strings.TrimSpace(string(body)) !=
			`[{"user":"bob","online":false},{"user":"alice","online":false},{"user":"nobody-at-all","online":false}]` {
			t.Errorf("GET /api/presence by a stranger: %d %s", status, body)
		}
		status, body = n1.Do(t, http.MethodGet, "/api/presence?users=bob", "", nil)
		expectError(t, "GET /api/presence without a token", status, body, http.StatusUnauthorized, "unauthorized")
	})

	t.Run("Groups", func(t *testing.T) { testPresenceInGroups(t, n1, n2) })

	t.Run("NoFlapOnReconnect", func(t *testing.T) {
		carol, dave := n1.Dial(t, "carol"), n2.Dial(t, "dave")
		converse(t, carol, dave, "p-2")
		dave.Close()
		time.Sleep(presenceGrace / 4)
		dave = n1.Dial(t, "dave") // back, on the other node
		// A flap is dave going offline for carol. An "online" push may still
		// come: dave's first join signal can reach carol's node after the
		// first message has made them peers there, and it is then true news.
		if f, err := carol.Await(presenceGrace+time.Second, "presence", presenceOf("dave", false)); err == nil {
			t.Errorf("carol saw dave flap: %s", f)
		}
		dave.Close()
		carol.Next("presence", presenceOf("dave", false))
	})

	t.Run("Rules", func(t *testing.T) {
		alice, bob, eve := n1.Dial(t, "alice2"), n2.Dial(t, "bob2"), n1.Dial(t, "eve")
		conv := converse(t, alice, bob, "p-3")
		eve.Send(map[string]any{"type": "typing", "conversation": conv})
		if f := eve.Next("error", nil); f.Code != "not_found" {
			t.Errorf("a non-participant typing: %s, want not_found", f)
		}
		bob.None("typing", nil)

		many := make([]string, 201)
		for i := range many {
			many[i] = fmt.Sprintf("u%d", i)
		}
		for name, users := range map[string]any{"201 users": many, "a bad id": []string{"bob2", "not ok"},
			"no users": []string{}, "users not a list": "bob2"} {
			eve.SendInvalid(map[string]any{"type": "presence", "users": users})
			if f := eve.Next("error", nil); f.Code != "bad_request" {
				t.Errorf("presence with %s: %s, want bad_request", name, f)
			}
		}
		eve.None("presence", nil)
		status, body := n1.Do(t, http.MethodGet, "/api/presence?users="+strings.Join(many, ","), n1.Token(t, "eve"), nil)
		expectError(t, "GET /api/presence with 201 users", status, body, http.StatusBadRequest, "bad_request")
	})

	// Last: it kills node 2.
	t.Run("KillNode", func(t *testing.T) {
		erin, frank := n1.Dial(t, "erin"), n2.Dial(t, "frank")
		converse(t, erin, frank, "p-4")
		n2.Kill()
		killed := time.Now()
		if _, err := erin.Await(3*presenceHeartbeat+2*time.Second, "presence", presenceOf("frank", false)); err != nil {
			t.Fatal(err)
		}
		took := time.Since(killed)
		t.Logf("frank offline %v after kill -9 of his node", took.Round(time.Millisecond))
		// Three heartbeats of silence, plus the check's tick and the push.
		if took > 3*presenceHeartbeat+700*time.Millisecond {
			t.Errorf("frank offline %v after his node died, want within three heartbeats (%v)", took, 3*presenceHeartbeat)
		}
	})
}
