package e2e

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/evchat/chatd/tests/eventually"
)

// TestSessionsLiveNoLongerThanTheirTokens checks PROTOCOL.md's "Sessions and
// tokens" (v1.2) on a real process: a session closes with 4001 at its
// token's exp unless an `auth` frame handed it a fresh token first, and
// CHAT_MAX_SESSIONS_PER_USER caps a user's sessions on the node.
func TestSessionsLiveNoLongerThanTheirTokens(t *testing.T) {
	t.Parallel()
	n := StartNode(t, map[string]string{"CHAT_MAX_SESSIONS_PER_USER": "2"})
	exp := time.Unix(time.Now().Add(2*time.Second).Unix(), 0)
	short := mintToken(t, testSecret, jwt.MapClaims{"sub": "alice", "exp": exp.Unix()})
	expiring, refreshed := n.DialToken(t, "alice", short), n.DialToken(t, "alice", short)

	refreshed.Send(map[string]string{"type": "auth", "id": "a1", "token": n.Token(t, "alice")})
	var expiresAt string
	if err := json.Unmarshal(refreshed.Next("authed", byID("a1")).Fields["expiresAt"], &expiresAt); err != nil {
		t.Fatalf("authed without expiresAt: %v", err)
	}
	checkTime(t, "expiresAt", expiresAt)

	conn, resp, err := n.DialWS(n.Token(t, "alice"), nil)
	if err == nil {
		conn.Close()
		t.Fatal("a third session of alice's was upgraded; CHAT_MAX_SESSIONS_PER_USER is 2")
	}
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third session: %v (response %v), want HTTP 429", err, statusOf(resp))
	}

	if code := expiring.WaitClose(time.Until(exp) + 5*time.Second); code != 4001 {
		t.Fatalf("close code %d at the token's exp, want 4001", code)
	}
	if closedAt := time.Now(); closedAt.Before(exp) {
		t.Fatalf("closed at %v, before the token's exp %v", closedAt, exp)
	}
	expiring.mu.Lock()
	closeErr := expiring.closeErr
	expiring.mu.Unlock()
	var ce *websocket.CloseError
	if errors.As(closeErr, &ce) && ce.Text != "token expired" {
		t.Fatalf("close reason %q, want \"token expired\"", ce.Text)
	}

	refreshed.Ping() // it outlives the first token

	// The closed session's place is free again once the server has torn it down.
	polled := eventually.Poll(5*time.Second, func() (bool, error) {
		conn, resp, err = n.DialWS(n.Token(t, "alice"), nil)
		if err != nil && (resp == nil || resp.StatusCode != http.StatusTooManyRequests) {
			return false, err
		}
		return err == nil, nil
	})
	if polled != nil {
		t.Fatalf("dial after the expiry: %v (response %v)", err, statusOf(resp))
	}
	newClient(t, "alice", conn).Ping()
}
