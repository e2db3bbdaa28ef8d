package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/fx"

	"github.com/evchat/chatd/adapters/auth"
	"github.com/evchat/chatd/adapters/httpapi"
	"github.com/evchat/chatd/adapters/metrics"
	"github.com/evchat/chatd/adapters/websocket"
	"github.com/evchat/chatd/adapters/webui"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/ports"
)

// AuthModule provides the token verifier, and the issuer in dev mode.
var AuthModule = fx.Module("auth",
	fx.Provide(newAuth),
)

func newAuth(lc fx.Lifecycle, cfg Config, logger *slog.Logger) (*auth.Verifier, *auth.Issuer, error) {
	secret := []byte(cfg.AuthSecret)
	var publicKey []byte
	if cfg.AuthPublicKeyFile != "" {
		pem, err := os.ReadFile(cfg.AuthPublicKeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("CHAT_AUTH_PUBLIC_KEY_FILE: %w", err)
		}
		publicKey = pem
	}
	if cfg.AuthMode == "dev" && len(secret) == 0 {
		random, err := auth.RandomSecret()
		if err != nil {
			return nil, nil, err
		}
		secret = random
		logger.Warn("CHAT_AUTH_SECRET is unset: dev tokens are signed with a random secret of this process only")
	}
	verifier, err := auth.NewVerifier(auth.VerifierConfig{
		Secret: secret, PublicKeyPEM: publicKey,
		JWKSURL: cfg.AuthJWKSURL, JWKSRefresh: cfg.AuthJWKSRefresh,
		Issuer: cfg.AuthIssuer, Audience: cfg.AuthAudience,
		Log: logger.With("component", "auth"),
	})
	if err != nil {
		return nil, nil, err
	}
	lc.Append(fx.StopHook(verifier.Stop))
	if cfg.AuthMode != "dev" {
		return verifier, nil, nil
	}
	issuer, err := auth.NewIssuer(auth.IssuerConfig{Secret: secret, TTL: cfg.DevTokenTTL, Issuer: cfg.AuthIssuer, Audience: cfg.AuthAudience})
	return verifier, issuer, err
}

// MetricsModule provides the Prometheus registry and the chat's metrics,
// the application's count of the commits delivery receives and the bus
// consumers' instruments included, and registers the readiness checks
// that a scrape pings.
var MetricsModule = fx.Module("metrics",
	fx.Provide(func() (*prometheus.Registry, *metrics.Metrics, error) {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		m, err := metrics.New(reg)
		return reg, m, err
	}),
	fx.Provide(func(reg *prometheus.Registry) (*metrics.Delivery, error) { return metrics.NewDelivery(reg) }),
	fx.Provide(func(reg *prometheus.Registry) (*metrics.Consumers, error) { return metrics.NewConsumers(reg) }),
	fx.Invoke(func(reg *prometheus.Registry, store ports.EventStore, publisher ports.TransactionalPublisher) error {
		return metrics.RegisterReadiness(reg, httpapi.DefaultConfig().ReadyTimeout,
			metrics.Dependency{Name: "store", Ping: store.Ping}, metrics.Dependency{Name: "broker", Ping: publisher.Ping})
	}),
)

// measureStore and measurePublisher time every call of the event store
// and the transactional publisher that the rest of the graph makes. Each
// module wraps its adapter as it provides the port, rather than the graph
// decorating the port, so that a test can still decorate it (fx allows
// one decoration of a type in a scope).
func measureStore(reg *prometheus.Registry, store ports.EventStore) (ports.EventStore, error) {
	return metrics.MeasureStore(reg, store)
}

func measurePublisher(reg *prometheus.Registry, publisher ports.TransactionalPublisher) (ports.TransactionalPublisher, error) {
	return metrics.MeasurePublisher(reg, publisher)
}

// WebSocketModule provides the WebSocket transport.
var WebSocketModule = fx.Module("websocket",
	fx.Provide(func(cfg Config, app *application.Application, v *auth.Verifier, m *metrics.Metrics, logger *slog.Logger) (*websocket.Server, error) {
		return websocket.New(websocket.Config{
			MaxFrameBytes: cfg.MaxFrameBytes, SendQueue: cfg.SessionQueue,
			PingInterval: cfg.PingInterval, AllowedOrigins: cfg.AllowedOrigins,
			MaxSessionsPerUser: cfg.MaxSessionsPerUser,
		}, app, v, m, logger.With("component", "websocket"))
	}),
)

