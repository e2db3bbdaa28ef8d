package bootstrap

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	driver "go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/evchat/chatd/adapters/mongo"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/migrations"
)

// commandTimeout bounds the one-shot commands; a replay of a large store
// may need the operator to raise it.
const commandTimeout = 30 * time.Minute

// Migrate applies the MongoDB migrations and exits: `chatd migrate`.
func Migrate(cfg Config, logger *slog.Logger) error {
	return withMigratedMongo(cfg, "migrate", "the in-memory store has no schema", func(context.Context, *driver.Database) error {
		logger.Info("migrations applied", "db", cfg.MongoDB)
		return nil
	})
}

// Replay rebuilds every read model from the event store: `chatd replay`.
// Run it while no node projects, or a live commit may land in a view the
// replay then overwrites.
func Replay(cfg Config, logger *slog.Logger) error {
	return withMigratedMongo(cfg, "replay", "the in-memory store lives only inside a running node", func(ctx context.Context, db *driver.Database) error {
		started := time.Now()
		if err := application.Replay(ctx, mongo.NewEventStore(db), mongo.NewReadModel(db)); err != nil {
			return fmt.Errorf("chatd replay: %w", err)
		}
		logger.Info("read models rebuilt", "db", cfg.MongoDB, "took", time.Since(started))
		return nil
	})
}

// EraseRecalled removes the bodies of recalled messages from the event
// store: `chatd erase-recalled`. A recall hides a body from every API at
// once; this takes it out of the store too, for a privacy request. It may
// run while nodes serve: a recall committed during it is erased by the
// next run.
func EraseRecalled(cfg Config, logger *slog.Logger) error {
	return withMigratedMongo(cfg, "erase-recalled", "the in-memory store lives only inside a running node", func(ctx context.Context, db *driver.Database) error {
		rewritten, err := mongo.NewEventStore(db).EraseRecalled(ctx)
		if err != nil {
			return fmt.Errorf("chatd erase-recalled: %w", err)
		}
		logger.Info("recalled bodies erased", "db", cfg.MongoDB, "commits_rewritten", rewritten)
		return nil
	})
}

// withMigratedMongo runs a one-shot command on the configured database,
// brought up to the current schema first.
func withMigratedMongo(cfg Config, command, whyNotMemory string, run func(context.Context, *driver.Database) error) error {
	if cfg.MongoURI == "" {
		return fmt.Errorf("chatd %s: CHAT_MONGO_URI is not set; %s", command, whyNotMemory)
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	db, err := mongo.Connect(ctx, cfg.MongoURI, cfg.MongoDB)
	if err != nil {
		return err
	}
	defer func() { _ = db.Client().Disconnect(context.Background()) }()
	if err := migrations.Up(ctx, db); err != nil {
		return err
	}
	return run(ctx, db)
}

// healthcheckTimeout fails the check of a node that accepts connections but
// no longer answers, well within a container runtime's own check timeout.
const healthcheckTimeout = 3 * time.Second

// Healthcheck asks the node listening on CHAT_HTTP_ADDR on this host for
// GET /healthz and fails unless it answers 200: `chatd healthcheck`. It is
// the container image's HEALTHCHECK (bootstrap/deploy/Dockerfile), whose
// empty base has no shell and no curl to do it.
func Healthcheck(cfg Config) error {
	// A listen address of every interface (":8080", "0.0.0.0:8080") dials
	// the local system as it is: net.Dial documents that, so no rewrite.
	url := "http://" + cfg.HTTPAddr + "/healthz"
	// No proxy: HTTP_PROXY in a container's environment would otherwise
	// take "0.0.0.0:8080", which is not a loopback address, to the proxy.
	client := &http.Client{Timeout: healthcheckTimeout, Transport: &http.Transport{}}
	resp, err := client.Get(url)
	if err != nil {
		return fmt.Errorf("chatd healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("chatd healthcheck: GET %s answered %s", url, resp.Status)
	}
	return nil
}
