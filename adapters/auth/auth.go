// Package auth turns bearer tokens into user ids for the inbound adapters.
// Tokens are JWTs whose `sub` is the user id and whose `exp` is required: a
// Verifier accepts HS256 tokens signed with a shared secret (the dev mode and
// operators without an identity provider) and RS256 or ES256 tokens signed by
// the key whose public half is configured. The accepted algorithm is decided
// by which key the operator configured, never by the token's header, which is
// what keeps alg=none and the HS256-signed-with-the-public-key confusion out.
// An Issuer signs the dev mode's tokens with the same secret, so every node
// of a cluster given that secret accepts every other node's tokens.
package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// MinSecretBytes is the shortest HS256 secret accepted: anything shorter
// can be brute-forced from one captured token.
const MinSecretBytes = 32

// minRSABits rejects RSA keys too short to be trusted with identities.
const minRSABits = 2048

// ErrUnauthorized is wrapped by every verification failure, so transports
// map all of them to 401 / `unauthorized` without knowing why.
var ErrUnauthorized = errors.New("unauthorized")

// VerifierConfig says which keys tokens may be signed with; at least one of
// Secret and PublicKeyPEM is required.
type VerifierConfig struct {
	// Secret verifies HS256 tokens; at least MinSecretBytes long.
	Secret []byte
	// PublicKeyPEM verifies RS256 (an RSA key) or ES256 (a P-256 key) tokens:
	// a PKIX "PUBLIC KEY", a PKCS#1 "RSA PUBLIC KEY" or a "CERTIFICATE" block.
	PublicKeyPEM []byte
	// Leeway tolerates clock skew between the token's issuer and this node.
	Leeway time.Duration
	// Clock tells the time exp is checked against; nil is the wall clock.
	Clock ports.Clock
}

// Verifier checks bearer tokens.
type Verifier struct {
	keys   map[string]any // algorithm -> key; only these algorithms are accepted
	parser *jwt.Parser
}

// NewVerifier builds a Verifier over the configured keys.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	keys := map[string]any{}
	if cfg.Secret != nil {
		if err := checkSecret(cfg.Secret); err != nil {
			return nil, err
		}
		keys[jwt.SigningMethodHS256.Alg()] = cfg.Secret
	}
	if cfg.PublicKeyPEM != nil {
		alg, key, err := parsePublicKey(cfg.PublicKeyPEM)
		if err != nil {
			return nil, err
		}
		keys[alg] = key
	}
	if len(keys) == 0 {
		return nil, errors.New("auth: a secret or a public key is required")
	}
	algs := make([]string, 0, len(keys))
	for alg := range keys {
		algs = append(algs, alg)
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(algs), jwt.WithExpirationRequired(), jwt.WithLeeway(cfg.Leeway)}
	if cfg.Clock != nil {
		opts = append(opts, jwt.WithTimeFunc(cfg.Clock.Now))
	}
	return &Verifier{keys: keys, parser: jwt.NewParser(opts...)}, nil
}

// Identity is what a verified token says: who the bearer is and until when
// the token vouches for it.
type Identity struct {
	User      user.ID
	ExpiresAt time.Time
}

// Verify checks token's signature and expiry and returns its subject.
func (v *Verifier) Verify(token string) (Identity, error) {
	if token == "" {
		return Identity{}, fmt.Errorf("%w: missing token", ErrUnauthorized)
	}
	var claims jwt.RegisteredClaims
	_, err := v.parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		// WithValidMethods has already refused any other algorithm; the key
		// is still looked up by algorithm so a secret never verifies RS256
		// and a public key never verifies HS256.
		key, ok := v.keys[t.Method.Alg()]
		if !ok {
			return nil, fmt.Errorf("algorithm %s not accepted", t.Method.Alg())
		}
		return key, nil
	})
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Identity{}, fmt.Errorf("%w: token expired", ErrUnauthorized)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return Identity{}, fmt.Errorf("%w: token has no exp", ErrUnauthorized)
	case err != nil:
		return Identity{}, fmt.Errorf("%w: invalid token", ErrUnauthorized)
	}
	id, err := user.ParseID(claims.Subject)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: sub is not a valid user id", ErrUnauthorized)
	}
	return Identity{User: id, ExpiresAt: claims.ExpiresAt.Time}, nil
}

// BearerToken returns the token of an `Authorization: Bearer` header, or "".
func BearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// IssuerConfig tunes the dev mode's tokens.
type IssuerConfig struct {
	// Secret signs HS256 tokens; at least MinSecretBytes long.
	Secret []byte
	// TTL is how long a token lives; DefaultTokenTTL when zero.
	TTL time.Duration
	// Clock stamps iat and exp; nil is the wall clock.
	Clock ports.Clock
}

// DefaultTokenTTL is a working day, so a dev session does not expire under
// a developer's hands yet a leaked dev token does not live for long.
const DefaultTokenTTL = 24 * time.Hour

// Issuer signs dev mode tokens.
type Issuer struct {
	secret []byte
	ttl    time.Duration
	now    func() time.Time
}

// NewIssuer builds an Issuer.
func NewIssuer(cfg IssuerConfig) (*Issuer, error) {
	if err := checkSecret(cfg.Secret); err != nil {
		return nil, err
	}
	if cfg.TTL < 0 {
		return nil, errors.New("auth: token TTL must not be negative")
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTokenTTL
	}
	now := time.Now
	if cfg.Clock != nil {
		now = cfg.Clock.Now
	}
	return &Issuer{secret: cfg.Secret, ttl: cfg.TTL, now: now}, nil
}

// Issue signs a token for u and says when it expires. Times are whole
// seconds, as JWT NumericDates are, so expiresAt is exactly the token's exp.
func (i *Issuer) Issue(u user.ID) (token string, expiresAt time.Time, err error) {
	now := i.now().Truncate(time.Second)
	expiresAt = now.Add(i.ttl)
	claims := jwt.RegisteredClaims{
		Subject:   string(u),
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(expiresAt),
	}
	token, err = jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(i.secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: sign token: %w", err)
	}
	return token, expiresAt, nil
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

// parsePublicKey reads the first PEM block and names the one algorithm its
// key may verify.
func parsePublicKey(data []byte) (alg string, key any, err error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return "", nil, errors.New("auth: public key: no PEM block")
	}
	switch block.Type {
	case "CERTIFICATE":
		cert, cerr := x509.ParseCertificate(block.Bytes)
		if cerr != nil {
			return "", nil, fmt.Errorf("auth: public key: %w", cerr)
		}
		key = cert.PublicKey
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	}
	if err != nil {
		return "", nil, fmt.Errorf("auth: public key: %w", err)
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return "", nil, fmt.Errorf("auth: RSA public key must have at least %d bits", minRSABits)
		}
		return jwt.SigningMethodRS256.Alg(), k, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", nil, errors.New("auth: ECDSA public key must be on P-256 for ES256")
		}
		return jwt.SigningMethodES256.Alg(), k, nil
	}
	return "", nil, fmt.Errorf("auth: public key of type %T is not RSA or ECDSA", key)
}