// HTTPAPIModule provides the REST API, health, readiness and metrics.
var HTTPAPIModule = fx.Module("httpapi",
	fx.Provide(func(cfg Config, app *application.Application, v *auth.Verifier, issuer *auth.Issuer,
		store ports.EventStore, publisher ports.TransactionalPublisher, reg *prometheus.Registry,
		m *metrics.Metrics, logger *slog.Logger) (*httpapi.API, error) {
		return httpapi.New(httpapi.Config{MaxBodyBytes: cfg.MaxBodyBytes}, httpapi.Deps{
			App: app, Verifier: v, Issuer: issuer,
			Checks:   []httpapi.Check{{Name: "store", Pinger: store}, {Name: "broker", Pinger: publisher}},
			Gatherer: reg, Metrics: m, Log: logger.With("component", "httpapi"),
		})
	}),
)

// HTTPServerModule serves the API and the WebSocket endpoint on
// CHAT_HTTP_ADDR. It binds at start, so a busy port fails start-up, and on
// stop drains as PROTOCOL.md says: readiness goes 503 and new connections
// are refused, in-flight sends finish, sessions close with 1001, and the
// delivered markers this node owes are written before the bus stops.
var HTTPServerModule = fx.Module("http-server",
	fx.Invoke(serveHTTP, servePprof),
)

// servePprof serves the runtime profiles on CHAT_PPROF_ADDR, apart from the
// public listener so that they are never exposed with the API.
func servePprof(lc fx.Lifecycle, cfg Config, logger *slog.Logger) {
	if cfg.PprofAddr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			ln, err := net.Listen("tcp", cfg.PprofAddr)
			if err != nil {
				return fmt.Errorf("CHAT_PPROF_ADDR %s: %w", cfg.PprofAddr, err)
			}
			logger.Info("pprof listening", "addr", ln.Addr().String())
			go func() { _ = server.Serve(ln) }()
			return nil
		},
		OnStop: server.Shutdown,
	})
}

func serveHTTP(lc fx.Lifecycle, cfg Config, api *httpapi.API, ws *websocket.Server, app *application.Application, logger *slog.Logger) {
	mux := http.NewServeMux()
	api.Register(mux)
	mux.Handle("GET /ws", ws)
	webui.Register(mux) // the web page: GET /{$} and GET /assets/
	server := &http.Server{
		Handler: httpapi.JSONErrors(mux),
		// The read timeout also bounds the upgrade request of a WebSocket;
		// its session then keeps its own read deadline by the ping rule.
		ReadTimeout: cfg.HTTPReadTimeout,
		IdleTimeout: cfg.HTTPIdleTimeout,
	}
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			ln, err := net.Listen("tcp", cfg.HTTPAddr)
			if err != nil {
				return fmt.Errorf("CHAT_HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
			}
			logger.Info("chatd listening", "addr", ln.Addr().String(), "node", cfg.NodeID)
			if cfg.AuthMode == "dev" && !cfg.ListensOnLoopbackOnly() {
				logger.Warn("dev mode listens beyond loopback: anyone who reaches "+cfg.HTTPAddr+
					" may sign in as anyone; set CHAT_AUTH_MODE=jwt or CHAT_HTTP_ADDR=127.0.0.1:PORT", "addr", cfg.HTTPAddr)
			}
			go func() {
				if err := server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					logger.Error("http server stopped", "err", err)
				}
			}()
			return nil
		},
		OnStop: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, cfg.ShutdownTimeout)
			defer cancel()
			apiErr := api.Stop(ctx)
			// Shutdown closes the listener at once and then waits for
			// in-flight requests; the sessions drain beside it.
			serverDone := make(chan error, 1)
			go func() { serverDone <- server.Shutdown(ctx) }()
			wsErr := ws.Stop(ctx)
			app.Delivery.Wait(ctx)
			return errors.Join(apiErr, wsErr, <-serverDone)
		},
	})
}
