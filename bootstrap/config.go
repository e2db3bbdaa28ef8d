// Package bootstrap is the only package that knows every other: it reads the
// configuration from the environment, validates it, and wires the domain, the
// application and one go.uber.org/fx module per adapter into a running node,
// with lifecycle hooks that start and drain servers, producers and consumers
// in the right order. The chatd main package in bootstrap/chatd calls it.
package bootstrap

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/evchat/chatd/adapters/auth"
	"github.com/evchat/chatd/adapters/rocketmq"
)

// Config is every setting of a node, read from CHAT_* environment variables
// as PROTOCOL.md names them.
type Config struct {
	HTTPAddr string `env:"CHAT_HTTP_ADDR"` // its default depends on the mode: defaultHTTPAddr
	NodeID   string `env:"CHAT_NODE_ID"`
	LogLevel string `env:"CHAT_LOG_LEVEL" envDefault:"info"`
	// PprofAddr serves net/http/pprof on its own listener when set, for
	// profiling a node under load; keep it on loopback.
	PprofAddr string `env:"CHAT_PPROF_ADDR"`

	// Slow clients cannot hold connections: a request's headers and body
	// must arrive within the read timeout, and a keep-alive connection
	// idle for the idle timeout is closed.
	HTTPReadTimeout time.Duration `env:"CHAT_HTTP_READ_TIMEOUT" envDefault:"10s"`
	HTTPIdleTimeout time.Duration `env:"CHAT_HTTP_IDLE_TIMEOUT" envDefault:"60s"`

	MongoURI string `env:"CHAT_MONGO_URI"`
	MongoDB  string `env:"CHAT_MONGO_DB" envDefault:"chat"`

	RocketMQNamesrv     string        `env:"CHAT_ROCKETMQ_NAMESRV"`
	RocketMQTopic       string        `env:"CHAT_ROCKETMQ_TOPIC" envDefault:"chat_events"`
	RocketMQRetries     int           `env:"CHAT_ROCKETMQ_RETRIES" envDefault:"3"`
	RocketMQSendTimeout time.Duration `env:"CHAT_ROCKETMQ_SEND_TIMEOUT" envDefault:"3s"`
	RocketMQReconsume   int           `env:"CHAT_ROCKETMQ_MAX_RECONSUME" envDefault:"3"`
	RocketMQLinger      time.Duration `env:"CHAT_ROCKETMQ_CLUSTER_LINGER" envDefault:"200ms"`
	RocketMQLogLevel    string        `env:"CHAT_ROCKETMQ_LOG_LEVEL" envDefault:"warn"`
	// DeliveryMode is routed or broadcast on RocketMQ; the embedded bus,
	// one process, has no choice to make and ignores it.
	DeliveryMode string `env:"CHAT_DELIVERY_MODE" envDefault:"routed"`

	AuthMode          string        `env:"CHAT_AUTH_MODE" envDefault:"dev"`
	AuthSecret        string        `env:"CHAT_AUTH_SECRET"`
	AuthPublicKeyFile string        `env:"CHAT_AUTH_PUBLIC_KEY_FILE"`
	AuthJWKSURL       string        `env:"CHAT_AUTH_JWKS_URL"`
	AuthJWKSRefresh   time.Duration `env:"CHAT_AUTH_JWKS_REFRESH" envDefault:"1h"`
	AuthIssuer        string        `env:"CHAT_AUTH_ISSUER"`
	AuthAudience      string        `env:"CHAT_AUTH_AUDIENCE"`
	DevTokenTTL       time.Duration `env:"CHAT_DEV_TOKEN_TTL" envDefault:"24h"`

	MaxFrameBytes  int           `env:"CHAT_MAX_FRAME_BYTES" envDefault:"65536"`
	MaxBodyBytes   int64         `env:"CHAT_MAX_BODY_BYTES" envDefault:"65536"`
	SendRate       float64       `env:"CHAT_SEND_RATE" envDefault:"50"`
	SendBurst      int           `env:"CHAT_SEND_BURST" envDefault:"200"`
	EditWindow     time.Duration `env:"CHAT_EDIT_WINDOW" envDefault:"15m"`
	SessionQueue   int           `env:"CHAT_SESSION_QUEUE" envDefault:"256"`
	PingInterval   time.Duration `env:"CHAT_PING_INTERVAL" envDefault:"30s"`
	AllowedOrigins []string      `env:"CHAT_ALLOWED_ORIGINS" envSeparator:","`

	MaxSessionsPerUser int `env:"CHAT_MAX_SESSIONS_PER_USER" envDefault:"20"`
	MaxGroupMembers    int `env:"CHAT_MAX_GROUP_MEMBERS" envDefault:"256"`

	PresenceHeartbeat time.Duration `env:"CHAT_PRESENCE_HEARTBEAT" envDefault:"5s"`
	PresenceGrace     time.Duration `env:"CHAT_PRESENCE_GRACE" envDefault:"5s"`
	// PropagationWindow: unset is one and a half heartbeats
	// (application.PresenceConfig says why).
	PropagationWindow time.Duration `env:"CHAT_PROPAGATION_WINDOW"`

	TxTimeout       time.Duration `env:"CHAT_TX_TIMEOUT" envDefault:"6s"`
	ShutdownTimeout time.Duration `env:"CHAT_SHUTDOWN_TIMEOUT" envDefault:"15s"`

	// RepublishAfter: an acked commit not back on the node's own consumer
	// by then is sent again (application.DefaultRepublishAfter says why 3 s).
	RepublishAfter time.Duration `env:"CHAT_REPUBLISH_AFTER" envDefault:"3s"`
}

