package auth

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/evchat/chatd/tests/eventually"
)

// jwksServer is an identity provider's JWKS endpoint whose key set a test
// can replace, and which counts the fetches.
type jwksServer struct {
	*httptest.Server
	set     atomic.Value // []byte
	down    atomic.Bool
	fetches atomic.Int64
}

func newJWKSServer(t *testing.T, set []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.set.Store(set)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.fetches.Add(1)
		if s.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.set.Load().([]byte))
	}))
	t.Cleanup(s.Close)
	return s
}

// keySet is the JWKS JSON of the public halves of keys, by kid.
func keySet(t *testing.T, keys map[string]any) []byte {
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
	return set
}

func signKID(t *testing.T, m jwt.SigningMethod, kid string, key any) string {
	t.Helper()
	token := jwt.NewWithClaims(m, claims("1001", now.Add(time.Hour)))
	if kid != "" {
		token.Header["kid"] = kid
	}
	s, err := token.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newJWKSVerifier(t *testing.T, cfg VerifierConfig) *Verifier {
	t.Helper()
	cfg.Clock = fixedClock{now}
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Stop(context.Background()) })
	return v
}

func TestVerifierJWKS(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey := mustEC(t, elliptic.P256())
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other := mustEC(t, elliptic.P256())
	set := keySet(t, map[string]any{"rsa-1": &rsaKey.PublicKey, "ec-1": &ecKey.PublicKey, "ed-1": edPub})
	// A symmetric key has no business in a public key set; were it taken,
	// anyone who read the set could sign HS256 tokens with it.
	symmetric := []byte("a symmetric key in a public set!")
	set = bytes.Replace(set, []byte(`"keys":[`), []byte(fmt.Sprintf(`"keys":[{"kty":"oct","kid":"sym-1","k":%q},`,
		base64.RawURLEncoding.EncodeToString(symmetric))), 1)
	idp := newJWKSServer(t, set)
	jwksOnly := VerifierConfig{JWKSURL: idp.URL}
	withSecret := VerifierConfig{JWKSURL: idp.URL, Secret: secret}

	tests := []struct {
		name  string
		cfg   VerifierConfig
		token string
		ok    bool
	}{
		{"rs256 by kid", jwksOnly, signKID(t, jwt.SigningMethodRS256, "rsa-1", rsaKey), true},
		{"es256 by kid", jwksOnly, signKID(t, jwt.SigningMethodES256, "ec-1", ecKey), true},
		{"eddsa by kid", jwksOnly, signKID(t, jwt.SigningMethodEdDSA, "ed-1", edKey), true},
		{"unknown kid", jwksOnly, signKID(t, jwt.SigningMethodES256, "ec-2", other), false},
		{"known kid, another key", jwksOnly, signKID(t, jwt.SigningMethodES256, "ec-1", other), false},
		{"no kid", jwksOnly, signKID(t, jwt.SigningMethodES256, "", ecKey), false},
		{"kid of an rsa key, es256 token", jwksOnly, signKID(t, jwt.SigningMethodES256, "rsa-1", ecKey), false},
		{"hs256 signed with the set's symmetric key", jwksOnly, signKID(t, jwt.SigningMethodHS256, "sym-1", symmetric), false},
		{"hs256 signed with an rsa key's set entry", jwksOnly, signKID(t, jwt.SigningMethodHS256, "rsa-1", set), false},
		{"rs512 by the kid of an rsa key", jwksOnly, signKID(t, jwt.SigningMethodRS512, "rsa-1", rsaKey), false},
		{"alg none", jwksOnly, signKID(t, jwt.SigningMethodNone, "rsa-1", jwt.UnsafeAllowNoneSignatureType), false},
		{"secret beside the set, no kid", withSecret, signKID(t, jwt.SigningMethodHS256, "", secret), true},
		{"secret beside the set, a kid the set lacks", withSecret, signKID(t, jwt.SigningMethodHS256, "hs-1", secret), true},
		{"set beside a secret", withSecret, signKID(t, jwt.SigningMethodEdDSA, "ed-1", edKey), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newJWKSVerifier(t, tt.cfg)
			got, err := v.Verify(tt.token)
			if tt.ok != (err == nil) {
				t.Fatalf("Verify = %+v, %v; want accepted: %v", got, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("Verify err = %v, want ErrUnauthorized", err)
			}
		})
	}
}

