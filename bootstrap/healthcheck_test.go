package bootstrap_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/evchat/chatd/bootstrap"
)

func TestHealthcheckPassesOnlyWhenTheLocalNodeAnswers200(t *testing.T) {
	answering := func(status int) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/healthz" {
				http.NotFound(w, r)
				return
			}
			w.WriteHeader(status)
		}))
		t.Cleanup(srv.Close)
		return srv.Listener.Addr().String()
	}
	port := func(addr string) string {
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	healthy := answering(http.StatusOK)
	tests := []struct {
		name     string
		httpAddr string
		wantErr  bool
	}{
		{"loopback address, 200", healthy, false},
		{"every interface, empty host", ":" + port(healthy), false},
		{"every interface, 0.0.0.0", "0.0.0.0:" + port(healthy), false},
		{"node answers 503", answering(http.StatusServiceUnavailable), true},
		{"nothing listens", closedPort(t), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig(t)
			cfg.HTTPAddr = tt.httpAddr
			err := bootstrap.Healthcheck(cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Healthcheck(CHAT_HTTP_ADDR=%s) = %v, want error: %v", tt.httpAddr, err, tt.wantErr)
			}
		})
	}
}

// closedPort returns a loopback address that nothing listens on any more.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
