package httpapi

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/evchat/chatd/adapters/wire"
	"github.com/evchat/chatd/ports"
	"github.com/evchat/chatd/tests/eventually"
)

func (s *session) PushPresence(ports.PresenceView) bool { return true }
func (s *session) PushTyping(ports.TypingView) bool     { return true }
func (s *session) PushMember(ports.MemberChange) bool   { return true }

func TestPresence(t *testing.T) {
	h := newHarness(t, options{})
	lastSeen := h.node.LastSeen
	seen := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := lastSeen.Touch(context.Background(), []ports.LastSeen{{User: "carol", At: seen}, {User: "eve", At: seen}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.app.Sessions.Register(&session{})) // bob is online
	h.send("alice", "k1", "bob", "hi")
	h.send("carol", "k2", "alice", "hi")
	eventually.True(t, "alice's conversations to be listed", func() bool {
		var list []map[string]any
		h.do(http.MethodGet, "/api/conversations", "alice", "", &list)
		return len(list) == 2
	})

	// alice sees her peers bob and carol; dave and eve, who share nothing
	// with her, are offline and never seen, like a user who does not exist.
	tests := []struct {
		asker, users string
		want         []map[string]any
	}{
		{"alice", "bob,carol,dave,eve", []map[string]any{
			{"user": "bob", "online": true},
			{"user": "carol", "online": false, "lastSeen": "2025-03-04T05:06:07.000Z"},
			{"user": "dave", "online": false},
			{"user": "eve", "online": false},
		}},
		{"eve", "eve,bob,carol", []map[string]any{
			{"user": "eve", "online": false, "lastSeen": "2025-03-04T05:06:07.000Z"},
			{"user": "bob", "online": false},
			{"user": "carol", "online": false},
		}},
	}
	for _, tt := range tests {
		var got []map[string]any
		if resp := h.do(http.MethodGet, "/api/presence?users="+tt.users, tt.asker, "", &got); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s asked for %s: %v, want %v", tt.asker, tt.users, got, tt.want)
		}
	}

	many := strings.TrimSuffix(strings.Repeat("u,", 201), ",")
	for name, query := range map[string]string{"no users": "", "201 users": "?users=" + many, "a bad id": "?users=bob,b%20b"} {
		var e wire.Error
		if resp := h.do(http.MethodGet, "/api/presence"+query, "alice", "", &e); resp.StatusCode != http.StatusBadRequest || e.Code != wire.CodeBadRequest {
			t.Errorf("%s: status %d, code %q; want 400 bad_request", name, resp.StatusCode, e.Code)
		}
	}
	if resp := h.do(http.MethodGet, "/api/presence?users=bob", "", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a token: status %d, want 401", resp.StatusCode)
	}
}