func TestJWKSRotationIsPickedUpByAnUnknownKID(t *testing.T) {
	oldKey, newKey := mustEC(t, elliptic.P256()), mustEC(t, elliptic.P256())
	idp := newJWKSServer(t, keySet(t, map[string]any{"old": &oldKey.PublicKey}))
	v := newJWKSVerifier(t, VerifierConfig{JWKSURL: idp.URL})
	oldToken, newToken := signKID(t, jwt.SigningMethodES256, "old", oldKey), signKID(t, jwt.SigningMethodES256, "new", newKey)
	if _, err := v.Verify(oldToken); err != nil {
		t.Fatalf("the old key before the rotation: %v", err)
	}

	idp.set.Store(keySet(t, map[string]any{"new": &newKey.PublicKey}))
	if _, err := v.Verify(newToken); err != nil {
		t.Fatalf("the new key's first token did not fetch the rotated set: %v", err)
	}
	if _, err := v.Verify(oldToken); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("the key the rotation removed still verifies: %v", err)
	}
}

func TestJWKSRotationIsPickedUpByTheBackgroundRefresh(t *testing.T) {
	oldKey, newKey := mustEC(t, elliptic.P256()), mustEC(t, elliptic.P256())
	idp := newJWKSServer(t, keySet(t, map[string]any{"old": &oldKey.PublicKey}))
	v := newJWKSVerifier(t, VerifierConfig{JWKSURL: idp.URL, JWKSRefresh: 20 * time.Millisecond})
	// Spends the one fetch an unknown kid may trigger this minute, so that
	// only the background refresh can bring the new key.
	if _, err := v.Verify(signKID(t, jwt.SigningMethodES256, "nobody", newKey)); err == nil {
		t.Fatal("an unknown kid verified")
	}
	idp.set.Store(keySet(t, map[string]any{"new": &newKey.PublicKey}))
	newToken := signKID(t, jwt.SigningMethodES256, "new", newKey)
	eventually.True(t, "the background refresh to pick the rotated key up", func() bool {
		_, err := v.Verify(newToken)
		return err == nil
	})
}

func TestJWKSUnreachableAtStart(t *testing.T) {
	key := mustEC(t, elliptic.P256())
	idp := newJWKSServer(t, keySet(t, map[string]any{"k": &key.PublicKey}))
	idp.down.Store(true)
	var logs syncBuffer
	v := newJWKSVerifier(t, VerifierConfig{JWKSURL: idp.URL, JWKSRefresh: 20 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), idp.URL) {
		t.Fatalf("no warning naming %s: %q", idp.URL, logs.String())
	}
	token := signKID(t, jwt.SigningMethodES256, "k", key)
	if _, err := v.Verify(token); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("a token verified with no keys fetched: %v", err)
	}

	idp.down.Store(false)
	eventually.True(t, "the keys to arrive once the endpoint answers", func() bool {
		_, err := v.Verify(token)
		return err == nil
	})
}

func TestCloseStopsTheJWKSRefresh(t *testing.T) {
	idp := newJWKSServer(t, keySet(t, map[string]any{"k": &mustEC(t, elliptic.P256()).PublicKey}))
	v := newJWKSVerifier(t, VerifierConfig{JWKSURL: idp.URL, JWKSRefresh: 5 * time.Millisecond})
	_ = v.Stop(context.Background())
	after := idp.fetches.Load()
	time.Sleep(100 * time.Millisecond)
	if n := idp.fetches.Load(); n > after+1 {
		t.Fatalf("%d fetches after Close", n-after)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