// LoadConfig reads the environment and validates every value, naming the
// variable at fault.
func LoadConfig() (Config, error) {
	var cfg Config
	if err := env.Parse(&cfg); err != nil {
		return Config{}, namedParseErrors(err)
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = defaultHTTPAddr(cfg.AuthMode)
	}
	if cfg.NodeID == "" {
		host, _ := os.Hostname()
		cfg.NodeID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	return cfg, cfg.Validate()
}

// defaultHTTPAddr keeps a dev node, where anyone may sign in as anyone,
// off the network unless the operator asks for it by name.
func defaultHTTPAddr(authMode string) string {
	if authMode == "jwt" {
		return ":8080"
	}
	return "127.0.0.1:8080"
}

// ListensOnLoopbackOnly tells whether CHAT_HTTP_ADDR names a loopback host:
// an IP of the loopback range or "localhost". An empty host listens on
// every interface, and any other name is taken as reachable from outside.
func (c Config) ListensOnLoopbackOnly() bool {
	host, _, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Validate checks the values that parsing alone cannot.
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	switch c.AuthMode {
	case "dev":
	case "jwt":
		if c.AuthSecret == "" && c.AuthPublicKeyFile == "" && c.AuthJWKSURL == "" {
			bad("CHAT_AUTH_MODE", "jwt mode needs CHAT_AUTH_SECRET, CHAT_AUTH_PUBLIC_KEY_FILE or CHAT_AUTH_JWKS_URL")
		}
	default:
		bad("CHAT_AUTH_MODE", "%q is neither dev nor jwt", c.AuthMode)
	}
	if c.AuthSecret != "" && len(c.AuthSecret) < auth.MinSecretBytes {
		bad("CHAT_AUTH_SECRET", "must be at least %d bytes, got %d", auth.MinSecretBytes, len(c.AuthSecret))
	}
	if c.AuthJWKSURL != "" {
		if u, err := url.Parse(c.AuthJWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("CHAT_AUTH_JWKS_URL", "%q is not an http(s) URL", c.AuthJWKSURL)
		}
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		bad("CHAT_LOG_LEVEL", "%v", err)
	}
	if _, err := parseLevel(c.RocketMQLogLevel); err != nil {
		bad("CHAT_ROCKETMQ_LOG_LEVEL", "%v", err)
	}
	if c.NodeID != "" && strings.ContainsAny(c.NodeID, " /\\") {
		bad("CHAT_NODE_ID", "%q must not contain spaces or slashes", c.NodeID)
	}
	for _, p := range []struct {
		name  string
		value float64
	}{
		{"CHAT_MAX_FRAME_BYTES", float64(c.MaxFrameBytes)}, {"CHAT_MAX_BODY_BYTES", float64(c.MaxBodyBytes)},
		{"CHAT_SEND_RATE", c.SendRate}, {"CHAT_SEND_BURST", float64(c.SendBurst)},
		{"CHAT_SESSION_QUEUE", float64(c.SessionQueue)}, {"CHAT_PING_INTERVAL", float64(c.PingInterval)},
		{"CHAT_TX_TIMEOUT", float64(c.TxTimeout)}, {"CHAT_SHUTDOWN_TIMEOUT", float64(c.ShutdownTimeout)},
		{"CHAT_ROCKETMQ_SEND_TIMEOUT", float64(c.RocketMQSendTimeout)}, {"CHAT_DEV_TOKEN_TTL", float64(c.DevTokenTTL)},
		{"CHAT_PRESENCE_HEARTBEAT", float64(c.PresenceHeartbeat)}, {"CHAT_PRESENCE_GRACE", float64(c.PresenceGrace)},
		{"CHAT_HTTP_READ_TIMEOUT", float64(c.HTTPReadTimeout)}, {"CHAT_HTTP_IDLE_TIMEOUT", float64(c.HTTPIdleTimeout)},
		{"CHAT_AUTH_JWKS_REFRESH", float64(c.AuthJWKSRefresh)},
		{"CHAT_MAX_SESSIONS_PER_USER", float64(c.MaxSessionsPerUser)}, {"CHAT_MAX_GROUP_MEMBERS", float64(c.MaxGroupMembers)},
		{"CHAT_REPUBLISH_AFTER", float64(c.RepublishAfter)}, {"CHAT_EDIT_WINDOW", float64(c.EditWindow)},
	} {
		if p.value <= 0 {
			bad(p.name, "must be positive")
		}
	}
	if c.RocketMQNamesrv != "" && c.MongoURI == "" {
		// Nodes on one bus must share one store: checkback and gap fills
		// read it, and an in-memory store is each process's own.
		bad("CHAT_ROCKETMQ_NAMESRV", "needs CHAT_MONGO_URI: the nodes of a cluster share one store")
	}
	if c.RocketMQRetries < 0 {
		bad("CHAT_ROCKETMQ_RETRIES", "must not be negative")
	}
	if c.RocketMQReconsume < 0 {
		bad("CHAT_ROCKETMQ_MAX_RECONSUME", "must not be negative")
	}
	if _, err := rocketmq.ParseDeliveryMode(c.DeliveryMode); err != nil {
		bad("CHAT_DELIVERY_MODE", "%v", err)
	}
	if c.RocketMQLinger < 0 {
		bad("CHAT_ROCKETMQ_CLUSTER_LINGER", "must not be negative")
	}
	if c.PropagationWindow < 0 {
		bad("CHAT_PROPAGATION_WINDOW", "must not be negative")
	}
	return errors.Join(errs...)
}

// namedParseErrors names the environment variable of each value that did not
// parse, where the library names the Go field.
func namedParseErrors(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("configuration: %w", err)
	}
	errs := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if field, ok := reflect.TypeOf(Config{}).FieldByName(pe.Name); ok {
				errs = append(errs, fmt.Errorf("%s: %w", field.Tag.Get("env"), pe.Err))
				continue
			}
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}
