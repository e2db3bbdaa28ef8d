package contract_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	driver "go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/evchat/chatd/adapters/mongo"
	"github.com/evchat/chatd/migrations"
	"github.com/evchat/chatd/ports"
	"github.com/evchat/chatd/tests/contract"
	"github.com/evchat/chatd/tests/infra"
)

// The MongoDB-wire server (FerretDB over PostgreSQL, as in production-like
// runs, since cases write concurrently) starts once per test binary, on the
// first case that needs it; every case then gets a database of its own.
var mongoServer struct {
	once   sync.Once
	client *driver.Client
	err    error
}

// mongoClient returns the client of the shared server, starting it first.
// Without the server the case fails: a missing infrastructure is a failure.
func mongoClient(t testing.TB) *driver.Client {
	t.Helper()
	mongoServer.once.Do(func() {
		server, err := infra.LaunchMongo()
		if err != nil {
			mongoServer.err = err
			return
		}
		onExit(server.Close)
		db, err := mongo.Connect(context.Background(), server.URI(), "admin")
		if err != nil {
			mongoServer.err = err
			return
		}
		mongoServer.client = db.Client()
		onExit(func() { _ = db.Client().Disconnect(context.Background()) })
	})
	if mongoServer.err != nil {
		t.Fatalf("MongoDB-wire server: %v", mongoServer.err)
	}
	return mongoServer.client
}

// freshDatabase returns a migrated database no other case uses, dropped
// when the case ends.
func freshDatabase(t testing.TB) *driver.Database {
	t.Helper()
	db := mongoClient(t).Database("t_" + strings.ToLower(rand.Text()[:16]))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := migrations.Up(ctx, db); err != nil {
		t.Fatalf("migrations: %v", err)
	}
	t.Cleanup(func() { _ = db.Drop(context.Background()) })
	return db
}

func TestMongoEventStore(t *testing.T) {
	contract.TestEventStore(t, func(t *testing.T) ports.EventStore { return mongo.NewEventStore(freshDatabase(t)) })
}

func TestMongoReadModel(t *testing.T) {
	contract.TestReadModel(t, func(t *testing.T) ports.ReadModel { return mongo.NewReadModel(freshDatabase(t)) })
}

func TestMongoReplay(t *testing.T) {
	contract.TestReplay(t, func(t *testing.T) (ports.EventStore, ports.ReadModel) {
		db := freshDatabase(t)
		return mongo.NewEventStore(db), mongo.NewReadModel(db)
	})
}

func TestMongoMigrations(t *testing.T) {
	ctx := context.Background()
	db := freshDatabase(t) // migrated once already
	if err := migrations.Up(ctx, db); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if n, err := db.Collection(migrations.Collection).CountDocuments(ctx, bson.D{}); err != nil || n != int64(len(migrations.All())) {
		t.Fatalf("%d migrations recorded (err %v), want %d", n, err, len(migrations.All()))
	}
	for coll, index := range map[string]string{
		mongo.CommitsCollection:       mongo.StreamVersionIndex,
		mongo.ConversationsCollection: mongo.ParticipantsActivityIndex,
	} {
		names, err := db.Collection(coll).Indexes().ListSpecifications(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(names, func(s driver.IndexSpecification) bool { return s.Name == index }) {
			t.Errorf("%s lacks index %s after migrating: %+v", coll, index, names)
		}
	}

	failing := append(migrations.All(), migrations.Migration{Version: 99, Name: "always fails",
		Up: func(context.Context, *driver.Database) error { return errors.New("on purpose") }})
	err := migrations.Apply(ctx, db, failing)
	if err == nil || !strings.Contains(err.Error(), "migration 99 (always fails)") {
		t.Fatalf("failing migration: got %v, want an error naming it", err)
	}
	if n, _ := db.Collection(migrations.Collection).CountDocuments(ctx, bson.D{{Key: "_id", Value: 99}}); n != 0 {
		t.Fatal("a failed migration was recorded")
	}

	unordered := []migrations.Migration{failing[1], failing[0]}
	if err := migrations.Apply(ctx, db, unordered); err == nil {
		t.Fatal("migrations out of order were accepted")
	}
}

// With no server behind the address, every operation is unavailable, and
// promptly: server selection gives up after mongo.ConnectTimeout.
func TestMongoUnavailable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	db, err := mongo.Connect(context.Background(), "mongodb://"+addr+"/", "chatd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Client().Disconnect(context.Background()) })
	store, rm := mongo.NewEventStore(db), mongo.NewReadModel(db)
	ctx := context.Background()
	checks := map[string]func() error{
		"ping":   func() error { return store.Ping(ctx) },
		"append": func() error { return store.Append(ctx, ports.Commit{ID: "x", Stream: "s", Version: 1}) },
		"find": func() error {
			_, err := store.FindCommit(ctx, "x")
			return err
		},
		"load": func() error {
			_, err := store.Load(ctx, "s", 1, 0)
			return err
		},
		"save view": func() error {
			_, err := rm.SaveMany(ctx, []ports.ViewSave{{View: ports.ConversationView{Conversation: "c"}}})
			return err
		},
		"list views": func() error {
			_, err := rm.ListFor(ctx, "u", 10)
			return err
		},
	}
	start := time.Now()
	var wg sync.WaitGroup
	for op, check := range checks {
		wg.Go(func() {
			if err := check(); !errors.Is(err, ports.ErrUnavailable) {
				t.Errorf("%s: got %v, want ErrUnavailable", op, err)
			}
		})
	}
	wg.Wait()
	if took := time.Since(start); took > 2*mongo.ConnectTimeout {
		t.Errorf("unavailable took %s", took)
	}
}
