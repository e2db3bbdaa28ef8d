package httpapi

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/ports"
)

func (s *session) PushPresence(ports.PresenceView) bool { return true }
func (s *session) PushTyping(ports.TypingView) bool     { return true }

func TestPresence(t *testing.T) {
	h := newHarness(t, options{})
	signals, lastSeen := memory.NewSignals(), memory.NewLastSeen()
	p, err := application.NewPresence(h.app, application.PresenceConfig{Node: "n1"}, signals, lastSeen, nil)
	if err != nil {
		t.Fatal(err)
	}
	signals.Start()
	p.Start()
	t.Cleanup(func() { _ = p.Stop(context.Background()); _ = signals.Stop(context.Background()) })
	seen := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := lastSeen.Touch(context.Background(), []ports.LastSeen{{User: "carol", At: seen}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.app.Sessions.Register(&session{})) // bob is online

	var got []map[string]any
	if resp := h.do(http.MethodGet, "/api/presence?users=bob,carol,dave", "alice", "", &got); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	want := []map[string]any{
		{"user": "bob", "online": true},
		{"user": "carol", "online": false, "lastSeen": "2025-03-04T05:06:07.000Z"},
		{"user": "dave", "online": false},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if len(got[i]) != len(want[i]) {
			t.Errorf("entry %d: %v, want %v", i, got[i], want[i])
		}
		for k, v := range want[i] {
			if got[i][k] != v {
				t.Errorf("entry %d: %v, want %v", i, got[i], want[i])
			}
		}
	}

	many := strings.TrimSuffix(strings.Repeat("u,", 201), ",")
	for name, query := range map[string]string{"no users": "", "201 users": "?users=" + many, "a bad id": "?users=bob,b%20b"} {
		var e errorJSON
		if resp := h.do(http.MethodGet, "/api/presence"+query, "alice", "", &e); resp.StatusCode != http.StatusBadRequest || e.Code != application.CodeBadRequest {
			t.Errorf("%s: status %d, code %q; want 400 bad_request", name, resp.StatusCode, e.Code)
		}
	}
	if resp := h.do(http.MethodGet, "/api/presence?users=bob", "", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a token: status %d, want 401", resp.StatusCode)
	}
}
