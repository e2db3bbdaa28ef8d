package websocket

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/evchat/chatd/adapters/auth"
	"github.com/evchat/chatd/tests/eventually"
)

func TestUpgradeNeedsValidToken(t *testing.T) {
	h := newHarness(t, Config{})
	expired, err := auth.NewIssuer(auth.IssuerConfig{Secret: testSecret, Clock: fixedClock(time.Now().Add(-48 * time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	old, _, err := expired.Issue("1001")
	if err != nil {
		t.Fatal(err)
	}
	forger, err := auth.NewIssuer(auth.IssuerConfig{Secret: []byte("another-secret-of-at-least-32-bytes")})
	if err != nil {
		t.Fatal(err)
	}
	forged, _, err := forger.Issue("1001")
	if err != nil {
		t.Fatal(err)
	}
	for name, query := range map[string]string{"missing": "", "expired": "?token=" + old, "forged": "?token=" + forged} {
		t.Run(name, func(t *testing.T) {
			_, resp, err := websocket.DefaultDialer.Dial(h.wsURL()+query, nil)
			if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("dial = %v, %v; want HTTP 401", resp, err)
			}
			var body struct{ Code, Message string }
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Code != "unauthorized" {
				t.Fatalf("body = %+v, %v", body, err)
			}
		})
	}
	t.Run("bearer header", func(t *testing.T) {
		header := http.Header{"Authorization": {"Bearer " + h.token("1001")}}
		conn, _, err := websocket.DefaultDialer.Dial(h.wsURL(), header)
		if err != nil {
			t.Fatal(err)
		}
		conn.Close()
	})
}

func TestOrigins(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		origin  string
		ok      bool
	}{
		{"no origin", nil, "", true},
		{"same host", nil, "SAME", true},
		{"other host", nil, "https://evil.example", false},
		{"configured", []string{"https://chat.example.com/"}, "https://chat.example.com", true},
		{"not configured", []string{"https://chat.example.com"}, "https://evil.example", false},
		{"any", []string{"*"}, "https://evil.example", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{AllowedOrigins: tt.allowed})
			header := http.Header{}
			switch tt.origin {
			case "":
			case "SAME":
				header.Set("Origin", h.hs.URL)
			default:
				header.Set("Origin", tt.origin)
			}
			conn, resp, err := websocket.DefaultDialer.Dial(h.wsURL()+"?token="+h.token("alice"), header)
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				conn.Close()
				return
			}
			if err == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("dial = %v, %v; want 403", resp, err)
			}
		})
	}
}

func TestRefusedUpgradesLeaveNoTrace(t *testing.T) {
	h := newHarness(t, Config{})
	h.send("alice", "k1", "bob", "hello")
	bob := h.dial("bob")
	aliceOnline := func() bool {
		bob.sendRaw(`{"type":"presence","users":["alice"]}`)
		return bob.next(typePresence)["online"] == true
	}

	token := h.token("alice")
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	upgrade := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {key}}
	with := func(name, value string) http.Header {
		header := upgrade.Clone()
		if value == "" {
			header.Del(name)
		} else {
			header.Set(name, value)
		}
		return header
	}
	tests := []struct {
		name   string
		header http.Header
		status int
		code   string
	}{
		{"foreign origin", with("Origin", "https://evil.example"), http.StatusForbidden, "forbidden"},
		{"plain GET", http.Header{}, http.StatusBadRequest, "bad_request"},
		{"no Upgrade header", with("Upgrade", ""), http.StatusBadRequest, "bad_request"},
		{"another version", with("Sec-Websocket-Version", "8"), http.StatusBadRequest, "bad_request"},
		{"no key", with("Sec-Websocket-Key", ""), http.StatusBadRequest, "bad_request"},
		{"a key of the wrong size", with("Sec-Websocket-Key", "c2hvcnQ="), http.StatusBadRequest, "bad_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, h.hs.URL+"/ws?token="+token, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header = tt.header
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct{ Code, Message string }
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != tt.status || body.Code != tt.code {
				t.Fatalf("answer = %d %+v (%v); want %d %s", resp.StatusCode, body, err, tt.status, tt.code)
			}
		})
	}
	if n := h.app.Sessions.Count(); n != 1 {
		t.Fatalf("%d sessions registered, want bob's only", n)
	}
	if aliceOnline() {
		t.Fatal("a refused upgrade put alice online")
	}
	// The same request with nothing to refuse does move presence.
	h.dial("alice")
	eventually.True(t, "alice online", aliceOnline)
}

func TestSessionsPerUserAreCapped(t *testing.T) {
	h := newHarness(t, Config{MaxSessionsPerUser: 2})
	first := h.dial("alice")
	h.dial("alice")
	_, resp, err := websocket.DefaultDialer.Dial(h.wsURL()+"?token="+h.token("alice"), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third dial = %v, %v; want HTTP 429", resp, err)
	}
	var body struct{ Code, Message string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Code != "too_many_sessions" || body.Message == "" {
		t.Fatalf("body = %+v, %v", body, err)
	}
	h.dial("bob") // the cap is per user
	if n := h.app.Sessions.Count(); n != 3 {
		t.Fatalf("%d sessions registered, want 3", n)
	}
	first.conn.Close()
	eventually.True(t, "alice's first session to end", func() bool { return h.app.Sessions.Count() == 2 })
	h.dial("alice")
}
