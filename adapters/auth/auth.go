// Package auth turns bearer tokens into user ids for the inbound adapters.
// Tokens are JWTs whose `sub` is the user id and whose `exp` is required: a
// Verifier accepts HS256 tokens signed with a shared secret (the dev mode and
// operators without an identity provider), RS256, ES256 or EdDSA tokens
// signed by the key whose public half is configured, and tokens signed by
// a key of an identity provider's JWKS endpoint, chosen by the token's `kid`
// (github.com/MicahParks/keyfunc keeps that key set and refreshes it in the
// background). The accepted algorithm is decided by the key, never by the
// token's header: a configured key names its one algorithm, and a JWKS key's
// own type decides its algorithm, which is what keeps alg=none and the
// HS256-signed-with-the-public-key confusion out. An Issuer signs the dev
// mode's tokens with the same secret, so every node of a cluster given that
// secret accepts every other node's tokens.
package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/evchat/chatd/domain/user"
)

// MinSecretBytes is the shortest HS256 secret accepted: anything shorter
// can be brute-forced from one captured token.
const MinSecretBytes = 32

// ErrUnauthorized is wrapped by every verification failure, so transports
// map all of them to 401 / `unauthorized` without knowing why.
var ErrUnauthorized = errors.New("unauthorized")

// Identity is what a verified token says: who the bearer is and until when
// the token vouches for it.
type Identity struct {
	User      user.ID
	ExpiresAt time.Time
}

// BearerToken returns the token of an `Authorization: Bearer` header, or "".
func BearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// RandomSecret makes a secret for a process that was given none, as the dev
// mode allows; its tokens then die with the process.
func RandomSecret() ([]byte, error) {
	secret := make([]byte, MinSecretBytes)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("auth: random secret: %w", err)
	}
	return secret, nil
}

func checkSecret(secret []byte) error {
	if len(secret) < MinSecretBytes {
		return fmt.Errorf("auth: the secret must be at least %d bytes", MinSecretBytes)
	}
	return nil
}
