package infra_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/evchat/chatd/tests/infra"

	"github.com/evchat/chatd/tests/eventually"
)

func connect(t *testing.T, uri string) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		t.Fatalf("connect %s: %v", uri, err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

// checkMongoSubset exercises what the MongoDB adapter relies on and FerretDB
// must therefore get right: round trips, a unique index, error code 11000 for
// duplicates, and an unordered insertMany that stores all but the duplicates.
func checkMongoSubset(t *testing.T, uri string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	coll := connect(t, uri).Database("infra").Collection("events")

	if _, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "stream", Value: 1}, {Key: "seq", Value: 1}},
		Options: options.Index().SetUnique(true),
	}); err != nil {
		t.Fatalf("create unique index: %v", err)
	}
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "stream", Value: "c1"}, {Key: "seq", Value: 1}, {Key: "body", Value: "hi"}}); err != nil {
		t.Fatalf("insert: %v", err)
	}
	var got struct {
		Body string `bson:"body"`
	}
	if err := coll.FindOne(ctx, bson.D{{Key: "stream", Value: "c1"}, {Key: "seq", Value: 1}}).Decode(&got); err != nil || got.Body != "hi" {
		t.Fatalf("find: %+v, %v", got, err)
	}

	_, err := coll.InsertOne(ctx, bson.D{{Key: "stream", Value: "c1"}, {Key: "seq", Value: 1}, {Key: "body", Value: "again"}})
	if !mongo.IsDuplicateKeyError(err) {
		t.Fatalf("duplicate insert: want a duplicate-key error, got %v", err)
	}
	var we mongo.WriteException
	if !errors.As(err, &we) || len(we.WriteErrors) != 1 || we.WriteErrors[0].Code != 11000 {
		t.Fatalf("duplicate insert: want one write error with code 11000, got %#v", err)
	}

	docs := []any{
		bson.D{{Key: "stream", Value: "c1"}, {Key: "seq", Value: 2}},
		bson.D{{Key: "stream", Value: "c1"}, {Key: "seq", Value: 1}}, // duplicate
		bson.D{{Key: "stream", Value: "c1"}, {Key: "seq", Value: 3}},
	}
	_, err = coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || len(bwe.WriteErrors) != 1 || bwe.WriteErrors[0].Code != 11000 || bwe.WriteErrors[0].Index != 1 {
		t.Fatalf("unordered insertMany with one duplicate: want one 11000 at index 1, got %#v", err)
	}
	n, err := coll.CountDocuments(ctx, bson.D{{Key: "stream", Value: "c1"}})
	if err != nil || n != 3 {
		t.Fatalf("after unordered insertMany: %d documents, %v; want 3", n, err)
	}
}

func TestMongoOverPostgres(t *testing.T) {
	m := infra.StartMongoServer(t)
	checkMongoSubset(t, m.URI())

	// Down, then back: the same URI must serve the same data again.
	start := time.Now()
	if err := m.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	t.Logf("stopped in %v", time.Since(start).Round(time.Millisecond))
	c := connect(t, m.URI())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	err := c.Ping(ctx, nil)
	cancel()
	if err == nil {
		t.Fatal("ping succeeded while the server was stopped")
	}

	start = time.Now()
	if err := m.Start(); err != nil {
		t.Fatalf("start again: %v", err)
	}
	t.Logf("started again in %v", time.Since(start).Round(time.Millisecond))
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, err := c.Database("infra").Collection("events").CountDocuments(ctx, bson.D{})
	if err != nil || n != 3 {
		t.Fatalf("after restart, through the old client: %d documents, %v; want 3", n, err)
	}
}

func TestStartMongoURI(t *testing.T) {
	uri := infra.StartMongo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := connect(t, uri).Ping(ctx, nil); err != nil {
		t.Fatalf("ping %s: %v", uri, err)
	}
}

// TestFerretDBSQLite runs bin/ferretdb on its other handler directly, and
// checks that it exits cleanly on SIGTERM, which the helpers rely on.
func TestFerretDBSQLite(t *testing.T) {
	bin := os.Getenv("CHATD_FERRETDB_BIN")
	if bin == "" {
		bin = filepath.Join("..", "..", "bin", "ferretdb")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%v: build it with `make infra-deps`", err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(infra.FreePort())
	cmd := exec.Command(bin, "-listen", addr, "-handler", "sqlite", "-sqlite-dir", t.TempDir())
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Logf("ferretdb stopped: %v", <-exited)
	})

	uri := fmt.Sprintf("mongodb://%s/", addr)
	var pingErr error
	if err := eventually.Poll(10*time.Second, func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		pingErr = connect(t, uri).Ping(ctx, nil)
		return pingErr == nil, nil
	}); err != nil {
		t.Fatalf("ferretdb (sqlite) not answering on %s: %v", addr, pingErr)
	}
	checkMongoSubset(t, uri)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v, want status 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ferretdb still running 10 s after SIGTERM")
	}
}
