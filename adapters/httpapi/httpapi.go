// Package httpapi is the chat's REST transport and its operational
// endpoints: the dev mode's token endpoint, sending a message, listing
// conversations and paging history under bearer authentication, plus
// /healthz, /readyz and /metrics for operators. It registers its routes on a
// ServeMux the caller owns (with Go 1.22 method patterns), so the WebSocket
// endpoint and the web page share one listener with it. Every error is the
// protocol's JSON `{"code","message"}` with the HTTP status the code implies;
// failures on the server's side are logged, not shown to clients.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/evchat/chatd/adapters/auth"
	"github.com/evchat/chatd/adapters/metrics"
	"github.com/evchat/chatd/adapters/wire"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/message"
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

// DefaultConfig: bodies as large as a WebSocket frame may be, since a send
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
	log      *slog.Logger
	draining atomic.Bool
}

// New builds the API.
func New(cfg Config, deps Deps) (*API, error) {
	if deps.App == nil || deps.Verifier == nil || deps.Gatherer == nil {
		return nil, errors.New("httpapi: the application, a token verifier and a metrics gatherer are required")
	}
	def := DefaultConfig()
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = def.MaxBodyBytes
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = def.RequestTimeout
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = def.ReadyTimeout
	}
	log := deps.Log
	if log == nil {
		log = slog.Default()
	}
	return &API{cfg: cfg, deps: deps, log: log}, nil
}

// Register adds the API's routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/dev/token", a.devToken)
	mux.HandleFunc("POST /api/messages", a.authed(a.sendMessage))
	mux.HandleFunc("GET /api/conversations", a.authed(a.conversations))
	mux.HandleFunc("GET /api/conversations/{id}/messages", a.authed(a.history))
	mux.HandleFunc("GET /api/presence", a.authed(a.presence))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", a.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.deps.Gatherer, promhttp.HandlerOpts{}))
}

// Drain makes /readyz answer 503 from now on, so load balancers stop
// sending new clients while SIGTERM's drain runs; the process stays healthy.
func (a *API) Drain() { a.draining.Store(true) }

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

func (a *API) sendMessage(w http.ResponseWriter, r *http.Request, uid user.ID) {
	var req struct {
		ID   *string `json:"id"`
		To   *string `json:"to"`
		Body *string `json:"body"`
	}
	if !a.decode(w, r, &req) {
		return
	}
	var missing string
	switch {
	case req.ID == nil:
		missing = "id"
	case req.To == nil:
		missing = "to"
	case req.Body == nil:
		missing = "body"
	}
	if missing != "" {
		writeError(w, http.StatusBadRequest, wire.CodeBadRequest, "missing field "+missing)
		return
	}
	cmd, err := parseSend(uid, *req.ID, *req.To, *req.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, wire.CodeBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), a.cfg.RequestTimeout)
	defer cancel()
	start := time.Now()
	ack, err := a.deps.App.Send.Handle(ctx, cmd)
	if err != nil {
		a.deps.Metrics.Send(metrics.TransportHTTP, wire.CodeOf(err), start)
		a.fail(w, err)
		return
	}
	a.deps.Metrics.Send(metrics.TransportHTTP, metrics.OutcomeOK, start)
	writeJSON(w, http.StatusCreated, wire.AckOf(ack))
}

// parseSend parses a send's fields into the command. The application
// makes a key for an empty id (the seed's WebSocket form); REST has no such
// form, so an empty id is refused here.
func parseSend(sender user.ID, id, to, body string) (application.SendMessageCommand, error) {
	cmd := application.SendMessageCommand{Sender: sender}
	var err error
	if cmd.ClientID, err = message.ParseClientID(id); err != nil {
		return cmd, err
	}
	if cmd.To, err = user.ParseID(to); err != nil {
		return cmd, fmt.Errorf("to: %w", err)
	}
	cmd.Body, err = message.ParseBody(body)
	return cmd, err
}

