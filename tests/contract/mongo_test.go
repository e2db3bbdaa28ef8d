package contract_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"slices"
	"strconv"
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
	server *infra.Mongo
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
		mongoServer.server = server
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

func TestMongoRecalledEraser(t *testing.T) {
	contract.TestRecalledEraser(t, func(t *testing.T) (contract.ErasingStore, ports.ReadModel) {
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

// TestMongoMigrationUnreadAsRuns: migration 4 turns views written with a
// list of unread seqs into runs the read model reads, and leaves views
// already in runs alone.
func TestMongoMigrationUnreadAsRuns(t *testing.T) {
	ctx := context.Background()
	db := mongoClient(t).Database("t_" + strings.ToLower(rand.Text()[:16]))
	t.Cleanup(func() { _ = db.Drop(context.Background()) })
	before := migrations.All()[:3]
	if err := migrations.Apply(ctx, db, before); err != nil {
		t.Fatal(err)
	}
	member := func(user string, unread any) bson.D {
		return bson.D{{Key: "user", Value: user}, {Key: "deliveredUpTo", Value: int64(0)},
			{Key: "readUpTo", Value: int64(1)}, {Key: "unread", Value: unread}}
	}
	view := func(id string, alice, bob any) bson.D {
		return bson.D{{Key: "_id", Value: id}, {Key: "participants", Value: bson.A{"alice", "bob"}},
			{Key: "messagesVersion", Value: int64(7)}, {Key: "receiptsVersion", Value: int64(1)},
			{Key: "revision", Value: int64(8)}, {Key: "lastSeq", Value: int64(7)},
			{Key: "lastActivity", Value: time.Now().UTC()},
			{Key: "members", Value: bson.A{member("alice", alice), member("bob", bob)}}}
	}
	if _, err := db.Collection(mongo.ConversationsCollection).InsertMany(ctx, []any{
		view("c_old", bson.A{int64(3)}, bson.A{int64(2), int64(4), int64(5), int64(7)}),
		view("c_new", bson.A{}, bson.A{bson.D{{Key: "f", Value: int64(2)}, {Key: "t", Value: int64(3)}}}),
	}); err != nil {
		t.Fatal(err)
	}
	for run := 1; run <= 2; run++ {
		if err := migrations.Up(ctx, db); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}
	views, err := mongo.NewReadModel(db).GetMany(ctx, []string{"c_old", "c_new"})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string][2][]ports.SeqRun{
		"c_old": {{{From: 3, To: 3}}, {{From: 2, To: 2}, {From: 4, To: 5}, {From: 7, To: 7}}},
		"c_new": {nil, {{From: 2, To: 3}}},
	} {
		v := views[id]
		for i, runs := range want {
			if got := v.Members[i].Unread; !slices.Equal(got, runs) {
				t.Errorf("%s member %d unread %v, want %v", id, i, got, runs)
			}
		}
		if v.Revision() != 8 {
			t.Errorf("%s revision %d, want 8 kept", id, v.Revision())
		}
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

// TestMongoLoadsALongStream: on FerretDB the store reads the first versions
// of a load one by one and the rest by range; every range, within, across
// and past that border, and past the stream's end, gives the same commits as
// the one range query would.
func TestMongoLoadsALongStream(t *testing.T) {
	store := mongo.NewEventStore(freshDatabase(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const length = 80
	for v := uint64(1); v <= length; v++ {
		c := ports.Commit{ID: "long-" + strconv.FormatUint(v, 10), Stream: "long", Version: v, CommittedAt: time.Now()}
		if err := store.Append(ctx, c); err != nil {
			t.Fatalf("append version %d: %v", v, err)
		}
	}
	tests := []struct {
		from, to, wantFirst, wantLast uint64
	}{
		{0, 0, 1, length},
		{1, 1, 1, 1},
		{5, 9, 5, 9},
		{10, 50, 10, 50},
		{40, 0, 40, length},
		{30, 200, 30, length},
		{length, 0, length, length},
		{length + 1, 0, 0, 0},
		{9, 5, 0, 0},
	}
	for _, tt := range tests {
		got, err := store.Load(ctx, "long", tt.from, tt.to)
		if err != nil {
			t.Fatalf("Load(%d, %d): %v", tt.from, tt.to, err)
		}
		var want []uint64
		for v := tt.wantFirst; v != 0 && v <= tt.wantLast; v++ {
			want = append(want, v)
		}
		versions := make([]uint64, len(got))
		for i, c := range got {
			versions[i] = c.Version
		}
		if !slices.Equal(versions, want) {
			t.Errorf("Load(%d, %d): versions %v, want %v", tt.from, tt.to, versions, want)
		}
	}
}
