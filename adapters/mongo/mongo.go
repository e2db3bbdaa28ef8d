// Package mongo is the durable outbound adapter of the event store and the
// read model, on MongoDB 6+ in production and on FerretDB v1 (PostgreSQL
// handler) in the tests. Each commit is one document, inserted with the
// appends running beside it in one unordered insertMany (group_commit.go),
// so optimistic concurrency rests on the unique (stream, version) index and
// no multi-document transaction is ever needed, which FerretDB does not
// have. No append is written after its context's deadline. Only features both servers support are used: plain inserts,
// replaces with a revision in the filter, typed filters, ascending and
// descending compound indexes; and in the offline erase of recalled bodies
// (recalled_eraser.go) alone, a $regex on the stream name and a $set of a
// commit's events. Filters are built from bson.D with constant
// field names, so a user's string is only ever a value, never an operator or
// a field name. The collections and indexes are created by package
// migrations, which must run before these adapters serve.
//
// A view's lastActivity is a BSON date, kept to the millisecond, because
// ListFor sorts on it; the other times keep their full precision, because
// events and the rest of a view are stored as JSON strings (event_store.go
// and view_doc.go say why).
package mongo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	driver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/evchat/chatd/ports"
)

// Collection names, shared with package migrations.
const (
	CommitsCollection       = "commits"
	ConversationsCollection = "conversations"
)

// ConnectTimeout bounds server selection and dialling, so that with the
// database down an operation fails as unavailable within seconds instead of
// the driver's default 30 s, and /readyz and `send` answer promptly.
const ConnectTimeout = 3 * time.Second

// Connect prepares a client for uri and returns its database dbName. It does
// not wait for the server: the driver connects in the background and every
// operation (Ping first) reports the server's absence as unavailable, so a
// node starts while the database is down and recovers by itself when it
// returns. Close with db.Client().Disconnect.
func Connect(ctx context.Context, uri, dbName string) (*driver.Database, error) {
	if dbName == "" {
		return nil, errors.New("mongo: a database name is required")
	}
	opts := options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(ConnectTimeout).
		SetConnectTimeout(ConnectTimeout)
	client, err := driver.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("mongo: connect: %w", err)
	}
	if err := ctx.Err(); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, err
	}
	return client.Database(dbName), nil
}

// ping asks the primary, because that is where every write goes.
func ping(ctx context.Context, db *driver.Database) error {
	return db.Client().Ping(ctx, readpref.Primary())
}

// unavailable reports whether err means the server could not be reached or
// did not answer in time, so that the outcome of a write is unknown.
func unavailable(err error) bool {
	var (
		selection topology.ServerSelectionError
		conn      topology.ConnectionError
		netErr    net.Error
	)
	return driver.IsNetworkError(err) || driver.IsTimeout(err) ||
		errors.As(err, &selection) || errors.As(err, &conn) || errors.As(err, &netErr) ||
		errors.Is(err, context.Canceled) || errors.Is(err, driver.ErrClientDisconnected)
}

// storeErr wraps a driver error of the event store for the ports.
func storeErr(op, stream string, version uint64, err error) error {
	return &ports.StoreError{Op: op, Stream: stream, Version: version, Err: portsErr(err)}
}

// readSideErr wraps a driver error of a read-side store (the read model,
// the last-seen times) for the ports.
func readSideErr(store, op, key string, err error) error {
	return &ports.ReadSideError{Store: store, Op: op, Key: key, Err: portsErr(err)}
}

// portsErr makes unreachable ports.ErrUnavailable while keeping the
// driver's error in the chain.
func portsErr(err error) error {
	if unavailable(err) {
		return fmt.Errorf("%w: %w", ports.ErrUnavailable, err)
	}
	return err
}
