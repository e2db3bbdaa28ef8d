// Command wsrelay serves tests/load/relay, the bare gorilla/websocket relay
// that `make bench-load` measures as the embedded node's floor. It takes
// its address from CHAT_HTTP_ADDR, as chatd does, so that the benchmark
// starts, waits for (/healthz) and stops it as it does a node, in a
// process of its own whose CPU time /proc tells apart from the load
// client's.
package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/evchat/chatd/tests/load/relay"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := serve(log); err != nil {
		log.Error("relay", "err", err)
		os.Exit(1)
	}
}

// serve serves the relay until SIGINT or SIGTERM.
func serve(log *slog.Logger) error {
	addr := os.Getenv("CHAT_HTTP_ADDR")
	if addr == "" {
		addr = "127.0.0.1:8090"
	}
	srv := &http.Server{Addr: addr, Handler: relay.New(log).Handler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Info("relay serving", "addr", addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
