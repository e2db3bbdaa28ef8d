package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// mintToken signs an HS256 token with claims, as an identity provider
// sharing CHAT_AUTH_SECRET would.
func mintToken(t testing.TB, secret string, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// badTokens are the tokens PROTOCOL.md says are refused with 401: missing,
// expired, forged (another secret), without the required exp, and garbage.
func badTokens(t testing.TB) map[string]string {
	hour := time.Hour
	return map[string]string{
		"missing":  "",
		"expired":  mintToken(t, testSecret, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(-hour).Unix()}),
		"forged":   mintToken(t, "another-secret-0123456789abcdef0123456789", jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(hour).Unix()}),
		"no exp":   mintToken(t, testSecret, jwt.MapClaims{"sub": "alice"}),
		"no sub":   mintToken(t, testSecret, jwt.MapClaims{"exp": time.Now().Add(hour).Unix()}),
		"bad sub":  mintToken(t, testSecret, jwt.MapClaims{"sub": "not a user id!", "exp": time.Now().Add(hour).Unix()}),
		"garbage":  "not.a.jwt",
		"alg none": unsignedToken(t),
	}
}

// unsignedToken is a token with alg "none", which a careless verifier accepts.
func unsignedToken(t testing.TB) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}).
		SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDevToken(t *testing.T) {
	t.Parallel()
	n := StartNode(t, nil)

	// The classic numeric ids and the longest valid id get tokens that work.
	for _, u := range []string{"1001", "Al.ice_-9", strings.Repeat("u", 64)} {
		c := n.Dial(t, u)
		c.Ping()
	}
	for name, body := range map[string]any{
		"65 chars":     map[string]string{"userId": strings.Repeat("u", 65)},
		"bad char":     map[string]string{"userId": "al ice"},
		"empty":        map[string]string{"userId": ""},
		"missing":      map[string]string{},
		"not JSON":     []byte("userId=alice"),
		"slash in id":  map[string]string{"userId": "a/b"},
		"unicode char": map[string]string{"userId": "alicé"},
	} {
		status, resp := n.Do(t, http.MethodPost, "/api/dev/token", "", body)
		expectError(t, "POST /api/dev/token "+name, status, resp, http.StatusBadRequest, "bad_request")
	}
}

func TestAuthFailures(t *testing.T) {
	t.Parallel()
	n := StartNode(t, nil)

	for name, tok := range badTokens(t) {
		// On /ws, in the query string and in the Authorization header: a
		// refused upgrade is an HTTP 401, never a WebSocket that closes.
		conn, resp, err := n.DialWS(tok, nil)
		if err == nil {
			conn.Close()
			t.Errorf("/ws?token= %s token: upgraded, want 401", name)
		} else if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("/ws?token= %s token: %v (response %v), want HTTP 401", name, err, statusOf(resp))
		}
		if tok != "" {
			conn, resp, err = n.DialWS("", http.Header{"Authorization": {"Bearer " + tok}})
			if err == nil {
				conn.Close()
				t.Errorf("/ws Authorization %s token: upgraded, want 401", name)
			} else if resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("/ws Authorization %s token: %v (response %v), want HTTP 401", name, err, statusOf(resp))
			}
		}

		for _, r := range []struct{ method, path string }{
			{http.MethodGet, "/api/conversations"},
			{http.MethodPost, "/api/messages"},
			{http.MethodGet, "/api/conversations/c_AAAAAAAAAAAAAAAAAAAAAA/messages"},
		} {
			var body any
			if r.method == http.MethodPost {
				body = map[string]string{"id": "x1", "to": "bob", "body": "hi"}
			}
			status, resp := n.Do(t, r.method, r.path, tok, body)
			expectError(t, r.method+" "+r.path+" with "+name+" token", status, resp, http.StatusUnauthorized, "unauthorized")
		}
	}

	// A token the test mints with the configured secret is as good as a dev
	// one, on both transports and in both places on /ws.
	tok := mintToken(t, testSecret, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()})
	n.DialToken(t, "alice", tok).Ping()
	conn, resp, err := n.DialWS("", http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		t.Fatalf("/ws with Authorization: Bearer: %v (response %v)", err, statusOf(resp))
	}
	newClient(t, "alice", conn).Ping()
	if status, body := n.Do(t, http.MethodGet, "/api/conversations", tok, nil); status != http.StatusOK {
		t.Errorf("GET /api/conversations with a valid token: %d %s", status, body)
	}
}

// TestJWTMode checks CHAT_AUTH_MODE=jwt: no dev tokens, and the operator's
// HS256 tokens accepted.
func TestJWTMode(t *testing.T) {
	t.Parallel()
	n := StartNode(t, map[string]string{"CHAT_AUTH_MODE": "jwt"})

	status, body := n.Do(t, http.MethodPost, "/api/dev/token", "", map[string]string{"userId": "alice"})
	if status != http.StatusNotFound {
		t.Errorf("POST /api/dev/token in jwt mode: %d %s, want 404", status, body)
	}
	alice := n.DialToken(t, "alice", mintToken(t, testSecret, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}))
	bobTok := mintToken(t, testSecret, jwt.MapClaims{"sub": "bob", "exp": time.Now().Add(time.Hour).Unix()})
	bob := n.DialToken(t, "bob", bobTok)
	ack := alice.SendMessage("j1", "bob", "in jwt mode")
	m, _ := bob.Next("message", msgWithBody("in jwt mode")).Msg()
	checkMessage(t, m, ack, "alice", "bob", "in jwt mode")
	if status, body := n.Do(t, http.MethodGet, "/api/conversations", bobTok, nil); status != http.StatusOK {
		t.Errorf("GET /api/conversations in jwt mode: %d %s", status, body)
	}
	expired := mintToken(t, testSecret, jwt.MapClaims{"sub": "bob", "exp": time.Now().Add(-time.Hour).Unix()})
	if _, resp, err := n.DialWS(expired, nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/ws with an expired token in jwt mode: %v (response %v), want 401", err, statusOf(resp))
	}
}

// TestSecretPerProcess checks that without CHAT_AUTH_SECRET each process
// signs with its own random secret: one node's tokens are refused by another.
func TestSecretPerProcess(t *testing.T) {
	t.Parallel()
	a := StartNode(t, map[string]string{"CHAT_AUTH_SECRET": ""})
	b := StartNode(t, map[string]string{"CHAT_AUTH_SECRET": ""})
	tok := a.Token(t, "alice")
	a.DialToken(t, "alice", tok).Ping()
	if _, resp, err := b.DialWS(tok, nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("node B accepted node A's token: %v (response %v), want 401", err, statusOf(resp))
	}
}

func statusOf(resp *http.Response) any {
	if resp == nil {
		return "none"
	}
	return resp.Status
}