func (a *API) conversations(w http.ResponseWriter, r *http.Request, uid user.ID) {
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.RequestTimeout)
	defer cancel()
	list, err := a.deps.App.Conversations.Handle(ctx, uid)
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]conversationJSON, len(list))
	for i, c := range list {
		out[i] = conversationJSON{Conversation: c.Conversation, Peer: c.Peer, LastSeq: c.LastSeq,
			DeliveredUpTo: c.DeliveredUpTo, ReadUpTo: c.ReadUpTo, Unread: c.Unread}
		if c.LastMessage != nil {
			m := wire.MessageOf(*c.LastMessage)
			out[i].LastMessage = &m
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) history(w http.ResponseWriter, r *http.Request, uid user.ID) {
	// A malformed id names no conversation, which for a path is a 404.
	id, err := conversation.ParseID(r.PathValue("id"))
	if err != nil {
		a.fail(w, conversation.ErrNotFound)
		return
	}
	q := application.HistoryQuery{Reader: uid, Conversation: id}
	var limit uint64
	for _, p := range []struct {
		name string
		dst  *uint64
	}{{"after", &q.After}, {"before", &q.Before}, {"limit", &limit}} {
		v := r.URL.Query().Get(p.name)
		if v == "" {
			continue
		}
		n, ok := wire.ParseInteger(v)
		if !ok {
			writeError(w, http.StatusBadRequest, wire.CodeBadRequest,
				fmt.Sprintf("%s must be a non-negative integer of at most %d", p.name, uint64(wire.MaxInteger)))
			return
		}
		*p.dst = n
	}
	// The application clamps to its page maximum; clamping first keeps a
	// value of up to 2^53-1 from overflowing a 32-bit int.
	q.Limit = int(min(limit, application.MaxPageLimit))
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.RequestTimeout)
	defer cancel()
	page, err := a.deps.App.History.Handle(ctx, q)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, pageJSON{Messages: wire.MessagesOf(page.Messages), More: page.More})
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

// decode reads a JSON object body of at most MaxBodyBytes into v, or
// answers the error and returns false.
func (a *API) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, wire.CodeTooLarge, fmt.Sprintf("body larger than %d bytes", a.cfg.MaxBodyBytes))
		return false
	case err != nil:
		writeError(w, http.StatusBadRequest, wire.CodeBadRequest, "body could not be read")
		return false
	case !utf8.Valid(data):
		// encoding/json would replace invalid bytes with U+FFFD unnoticed.
		writeError(w, http.StatusBadRequest, wire.CodeBadRequest, "body is not valid UTF-8")
		return false
	case !wire.ValidEscapes(data):
		// And an escaped lone surrogate too.
		writeError(w, http.StatusBadRequest, wire.CodeBadRequest, "body escapes a lone UTF-16 surrogate")
		return false
	}
	if err := json.Unmarshal(data, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		msg := "body is not a JSON object"
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			msg = "field " + typeErr.Field + " has the wrong type"
		}
		writeError(w, http.StatusBadRequest, wire.CodeBadRequest, msg)
		return false
	}
	return true
}

// fail answers a use case's error with its protocol code.
func (a *API) fail(w http.ResponseWriter, err error) {
	code := wire.CodeOf(err)
	msg := err.Error()
	switch code {
	case wire.CodeInternal:
		a.log.Error("http request failed", "err", err)
		msg = "internal error"
	case wire.CodeUnavailable:
		a.log.Warn("http request failed", "err", err)
		msg = "service unavailable, try again"
		w.Header().Set("Retry-After", "1")
	case wire.CodeRateLimited:
		w.Header().Set("Retry-After", "1")
	}
	writeError(w, statusOf(code), code, msg)
}

// statusOf is the HTTP status of a protocol error code.
func statusOf(code string) int {
	for _, e := range errorStatuses {
		if e.code == code {
			return e.status
		}
	}
	return http.StatusInternalServerError
}

// errorStatuses pairs each protocol error code with its HTTP status, one
// way for statusOf and the other for codeOfStatus.
var errorStatuses = []struct {
	code   string
	status int
}{
	{wire.CodeBadRequest, http.StatusBadRequest},
	{wire.CodeUnauthorized, http.StatusUnauthorized},
	{wire.CodeForbidden, http.StatusForbidden},
	{wire.CodeNotFound, http.StatusNotFound},
	{wire.CodeTooLarge, http.StatusRequestEntityTooLarge},
	{wire.CodeRateLimited, http.StatusTooManyRequests},
	{wire.CodeUnavailable, http.StatusServiceUnavailable},
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, wire.Error{Code: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	// Answers carry tokens and private messages: no cache may keep them.
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// JSON shapes, named as PROTOCOL.md names them.

type pageJSON struct {
	Messages []wire.Message `json:"messages"`
	More     bool           `json:"more"`
}

type conversationJSON struct {
	Conversation  string        `json:"conversation"`
	Peer          user.ID       `json:"peer"`
	LastSeq       uint64        `json:"lastSeq"`
	DeliveredUpTo uint64        `json:"deliveredUpTo"`
	ReadUpTo      uint64        `json:"readUpTo"`
	Unread        int           `json:"unread"`
	LastMessage   *wire.Message `json:"lastMessage"`
}
