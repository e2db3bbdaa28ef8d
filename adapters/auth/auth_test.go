package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/evchat/chatd/domain/user"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

var (
	now    = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	secret = []byte("0123456789abcdef0123456789abcdef")
	other  = []byte("fedcba9876543210fedcba9876543210")
)

func claims(sub string, exp time.Time) jwt.RegisteredClaims {
	return jwt.RegisteredClaims{Subject: sub, ExpiresAt: jwt.NewNumericDate(exp)}
}

func sign(t *testing.T, m jwt.SigningMethod, c jwt.Claims, key any) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pemOf(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestVerifier(t *testing.T) {
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
	rsaPEM, ecPEM, edPEM := pemOf(t, &rsaKey.PublicKey), pemOf(t, &ecKey.PublicKey), pemOf(t, edPub)
	clock := fixedClock{now}
	hsOnly := VerifierConfig{Secret: secret, Clock: clock}
	rsOnly := VerifierConfig{PublicKeyPEM: rsaPEM, Clock: clock}
	esOnly := VerifierConfig{PublicKeyPEM: ecPEM, Clock: clock}
	edOnly := VerifierConfig{PublicKeyPEM: edPEM, Clock: clock}
	// An unset secret read from the environment is an empty, non-nil slice.
	rsEmptySecret := VerifierConfig{Secret: []byte(""), PublicKeyPEM: rsaPEM, Clock: clock}
	issAud := VerifierConfig{Secret: secret, Clock: clock, Issuer: "https://id.example", Audience: "chatd"}
	valid := claims("1001", now.Add(time.Hour))
	withIssAud := func(iss string, aud ...string) jwt.RegisteredClaims {
		c := valid
		c.Issuer, c.Audience = iss, aud
		return c
	}
	unsigned, err := jwt.NewWithClaims(jwt.SigningMethodNone, valid).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	good := sign(t, jwt.SigningMethodHS256, valid, secret)
	dot := strings.LastIndexByte(good, '.')
	tamperedSig := good[:dot+1] + strings.Repeat("A", len(good)-dot-1)

	tests := []struct {
		name   string
		cfg    VerifierConfig
		token  string
		want   user.ID
		reason string // in the error, when the token is refused
	}{
		{"hs256 valid", hsOnly, good, "1001", ""},
		{"rs256 valid", rsOnly, sign(t, jwt.SigningMethodRS256, valid, rsaKey), "1001", ""},
		{"es256 valid", esOnly, sign(t, jwt.SigningMethodES256, valid, ecKey), "1001", ""},
		{"eddsa valid", edOnly, sign(t, jwt.SigningMethodEdDSA, valid, edKey), "1001", ""},
		{"public key beside an empty secret", rsEmptySecret, sign(t, jwt.SigningMethodRS256, valid, rsaKey), "1001", ""},
		{"hs256 refused beside an empty secret", rsEmptySecret, sign(t, jwt.SigningMethodHS256, valid, []byte{}), "", "invalid token"},
		{"iss and aud match", issAud, sign(t, jwt.SigningMethodHS256, withIssAud("https://id.example", "other", "chatd"), secret), "1001", ""},
		{"iss mismatch", issAud, sign(t, jwt.SigningMethodHS256, withIssAud("https://evil.example", "chatd"), secret), "", "iss is not"},
		{"aud mismatch", issAud, sign(t, jwt.SigningMethodHS256, withIssAud("https://id.example", "other"), secret), "", "aud does not include"},
		{"iss missing", issAud, sign(t, jwt.SigningMethodHS256, withIssAud("", "chatd"), secret), "", "no iss"},
		{"aud missing", issAud, sign(t, jwt.SigningMethodHS256, withIssAud("https://id.example"), secret), "", "no aud"},
		{"iss and aud not required when unset", hsOnly, sign(t, jwt.SigningMethodHS256, withIssAud("https://any.example", "any"), secret), "1001", ""},
		{"dotted user id", hsOnly, sign(t, jwt.SigningMethodHS256, claims("a.b-c_D", now.Add(time.Hour)), secret), "a.b-c_D", ""},
		{"within leeway", VerifierConfig{Secret: secret, Clock: clock, Leeway: time.Minute},
			sign(t, jwt.SigningMethodHS256, claims("1001", now.Add(-30*time.Second)), secret), "1001", ""},
		{"empty", hsOnly, "", "", "missing token"},
		{"garbage", hsOnly, "not.a.jwt", "", "invalid token"},
		{"expired", hsOnly, sign(t, jwt.SigningMethodHS256, claims("1001", now.Add(-time.Second)), secret), "", "token expired"},
		{"forged with another secret", hsOnly, sign(t, jwt.SigningMethodHS256, valid, other), "", "invalid token"},
		{"tampered signature", hsOnly, tamperedSig, "", "invalid token"},
		{"alg none", hsOnly, unsigned, "", "invalid token"},
		{"alg none against a public key", rsOnly, unsigned, "", "invalid token"},
		{"hs256 signed with the rsa public key", rsOnly, sign(t, jwt.SigningMethodHS256, valid, rsaPEM), "", "invalid token"},
		{"hs256 signed with the ec public key", esOnly, sign(t, jwt.SigningMethodHS256, valid, ecPEM), "", "invalid token"},
		{"hs256 signed with the ed25519 public key", edOnly, sign(t, jwt.SigningMethodHS256, valid, edPEM), "", "invalid token"},
		{"es256 to an eddsa verifier", edOnly, sign(t, jwt.SigningMethodES256, valid, ecKey), "", "invalid token"},
		{"rs256 to an hs256 verifier", hsOnly, sign(t, jwt.SigningMethodRS256, valid, rsaKey), "", "invalid token"},
		{"es384 to an es256 verifier", esOnly, sign(t, jwt.SigningMethodES384, valid, mustEC(t, elliptic.P384())), "", "invalid token"},
		{"hs512 with the right secret", hsOnly, sign(t, jwt.SigningMethodHS512, valid, secret), "", "invalid token"},
		{"missing exp", hsOnly, sign(t, jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: "1001"}, secret), "", "no exp"},
		{"missing sub", hsOnly, sign(t, jwt.SigningMethodHS256, claims("", now.Add(time.Hour)), secret), "", "sub is not"},
		{"sub with a space", hsOnly, sign(t, jwt.SigningMethodHS256, claims("10 01", now.Add(time.Hour)), secret), "", "sub is not"},
		{"sub too long", hsOnly, sign(t, jwt.SigningMethodHS256, claims(strings.Repeat("a", 65), now.Add(time.Hour)), secret), "", "sub is not"},
		{"not yet valid", hsOnly, sign(t, jwt.SigningMethodHS256, jwt.RegisteredClaims{Subject: "1001",
			ExpiresAt: jwt.NewNumericDate(now.Add(2 * time.Hour)), NotBefore: jwt.NewNumericDate(now.Add(time.Hour))}, secret), "", "invalid token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.Verify(tt.token)
			if tt.reason == "" {
				if err != nil || got.User != tt.want {
					t.Fatalf("Verify = %+v, %v; want %q", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("Verify = %+v, %v; want ErrUnauthorized with %q", got, err, tt.reason)
			}
		})
	}
}

func mustEC(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestNewVerifierRejectsWeakKeys(t *testing.T) {
	smallRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  VerifierConfig
	}{
		{"nothing", VerifierConfig{}},
		{"empty secret and key", VerifierConfig{Secret: []byte(""), PublicKeyPEM: []byte("")}},
		{"jwks url not http", VerifierConfig{JWKSURL: "file:///etc/jwks.json"}},
		{"jwks url without host", VerifierConfig{JWKSURL: "https:///jwks"}},
		{"short secret", VerifierConfig{Secret: []byte("short")}},
		{"not pem", VerifierConfig{PublicKeyPEM: []byte("hello")}},
		{"small rsa", VerifierConfig{PublicKeyPEM: pemOf(t, &smallRSA.PublicKey)}},
		{"p384", VerifierConfig{PublicKeyPEM: pemOf(t, &mustEC(t, elliptic.P384()).PublicKey)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewVerifier(tt.cfg); err == nil {
				t.Fatal("NewVerifier accepted it")
			}
		})
	}
}

func TestIssuerRoundTrip(t *testing.T) {
	clock := fixedClock{now.Add(300 * time.Millisecond)}
	iss, err := NewIssuer(IssuerConfig{Secret: secret, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	token, exp, err := iss.Issue("1001")
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(DefaultTokenTTL); !exp.Equal(want) {
		t.Fatalf("expiresAt = %v, want %v", exp, want)
	}
	v, err := NewVerifier(VerifierConfig{Secret: secret, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := v.Verify(token); err != nil || got.User != "1001" || !got.ExpiresAt.Equal(exp) {
		t.Fatalf("Verify = %+v, %v; want 1001 until %v", got, err, exp)
	}
	late, err := NewVerifier(VerifierConfig{Secret: secret, Clock: fixedClock{exp}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := late.Verify(token); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("token verified at its exp: %v", err)
	}
	if _, err := NewIssuer(IssuerConfig{Secret: secret[:31]}); err == nil {
		t.Fatal("NewIssuer accepted a 31-byte secret")
	}
}

func TestIssuerSignsTheConfiguredIssuerAndAudience(t *testing.T) {
	clock := fixedClock{now}
	iss, err := NewIssuer(IssuerConfig{Secret: secret, Clock: clock, Issuer: "https://chat.example", Audience: "chatd"})
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := iss.Issue("1001")
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(VerifierConfig{Secret: secret, Clock: clock, Issuer: "https://chat.example", Audience: "chatd"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := v.Verify(token); err != nil || got.User != "1001" {
		t.Fatalf("Verify = %+v, %v; want 1001", got, err)
	}
	strict, err := NewVerifier(VerifierConfig{Secret: secret, Clock: clock, Audience: "another-service"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := strict.Verify(token); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("a dev token for chatd verified for another audience: %v", err)
	}
}

func TestRandomSecretIsUsable(t *testing.T) {
	a, err := RandomSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, err := RandomSecret()
	if err != nil {
		t.Fatal(err)
	}
	if string(a) == string(b) {
		t.Fatal("two random secrets are equal")
	}
	if _, err := NewIssuer(IssuerConfig{Secret: a}); err != nil {
		t.Fatal(err)
	}
}

func TestBearerToken(t *testing.T) {
	tests := map[string]string{"Bearer abc": "abc", "bearer abc": "abc", "Basic abc": "", "": "", "Bearer": ""}
	for header, want := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		if got := BearerToken(r); got != want {
			t.Errorf("BearerToken(%q) = %q, want %q", header, got, want)
		}
	}
}
