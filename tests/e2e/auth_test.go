package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/evchat/chatd/tests/eventually"
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

// writePublicKey writes the PEM of pub into the test's directory and
// returns the file's path, for CHAT_AUTH_PUBLIC_KEY_FILE.
func writePublicKey(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.pub")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// signWith signs claims with key by method, with a kid header unless kid
// is empty.
func signWith(t testing.TB, method jwt.SigningMethod, kid string, key any, claims jwt.MapClaims) string {
	t.Helper()
	token := jwt.NewWithClaims(method, claims)
	if kid != "" {
		token.Header["kid"] = kid
	}
	s, err := token.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func aliceFor(d time.Duration) jwt.MapClaims {
	return jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(d).Unix()}
}

// expectAccepted checks that token opens a session and reads the REST API.
func expectAccepted(t *testing.T, n *Node, what, token string) {
	t.Helper()
	if status, body := n.Do(t, http.MethodGet, "/api/conversations", token, nil); status != http.StatusOK {
		t.Errorf("%s: GET /api/conversations: %d %s, want 200", what, status, body)
		return
	}
	n.DialToken(t, "alice", token).Close()
}

// expectRefused checks that token is refused with 401 on both transports.
func expectRefused(t *testing.T, n *Node, what, token string) {
	t.Helper()
	status, body := n.Do(t, http.MethodGet, "/api/conversations", token, nil)
	expectError(t, what+": GET /api/conversations", status, body, http.StatusUnauthorized, "unauthorized")
	if conn, resp, err := n.DialWS(token, nil); err == nil {
		conn.Close()
		t.Errorf("%s: /ws upgraded, want 401", what)
	} else if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("%s: /ws: %v (response %v), want 401", what, err, statusOf(resp))
	}
}

// TestJWTModeWithAPublicKeyAlone checks that a node given only
// CHAT_AUTH_PUBLIC_KEY_FILE starts, accepts tokens signed by that key and
// refuses HS256 tokens and other keys' tokens.
func TestJWTModeWithAPublicKeyAlone(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, otherEd, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		method jwt.SigningMethod
		key    any
		pub    any
	}{
		{"RS256", jwt.SigningMethodRS256, rsaKey, &rsaKey.PublicKey},
		{"ES256", jwt.SigningMethodES256, ecKey, &ecKey.PublicKey},
		{"EdDSA", jwt.SigningMethodEdDSA, edKey, edPub},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := StartNode(t, map[string]string{
				"CHAT_AUTH_MODE": "jwt", "CHAT_AUTH_SECRET": "", "CHAT_AUTH_PUBLIC_KEY_FILE": writePublicKey(t, tt.pub),
			})
			expectAccepted(t, n, "a token of the key", signWith(t, tt.method, "", tt.key, aliceFor(time.Hour)))
			expectRefused(t, n, "an HS256 token", mintToken(t, testSecret, aliceFor(time.Hour)))
			expectRefused(t, n, "another key's token", signWith(t, jwt.SigningMethodEdDSA, "", otherEd, aliceFor(time.Hour)))
			expectRefused(t, n, "an expired token", signWith(t, tt.method, "", tt.key, aliceFor(-time.Hour)))
		})
	}
}

// jwksEndpoint is an identity provider's JWKS endpoint on 127.0.0.1 whose
// key set a test can replace.
type jwksEndpoint struct {
	*httptest.Server
	set atomic.Value // []byte
}

func newJWKSEndpoint(t *testing.T, keys map[string]any) *jwksEndpoint {
	t.Helper()
	e := &jwksEndpoint{}
	e.publish(t, keys)
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(e.set.Load().([]byte))
	}))
	t.Cleanup(e.Close)
	return e
}

// publish replaces the key set with the public halves of keys, by kid.
func (e *jwksEndpoint) publish(t *testing.T, keys map[string]any) {
	t.Helper()
	ctx := context.Background()
	store := jwkset.NewMemoryStorage()
	for kid, key := range keys {
		jwk, err := jwkset.NewJWKFromKey(key, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid}})
		if err != nil {
			t.Fatal(err)
		}
		if err := store.KeyWrite(ctx, jwk); err != nil {
			t.Fatal(err)
		}
	}
	set, err := store.JSONPublic(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.set.Store([]byte(set))
}

