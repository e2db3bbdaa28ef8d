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
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// MinSecretBytes is the shortest HS256 secret accepted: anything shorter
// can be brute-forced from one captured token.
const MinSecretBytes = 32

// minRSABits rejects RSA keys too short to be trusted with identities.
const minRSABits = 2048

// Bounds of a JWKS fetch, so that a slow or hostile endpoint can neither
// hold a verification nor fill the memory.
const (
	jwksFetchTimeout = 10 * time.Second
	maxJWKSBytes     = 1 << 20
)

// DefaultJWKSRefresh is how often the key set is fetched again when nothing
// asks sooner.
const DefaultJWKSRefresh = time.Hour

// unknownKIDRefresh spaces the extra fetches that a token naming a kid not
// in the set triggers: a rotated key is found at once, yet a stream of
// made-up kids costs the identity provider one request a minute.
const unknownKIDRefresh = time.Minute

// jwksAlgorithms are the algorithms a JWKS key may verify; which one a
// given key verifies is decided by the key itself.
var jwksAlgorithms = []string{jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg(), jwt.SigningMethodEdDSA.Alg()}

// ErrUnauthorized is wrapped by every verification failure, so transports
// map all of them to 401 / `unauthorized` without knowing why.
var ErrUnauthorized = errors.New("unauthorized")

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

func (v *Verifier) startJWKS(cfg VerifierConfig) error {
	u, err := url.Parse(cfg.JWKSURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("auth: JWKS URL %q is not an http(s) URL", cfg.JWKSURL)
	}
	refresh := cfg.JWKSRefresh
	if refresh == 0 {
		refresh = DefaultJWKSRefresh
	}
	if refresh < 0 {
		return errors.New("auth: JWKS refresh interval must not be negative")
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	jwks, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
		Client:            &http.Client{Timeout: jwksFetchTimeout, Transport: limitedBodies{http.DefaultTransport}},
		HTTPTimeout:       jwksFetchTimeout,
		RefreshInterval:   refresh,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(unknownKIDRefresh), 1),
		// Bounds what a verification spends on an extra fetch, waiting
		// for the limiter included; a longer wait is refused at once.
		RateLimitWaitMax: jwksFetchTimeout,
		RefreshErrorHandlerFunc: func(endpoint string) func(context.Context, error) {
			return func(_ context.Context, err error) {
				log.Warn("auth: fetching the JWKS failed; tokens are checked against the keys fetched last, none before the first fetch",
					"url", endpoint, "err", err)
			}
		},
	})
	if err != nil {
		cancel()
		return fmt.Errorf("auth: JWKS %s: %w", cfg.JWKSURL, err)
	}
	v.jwks, v.stopJWKS = jwks, cancel
	return nil
}

// Close stops the background fetches of the JWKS; the Verifier still
// verifies with the keys it has.
func (v *Verifier) Close() {
	if v.stopJWKS != nil {
		v.stopJWKS()
	}
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

func (v *Verifier) jwksKey(t *jwt.Token) (any, error) {
	key, err := v.jwks.Keyfunc(t)
	if err != nil {
		return nil, err
	}
	keyAlg, err := algorithmOf(key)
	if err != nil {
		return nil, err
	}
	if keyAlg != t.Method.Alg() {
		return nil, fmt.Errorf("the JWKS key of this kid verifies %s, not %s", keyAlg, t.Method.Alg())
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
	// Issuer and Audience, when set, go into every token as iss and aud,
	// so that a Verifier that requires them accepts the dev tokens.
	Issuer, Audience string
	// Clock stamps iat and exp; nil is the wall clock.
	Clock ports.Clock
}

// DefaultTokenTTL is a working day, so a dev session does not expire under
// a developer's hands yet a leaked dev token does not live for long.
const DefaultTokenTTL = 24 * time.Hour

// Issuer signs dev mode tokens.
type Issuer struct {
	secret   []byte
	ttl      time.Duration
	issuer   string
	audience jwt.ClaimStrings
	now      func() time.Time
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
	iss := &Issuer{secret: cfg.Secret, ttl: cfg.TTL, issuer: cfg.Issuer, now: now}
	if cfg.Audience != "" {
		iss.audience = jwt.ClaimStrings{cfg.Audience}
	}
	return iss, nil
}

// Issue signs a token for u and says when it expires. Times are whole
// seconds, as JWT NumericDates are, so expiresAt is exactly the token's exp.
func (i *Issuer) Issue(u user.ID) (token string, expiresAt time.Time, err error) {
	now := i.now().Truncate(time.Second)
	expiresAt = now.Add(i.ttl)
	claims := jwt.RegisteredClaims{
		Issuer:    i.issuer,
		Audience:  i.audience,
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
	alg, err = algorithmOf(key)
	return alg, key, err
}

// algorithmOf names the one algorithm a public key may verify, and refuses
// any other kind of key (a JWKS's symmetric "oct" key among them).
func algorithmOf(key any) (string, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return "", fmt.Errorf("auth: RSA public key must have at least %d bits", minRSABits)
		}
		return jwt.SigningMethodRS256.Alg(), nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", errors.New("auth: ECDSA public key must be on P-256 for ES256")
		}
		return jwt.SigningMethodES256.Alg(), nil
	case ed25519.PublicKey:
		return jwt.SigningMethodEdDSA.Alg(), nil
	}
	return "", fmt.Errorf("auth: a key of type %T is not an RSA, ECDSA or Ed25519 public key", key)
}

// limitedBodies caps the responses of a JWKS endpoint: a key set is a few
// kilobytes, and one that is not must not be read into memory whole.
type limitedBodies struct{ next http.RoundTripper }

func (l limitedBodies) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, maxJWKSBytes), resp.Body}
	return resp, nil
}
