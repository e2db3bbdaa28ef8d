package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// VerifierConfig says which keys tokens may be signed with; at least one of
// Secret, PublicKeyPEM and JWKSURL is required, and an empty one is absent.
type VerifierConfig struct {
	// Secret verifies HS256 tokens; at least MinSecretBytes long.
	Secret []byte
	// PublicKeyPEM verifies RS256 (an RSA key), ES256 (a P-256 key) or
	// EdDSA (an Ed25519 key) tokens: a PKIX "PUBLIC KEY", a PKCS#1
	// "RSA PUBLIC KEY" or a "CERTIFICATE" block.
	PublicKeyPEM []byte
	// JWKSURL is an http(s) URL of a JSON Web Key Set; a token carrying a
	// kid is verified by the set's key of that kid when there is one.
	JWKSURL string
	// JWKSRefresh is how often the key set is fetched again;
	// DefaultJWKSRefresh when zero.
	JWKSRefresh time.Duration
	// Issuer, when set, is the `iss` every token must carry.
	Issuer string
	// Audience, when set, must be among the token's `aud`.
	Audience string
	// Leeway tolerates clock skew between the token's issuer and this node.
	Leeway time.Duration
	// Clock tells the time exp is checked against; nil is the wall clock.
	Clock ports.Clock
	// Log hears of failed key set fetches; nil is slog.Default().
	Log *slog.Logger
}

// Verifier checks bearer tokens. One with a JWKS URL fetches the set in the
// background until Close.
type Verifier struct {
	keys     map[string]any // algorithm -> key; only these algorithms are accepted
	jwks     keyfunc.Keyfunc
	stopJWKS context.CancelFunc
	issuer   string
	audience string
	parser   *jwt.Parser
}

// NewVerifier builds a Verifier over the configured keys. The JWKS is
// fetched once before it returns, within jwksFetchTimeout. An endpoint that
// does not answer is logged, not fatal, so that an identity provider's
// outage does not keep nodes from starting or restarting; its tokens are
// refused until the keys arrive, at the next refresh or sooner when a
// token's kid asks for one (at most once a minute), and a secret or public
// key configured beside it serves its tokens meanwhile.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	v := &Verifier{keys: map[string]any{}, issuer: cfg.Issuer, audience: cfg.Audience}
	if len(cfg.Secret) > 0 {
		if err := checkSecret(cfg.Secret); err != nil {
			return nil, err
		}
		v.keys[jwt.SigningMethodHS256.Alg()] = cfg.Secret
	}
	if len(cfg.PublicKeyPEM) > 0 {
		alg, key, err := parsePublicKey(cfg.PublicKeyPEM)
		if err != nil {
			return nil, err
		}
		v.keys[alg] = key
	}
	algs := make([]string, 0, len(v.keys)+len(jwksAlgorithms))
	for alg := range v.keys {
		algs = append(algs, alg)
	}
	if cfg.JWKSURL != "" {
		if err := v.startJWKS(cfg); err != nil {
			return nil, err
		}
		algs = append(algs, jwksAlgorithms...)
	}
	if len(algs) == 0 {
		return nil, errors.New("auth: a secret, a public key or a JWKS URL is required")
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(algs), jwt.WithExpirationRequired(), jwt.WithLeeway(cfg.Leeway)}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	if cfg.Clock != nil {
		opts = append(opts, jwt.WithTimeFunc(cfg.Clock.Now))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// Stop ends the background fetches of the JWKS; the Verifier still
// verifies with the keys it has.
func (v *Verifier) Stop(context.Context) error {
	if v.stopJWKS != nil {
		v.stopJWKS()
	}
	return nil
}

// Verify checks token's signature and expiry and returns its subject.
func (v *Verifier) Verify(token string) (Identity, error) {
	if token == "" {
		return Identity{}, fmt.Errorf("%w: missing token", ErrUnauthorized)
	}
	var claims jwt.RegisteredClaims
	if _, err := v.parser.ParseWithClaims(token, &claims, v.key); err != nil {
		return Identity{}, fmt.Errorf("%w: %s", ErrUnauthorized, v.refusal(err, claims))
	}
	id, err := user.ParseID(claims.Subject)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: sub is not a valid user id", ErrUnauthorized)
	}
	return Identity{User: id, ExpiresAt: claims.ExpiresAt.Time}, nil
}

// key finds the key that verifies t. WithValidMethods has already refused
// any algorithm no key verifies; the key is still looked up by algorithm, so
// a secret never verifies RS256, a public key never verifies HS256, and a
// JWKS key verifies only the algorithm its own type names.
func (v *Verifier) key(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if _, hasKID := t.Header["kid"]; hasKID && v.jwks != nil {
		key, err := v.jwksKey(t)
		if err == nil {
			return key, nil
		}
		// A kid the set does not hold may still name a configured key.
		if _, ok := v.keys[alg]; !ok {
			return nil, err
		}
	}
	key, ok := v.keys[alg]
	if !ok {
		return nil, fmt.Errorf("algorithm %s not accepted", alg)
	}
	return key, nil
}

// refusal says why a token was refused, as far as it is any use to a
// client; a bad signature and an unknown key are both "invalid token".
func (v *Verifier) refusal(err error, claims jwt.RegisteredClaims) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "iss is not " + v.issuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "aud does not include " + v.audience
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		switch {
		case claims.ExpiresAt == nil:
			return "token has no exp"
		case v.issuer != "" && claims.Issuer == "":
			return "token has no iss"
		}
		return "token has no aud"
	}
	return "invalid token"
}
