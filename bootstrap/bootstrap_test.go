package bootstrap_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/evchat/chatd/bootstrap"
	"github.com/evchat/chatd/ports"
)

func validConfig(t *testing.T) bootstrap.Config {
	t.Helper()
	t.Setenv("CHAT_AUTH_SECRET", strings.Repeat("s", 32))
	cfg, err := bootstrap.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestTheEmbeddedNodeGraphIsComplete(t *testing.T) {
	cfg := validConfig(t)
	if err := fx.ValidateApp(bootstrap.Node(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))); err != nil {
		t.Fatal(err)
	}
}

func TestConfigNamesTheBadVariable(t *testing.T) {
	tests := []struct {
		env, value, want string
	}{
		{"CHAT_AUTH_MODE", "ldap", "CHAT_AUTH_MODE"},
		{"CHAT_AUTH_SECRET", "short", "CHAT_AUTH_SECRET"},
		{"CHAT_MAX_FRAME_BYTES", "0", "CHAT_MAX_FRAME_BYTES"},
		{"CHAT_MAX_FRAME_BYTES", "lots", "CHAT_MAX_FRAME_BYTES"},
		{"CHAT_SEND_RATE", "-1", "CHAT_SEND_RATE"},
		{"CHAT_LOG_LEVEL", "loud", "CHAT_LOG_LEVEL"},
		{"CHAT_PING_INTERVAL", "soon", "CHAT_PING_INTERVAL"},
		{"CHAT_HTTP_READ_TIMEOUT", "0s", "CHAT_HTTP_READ_TIMEOUT"},
		{"CHAT_HTTP_IDLE_TIMEOUT", "-1s", "CHAT_HTTP_IDLE_TIMEOUT"},
		{"CHAT_AUTH_JWKS_URL", "file:///etc/jwks.json", "CHAT_AUTH_JWKS_URL"},
		{"CHAT_AUTH_JWKS_URL", "idp.example/jwks", "CHAT_AUTH_JWKS_URL"},
		{"CHAT_AUTH_JWKS_REFRESH", "0s", "CHAT_AUTH_JWKS_REFRESH"},
		{"CHAT_MAX_SESSIONS_PER_USER", "0", "CHAT_MAX_SESSIONS_PER_USER"},
		{"CHAT_PROPAGATION_WINDOW", "-1s", "CHAT_PROPAGATION_WINDOW"},
		{"CHAT_DELIVERY_MODE", "multicast", "CHAT_DELIVERY_MODE"},
	}
	for _, tt := range tests {
		t.Run(tt.env+"="+tt.value, func(t *testing.T) {
			t.Setenv(tt.env, tt.value)
			_, err := bootstrap.LoadConfig()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to name %s", err, tt.want)
			}
		})
	}
	t.Run("jwt mode needs a key", func(t *testing.T) {
		t.Setenv("CHAT_AUTH_MODE", "jwt")
		t.Setenv("CHAT_AUTH_SECRET", "")
		if _, err := bootstrap.LoadConfig(); err == nil || !strings.Contains(err.Error(), "CHAT_AUTH_SECRET") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestJWTModeTakesAnyOneKeySource(t *testing.T) {
	for _, source := range []string{"CHAT_AUTH_SECRET", "CHAT_AUTH_PUBLIC_KEY_FILE", "CHAT_AUTH_JWKS_URL"} {
		t.Run(source, func(t *testing.T) {
			t.Setenv("CHAT_AUTH_MODE", "jwt")
			t.Setenv("CHAT_AUTH_SECRET", "")
			value := map[string]string{
				"CHAT_AUTH_SECRET":          strings.Repeat("s", 32),
				"CHAT_AUTH_PUBLIC_KEY_FILE": "/etc/chatd/rsa.pub",
				"CHAT_AUTH_JWKS_URL":        "https://idp.example/.well-known/jwks.json",
			}[source]
			t.Setenv(source, value)
			if _, err := bootstrap.LoadConfig(); err != nil {
				t.Fatalf("%s alone: %v", source, err)
			}
		})
	}
}

func TestDefaultsArePROTOCOLs(t *testing.T) {
	cfg := validConfig(t)
	if cfg.HTTPAddr != "127.0.0.1:8080" || cfg.MongoDB != "chat" || cfg.AuthMode != "dev" || cfg.MaxFrameBytes != 65536 ||
		cfg.SendRate != 50 || cfg.SendBurst != 200 || cfg.HTTPReadTimeout != 10*time.Second || cfg.HTTPIdleTimeout != time.Minute ||
		cfg.AuthJWKSRefresh != time.Hour || cfg.DeliveryMode != "routed" || cfg.EditWindow != 15*time.Minute ||
		cfg.MaxGroupMembers != 256 {
		t.Fatalf("defaults %+v", cfg)
	}
}

func TestTheDefaultAddressDependsOnTheMode(t *testing.T) {
	tests := []struct {
		mode, addr, want string
	}{
		{"dev", "", "127.0.0.1:8080"},
		{"jwt", "", ":8080"},
		{"dev", "0.0.0.0:9000", "0.0.0.0:9000"},
		{"jwt", "127.0.0.1:9000", "127.0.0.1:9000"},
	}
	for _, tt := range tests {
		t.Run(tt.mode+" "+tt.addr, func(t *testing.T) {
			t.Setenv("CHAT_AUTH_SECRET", strings.Repeat("s", 32))
			t.Setenv("CHAT_AUTH_MODE", tt.mode)
			t.Setenv("CHAT_HTTP_ADDR", tt.addr)
			cfg, err := bootstrap.LoadConfig()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.HTTPAddr != tt.want {
				t.Fatalf("CHAT_HTTP_ADDR = %q, want %q", cfg.HTTPAddr, tt.want)
			}
		})
	}
}

func TestListensOnLoopbackOnly(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:8080", true},
		{"127.0.0.53:8080", true},
		{"[::1]:8080", true},
		{"localhost:8080", true},
		{":8080", false},
		{"0.0.0.0:8080", false},
		{"[::]:8080", false},
		{"192.168.1.10:8080", false},
		{"chat.example:8080", false},
		{"127.0.0.1", false}, // no port: not an address net.Listen takes
	}
	for _, tt := range tests {
		if got := (bootstrap.Config{HTTPAddr: tt.addr}).ListensOnLoopbackOnly(); got != tt.want {
			t.Errorf("ListensOnLoopbackOnly(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

func TestTheMongoNodeGraphIsComplete(t *testing.T) {
	cfg := validConfig(t)
	cfg.MongoURI = "mongodb://127.0.0.1:1"
	if err := fx.ValidateApp(bootstrap.Node(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))); err != nil {
		t.Fatal(err)
	}
}

func TestTheClusterNodeGraphIsComplete(t *testing.T) {
	cfg := validConfig(t)
	cfg.MongoURI = "mongodb://127.0.0.1:1"
	cfg.RocketMQNamesrv = "127.0.0.1:9876;127.0.0.2:9876"
	if err := fx.ValidateApp(bootstrap.Node(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))); err != nil {
		t.Fatal(err)
	}
}

// TestTheNodeMeasuresItsPorts: the store and the publisher every use case
// is given are the measuring ones, and readiness is scraped.
func TestTheNodeMeasuresItsPorts(t *testing.T) {
	cfg := validConfig(t)
	var (
		reg   *prometheus.Registry
		store ports.EventStore
		bus   ports.TransactionalPublisher
	)
	app := fx.New(bootstrap.Node(cfg, slog.New(slog.NewTextHandler(io.Discard, nil))), fx.Populate(&reg, &store, &bus))
	if err := app.Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Load(context.Background(), "conversation", 1, 0); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	loadsTimed := uint64(0)
	for _, f := range families {
		names = append(names, f.GetName())
		if f.GetName() != "chat_store_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["op"] == "load" && labels["outcome"] == "ok" {
				loadsTimed = m.GetHistogram().GetSampleCount()
			}
		}
	}
	for _, want := range []string{"chat_store_seconds", "chat_bus_publish_seconds", "chat_ready", "chat_delivery_commit_age_seconds"} {
		if !slices.Contains(names, want) {
			t.Errorf("the node's registry has no %s: %v", want, names)
		}
	}
	if loadsTimed != 1 {
		t.Errorf("the store's load was timed %d times, want once", loadsTimed)
	}
}
