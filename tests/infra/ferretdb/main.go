// Command ferretdb serves the MongoDB wire protocol on loopback for tests,
// load runs and `make run-cluster`, by embedding FerretDB v1 over PostgreSQL
// (the default, and the only handler that copes with concurrent writers) or
// SQLite (no server needed, but single-writer). It lives in its own Go module
// so that FerretDB and its dependency tree never reach the product's go.mod;
// the helpers in github.com/evchat/chatd/tests/infra run the binary built from
// here (bin/ferretdb) as a child process. It stops cleanly on SIGTERM or
// SIGINT, closing connections and the backend pool before exiting.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to serve the MongoDB wire protocol on (loopback only)")
	handler := flag.String("handler", "postgresql", "storage backend: postgresql or sqlite")
	pgURL := flag.String("postgresql-url", "", "PostgreSQL URL for the postgresql handler, e.g. postgres://postgres@127.0.0.1:5432/ferretdb")
	sqliteDir := flag.String("sqlite-dir", "", "directory for the sqlite handler's database files")
	logLevel := flag.String("log-level", "warn", "debug, info, warn or error")
	pprofAddr := flag.String("pprof", "", "loopback TCP address to serve net/http/pprof on, for profiling the store under load (off when empty)")
	flag.Parse()

	if err := requireLoopback("-listen", *listen); err != nil {
		return err
	}
	if *pprofAddr != "" {
		if err := requireLoopback("-pprof", *pprofAddr); err != nil {
			return err
		}
		pprofListener, err := net.Listen("tcp", *pprofAddr)
		if err != nil {
			return fmt.Errorf("-pprof: %w", err)
		}
		go func() { _ = http.Serve(pprofListener, nil) }()
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	cfg := &ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: *listen},
		Logger:   logger,
		Handler:  *handler,
	}
	switch *handler {
	case "postgresql":
		if *pgURL == "" {
			return fmt.Errorf("-handler postgresql needs -postgresql-url")
		}
		cfg.PostgreSQLURL = *pgURL
	case "sqlite":
		if *sqliteDir == "" {
			return fmt.Errorf("-handler sqlite needs -sqlite-dir")
		}
		if err := os.MkdirAll(*sqliteDir, 0o755); err != nil {
			return err
		}
		// FerretDB wants a file: URI naming a directory, with the trailing slash.
		cfg.SQLiteURL = "file:" + *sqliteDir + "/"
	default:
		return fmt.Errorf("-handler %q: want postgresql or sqlite", *handler)
	}

	f, err := ferretdb.New(cfg)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	logger.Info("serving", "listen", *listen, "handler", *handler)
	return f.Run(ctx)
}

// requireLoopback refuses any address but a loopback IP: test servers must
// never be reachable from outside the machine.
func requireLoopback(flagName, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s %q: %w", flagName, addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s %q: only loopback IP addresses are allowed", flagName, addr)
	}
	return nil
}
