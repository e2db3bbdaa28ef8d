package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

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
