// Package httpapi is the chat's REST transport and its operational
// endpoints: the dev mode's token endpoint, sending a message, listing
// conversations, paging history, every member's markers and the groups
// (create, get, rename, add and remove members) under bearer
// authentication, plus
// /healthz, /readyz and /metrics for operators, and openapi.yaml, the
// OpenAPI 3.1 document of every route the node serves over HTTP, at
// /api/openapi.yaml. It registers its routes on a ServeMux the caller owns
// (with Go 1.22 method patterns), so the WebSocket endpoint and the web page
// share one listener with it. Every error is the protocol's JSON
// `{"code","message"}` with the HTTP status the code implies; failures on
// the server's side are logged, not shown to clients.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/evchat/chatd/adapters/auth"
	"github.com/evchat/chatd/adapters/metrics"
	"github.com/evchat/chatd/adapters/wire"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/user"
)

// Config tunes the API; a zero field takes its DefaultConfig value.
type Config struct {
	// MaxBodyBytes bounds a request body; a larger one is answered 413.
	MaxBodyBytes int64
	// RequestTimeout bounds the use case a request runs.
	RequestTimeout time.Duration
	// ReadyTimeout bounds each readiness check.
	ReadyTimeout time.Duration
}

// DefaultConfig allows bodies as large as a WebSocket frame may be, since a send
// is the same either way.
func DefaultConfig() Config {
	return Config{MaxBodyBytes: 65536, RequestTimeout: 10 * time.Second, ReadyTimeout: 2 * time.Second}
}

// Pinger is anything readiness depends on: the event store, the broker.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Check names a Pinger for the readiness answer.
type Check struct {
	Name   string
	Pinger Pinger
}

// Deps are what the API drives.
type Deps struct {
	App      *application.Application
	Verifier *auth.Verifier
	// Issuer signs dev mode tokens; nil outside dev mode, where
	// /api/dev/token answers 404.
	Issuer *auth.Issuer
	// Checks must all answer for /readyz to answer 200.
	Checks []Check
	// Gatherer is what /metrics exposes.
	Gatherer prometheus.Gatherer
	// Metrics may be nil; Log nil is slog.Default().
	Metrics *metrics.Metrics
	Log     *slog.Logger
}

// API serves the REST routes.
type API struct {
	cfg      Config
	deps     Deps
	send     application.SendHandler // deps.App.Send, measured
	log      *slog.Logger
	draining atomic.Bool
}

// New builds the API.
func New(cfg Config, deps Deps) (*API, error) {
	if deps.App == nil || deps.Verifier == nil || deps.Gatherer == nil {
		return nil, errors.New("httpapi: the application, a token verifier and a metrics gatherer are required")
	}
	def := DefaultConfig()
	cfg.MaxBodyBytes = orDefault(cfg.MaxBodyBytes, def.MaxBodyBytes)
	cfg.RequestTimeout = orDefault(cfg.RequestTimeout, def.RequestTimeout)
	cfg.ReadyTimeout = orDefault(cfg.ReadyTimeout, def.ReadyTimeout)
	log := deps.Log
	if log == nil {
		log = slog.Default()
	}
	return &API{cfg: cfg, deps: deps, send: deps.Metrics.MeasureSends(metrics.TransportHTTP, deps.App.Send), log: log}, nil
}

// Register adds the API's routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	for _, r := range a.routes() {
		mux.Handle(r.pattern, r.handler)
	}
}

type route struct {
	pattern string // a ServeMux pattern: method and path
	handler http.Handler
}

// routes lists every route of the API in one place, so that a test can
// hold openapi.yaml to all of them.
func (a *API) routes() []route {
	return []route{
		{"POST /api/dev/token", http.HandlerFunc(a.devToken)},
		{"POST /api/messages", a.authed(a.sendMessage)},
		{"GET /api/conversations", a.authed(a.conversations)},
		{"GET /api/conversations/{id}/messages", a.authed(a.history)},
		{"GET /api/conversations/{id}/receipts", a.authed(a.receipts)},
		{"POST /api/groups", a.authed(a.createGroup)},
		{"GET /api/groups/{id}", a.authed(a.getGroup)},
		{"PATCH /api/groups/{id}", a.authed(a.renameGroup)},
		{"POST /api/groups/{id}/members", a.authed(a.changeMembers)},
		{"GET /api/presence", a.authed(a.presence)},
		{"GET /api/openapi.yaml", http.HandlerFunc(serveOpenAPI)},
		{"GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		})},
		{"GET /readyz", http.HandlerFunc(a.ready)},
		{"GET /metrics", promhttp.HandlerFor(a.deps.Gatherer, promhttp.HandlerOpts{})},
	}
}

// Stop makes /readyz answer 503 from now on, so load balancers stop
// sending new clients while SIGTERM's drain runs; the API still answers the
// requests that reach it and the process stays healthy.
func (a *API) Stop(context.Context) error {
	a.draining.Store(true)
	return nil
}

func (a *API) authed(h func(http.ResponseWriter, *http.Request, user.ID)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		identity, err := a.deps.Verifier.Verify(auth.BearerToken(r))
		if err != nil {
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeError(w, http.StatusUnauthorized, wire.CodeUnauthorized, err.Error())
			return
		}
		h(w, r, identity.User)
	}
}

func (a *API) devToken(w http.ResponseWriter, r *http.Request) {
	if a.deps.Issuer == nil {
		writeError(w, http.StatusNotFound, wire.CodeNotFound, "dev tokens are only issued in dev mode")
		return
	}
	var req struct {
		UserID *string `json:"userId"`
	}
	if !a.decode(w, r, &req) {
		return
	}
	if req.UserID == nil {
		writeError(w, http.StatusBadRequest, wire.CodeBadRequest, "missing field userId")
		return
	}
	uid, err := user.ParseID(*req.UserID)
	if err != nil {
		writeError(w, http.StatusBadRequest, wire.CodeBadRequest, err.Error())
		return
	}
	token, exp, err := a.deps.Issuer.Issue(uid)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": token, "userId": string(uid), "expiresAt": exp.UTC().Format(time.RFC3339)})
}

func (a *API) ready(w http.ResponseWriter, r *http.Request) {
	if a.draining.Load() {
		writeError(w, http.StatusServiceUnavailable, wire.CodeUnavailable, "shutting down")
		return
	}
	for _, c := range a.deps.Checks {
		ctx, cancel := context.WithTimeout(r.Context(), a.cfg.ReadyTimeout)
		err := c.Pinger.Ping(ctx)
		cancel()
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, wire.CodeUnavailable, c.Name+" is not answering")
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// orDefault keeps a setting given and replaces one left unset (or negative,
// which no setting here means) by its default.
func orDefault[T int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}
