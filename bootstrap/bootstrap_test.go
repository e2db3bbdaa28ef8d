package bootstrap_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/fx"

	"github.com/evchat/chatd/bootstrap"
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
		{"CHAT_MAX_SESSIONS_PER_USER", "0", "CHAT_MAX_SESSIONS_PER_USER"},
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

func TestDefaultsArePROTOCOLs(t *testing.T) {
	cfg := validConfig(t)
	if cfg.HTTPAddr != ":8080" || cfg.MongoDB != "chat" || cfg.AuthMode != "dev" || cfg.MaxFrameBytes != 65536 ||
		cfg.SendRate != 50 || cfg.SendBurst != 200 {
		t.Fatalf("defaults %+v", cfg)
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
