package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

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
