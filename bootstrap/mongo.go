package bootstrap

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	driver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.uber.org/fx"

	"github.com/evchat/chatd/adapters/mongo"
	"github.com/evchat/chatd/migrations"
	"github.com/evchat/chatd/ports"
)

// MongoModule provides the MongoDB event store and read model. Its start
// hook applies the migrations, so a node never serves on an older schema,
// and its stop hook disconnects after everything that writes has stopped.
var MongoModule = fx.Module("mongo",
	fx.Provide(
		connectMongo,
		mongo.NewEventStore,
		func(reg *prometheus.Registry, s *mongo.EventStore) (ports.EventStore, error) {
			return measureStore(reg, s)
		},
		func(s *mongo.EventStore) ports.StreamScanner { return s },
		mongo.NewReadModel,
		func(r *mongo.ReadModel) ports.ReadModel { return r },
	),
)

func connectMongo(lc fx.Lifecycle, cfg Config, logger *slog.Logger) (*driver.Database, error) {
	db, err := mongo.Connect(context.Background(), cfg.MongoURI, cfg.MongoDB)
	if err != nil {
		return nil, fmt.Errorf("CHAT_MONGO_URI: %w", err)
	}
	migrate := func(ctx context.Context) error {
		if err := migrations.Up(ctx, db); err != nil {
			return err
		}
		logger.Info("mongodb ready", "db", cfg.MongoDB)
		return nil
	}
	lc.Append(fx.StartStopHook(migrate, db.Client().Disconnect))
	return db, nil
}
