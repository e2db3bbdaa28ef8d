package bootstrap

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/fx/fxtest"
)

// TestJWTModeWithOnlyAPublicKey is the configuration that once failed to
// start: the unset secret reached the verifier as an empty slice.
func TestJWTModeWithOnlyAPublicKey(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "ed25519.pub")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CHAT_AUTH_MODE", "jwt")
	t.Setenv("CHAT_AUTH_SECRET", "")
	t.Setenv("CHAT_AUTH_PUBLIC_KEY_FILE", keyFile)
	cfg, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	lc := fxtest.NewLifecycle(t)
	verifier, issuer, err := newAuth(lc, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("newAuth: %v", err)
	}
	if issuer != nil {
		t.Error("jwt mode has a dev token issuer")
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := verifier.Verify(token); err != nil || id.User != "alice" {
		t.Fatalf("Verify = %+v, %v", id, err)
	}
	lc.RequireStart().RequireStop()
}