// TestJWTModeWithAJWKS checks CHAT_AUTH_JWKS_URL alone: tokens are verified
// by the key of their kid, others are refused, and a rotated key set is
// picked up by the background refresh.
func TestJWTModeWithAJWKS(t *testing.T) {
	t.Parallel()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	idp := newJWKSEndpoint(t, map[string]any{"ec-1": &ecKey.PublicKey, "ed-1": edPub})
	n := StartNode(t, map[string]string{
		"CHAT_AUTH_MODE": "jwt", "CHAT_AUTH_SECRET": "", "CHAT_AUTH_JWKS_URL": idp.URL + "/jwks.json",
		"CHAT_AUTH_JWKS_REFRESH": "200ms",
	})

	expectAccepted(t, n, "ES256 by kid", signWith(t, jwt.SigningMethodES256, "ec-1", ecKey, aliceFor(time.Hour)))
	expectAccepted(t, n, "EdDSA by kid", signWith(t, jwt.SigningMethodEdDSA, "ed-1", edKey, aliceFor(time.Hour)))
	expectRefused(t, n, "a kid signed by another key", signWith(t, jwt.SigningMethodES256, "ec-1", rotated, aliceFor(time.Hour)))
	expectRefused(t, n, "no kid", signWith(t, jwt.SigningMethodES256, "", ecKey, aliceFor(time.Hour)))
	expectRefused(t, n, "an unknown kid", signWith(t, jwt.SigningMethodES256, "ec-2", rotated, aliceFor(time.Hour)))
	expectRefused(t, n, "an HS256 token", signWith(t, jwt.SigningMethodHS256, "ec-1", []byte(testSecret), aliceFor(time.Hour)))

	idp.publish(t, map[string]any{"ec-2": &rotated.PublicKey})
	newToken := signWith(t, jwt.SigningMethodES256, "ec-2", rotated, aliceFor(time.Hour))
	var status int
	var body []byte
	if err := eventually.Poll(10*time.Second, func() (bool, error) {
		status, body = n.Do(t, http.MethodGet, "/api/conversations", newToken, nil)
		return status == http.StatusOK, nil
	}); err != nil {
		t.Fatalf("the rotated key was not accepted: %v: %d %s", err, status, body)
	}
	expectRefused(t, n, "the key the rotation removed", signWith(t, jwt.SigningMethodES256, "ec-1", ecKey, aliceFor(time.Hour)))
}

// TestJWKSUnreachableAtStart checks the choice made for an identity
// provider that does not answer when a node starts: the node starts, warns
// naming the URL, and refuses the tokens it cannot verify.
func TestJWKSUnreachableAtStart(t *testing.T) {
	t.Parallel()
	url := "http://" + freeAddr(t) + "/jwks.json" // nothing listens there
	n := StartNode(t, map[string]string{"CHAT_AUTH_MODE": "jwt", "CHAT_AUTH_SECRET": "", "CHAT_AUTH_JWKS_URL": url})
	if logs := n.Logs(); !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, url) {
		t.Errorf("no warning naming %s in the node's output:\n%s", url, logs)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	expectRefused(t, n, "a token of a key never fetched", signWith(t, jwt.SigningMethodES256, "k", key, aliceFor(time.Hour)))
}

// TestIssuerAndAudience checks CHAT_AUTH_ISSUER and CHAT_AUTH_AUDIENCE: in
// jwt mode iss and aud must match; in dev mode the node's own tokens carry
// them and still verify.
func TestIssuerAndAudience(t *testing.T) {
	t.Parallel()
	issAud := map[string]string{"CHAT_AUTH_ISSUER": "https://id.example", "CHAT_AUTH_AUDIENCE": "chatd"}
	jwtEnv := map[string]string{"CHAT_AUTH_MODE": "jwt"}
	maps.Copy(jwtEnv, issAud)
	n := StartNode(t, jwtEnv)
	claims := func(iss string, aud any) jwt.MapClaims {
		c := aliceFor(time.Hour)
		if iss != "" {
			c["iss"] = iss
		}
		if aud != nil {
			c["aud"] = aud
		}
		return c
	}
	expectAccepted(t, n, "matching iss and aud", mintToken(t, testSecret, claims("https://id.example", "chatd")))
	expectAccepted(t, n, "aud among several", mintToken(t, testSecret, claims("https://id.example", []string{"mail", "chatd"})))
	expectRefused(t, n, "another iss", mintToken(t, testSecret, claims("https://evil.example", "chatd")))
	expectRefused(t, n, "another aud", mintToken(t, testSecret, claims("https://id.example", "mail")))
	expectRefused(t, n, "no iss", mintToken(t, testSecret, claims("", "chatd")))
	expectRefused(t, n, "no aud", mintToken(t, testSecret, claims("https://id.example", nil)))

	dev := StartNode(t, issAud)
	dev.Dial(t, "alice").Ping()
	expectRefused(t, dev, "a token without iss and aud", mintToken(t, testSecret, aliceFor(time.Hour)))
}
