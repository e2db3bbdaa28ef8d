// Package migrations creates and evolves the MongoDB schema of chatd: the
// collections and indexes the mongo adapters rely on, as numbered
// migrations that Up applies in order at start-up (and `chatd migrate`
// alone) and records in the `schema_migrations` collection, one document
// {_id: version, name, appliedAt} each. Every migration is idempotent
// (create a collection unless it exists, create an index with a fixed name
// and spec), so a second run, or two nodes starting at once, changes
// nothing; a migration that fails is not recorded, stops Up with an error
// that names it, and is simply run again next time. Migrations 4 to 6
// rewrite stored documents into a newer shape, skipping those already in
// it; the adapters read both shapes, so nodes serve while they run.
//
// This is a small migrator over mongo-driver v2 rather than golang-migrate.
// golang-migrate v4.20.1's MongoDB driver does work against FerretDB v1
// (tried: up, then "no change"), but it is built on mongo-driver v1 and its
// WithInstance wants a v1 client, so chatd would carry and configure a
// second driver and a second connection pool, and Up could not take the
// v2 database the adapters use (golang-migrate's v2 driver exists only
// unreleased on its master branch). It also takes no context, and records
// its version by dropping the collection and then inserting, which a crash
// in between loses, leaving a "dirty" state to force by hand.
//
// There are no validators: FerretDB v1, which the tests run on, answers
// NotImplemented to `validator` in `create` and to `collMod`, and the
// adapters must use only what both it and MongoDB 6+ support.
//
// A migration, once released, is history: never edit one, add the next.
// Names of collections and indexes are written out in each migration, not
// taken from the adapters' constants, so that renaming a constant cannot
// rewrite the past.
package migrations

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Collection records the applied migrations.
const Collection = "schema_migrations"

// Migration is one numbered step of the schema.
type Migration struct {
	Version int
	Name    string
	Up      func(ctx context.Context, db *mongo.Database) error
}

// All returns chatd's migrations in order.
func All() []Migration {
	return []Migration{
		{Version: 1, Name: "commits: one document per commit, unique (stream, version)", Up: func(ctx context.Context, db *mongo.Database) error {
			return createWithIndexes(ctx, db, "commits", mongo.IndexModel{
				Keys:    bson.D{{Key: "stream", Value: 1}, {Key: "version", Value: 1}},
				Options: options.Index().SetName("stream_1_version_1").SetUnique(true),
			})
		}},
		{Version: 2, Name: "conversations: views listed by participant, latest activity first", Up: func(ctx context.Context, db *mongo.Database) error {
			return createWithIndexes(ctx, db, "conversations", mongo.IndexModel{
				Keys:    bson.D{{Key: "participants", Value: 1}, {Key: "lastActivity", Value: -1}},
				Options: options.Index().SetName("participants_1_lastActivity_-1"),
			})
		}},
		{Version: 3, Name: "last_seen: one document per user, the time their last session closed", Up: func(ctx context.Context, db *mongo.Database) error {
			// Looked up by _id only, which every collection indexes.
			return createWithIndexes(ctx, db, "last_seen")
		}},
		{Version: 4, Name: "conversations: members' unread seqs as runs {f: from, t: to}", Up: unreadAsRuns},
		{Version: 5, Name: "commits: events' data as JSON strings, no empty origin", Up: compactCommits},
		{Version: 6, Name: "conversations: a view's state as one JSON string", Up: compactViews},
	}
}

// unreadAsRuns rewrites each view whose members list unread seqs one by one
// into runs of consecutive seqs, {f: from, t: to}, the form the read model
// keeps since (documents, as FerretDB v1 refuses nested arrays). A view already in runs is left alone, so the step can run again;
// the revision is kept, since the view says the same.
func unreadAsRuns(ctx context.Context, db *mongo.Database) error {
	views := db.Collection("conversations")
	cur, err := views.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "members", Value: 1}}))
	if err != nil {
		return fmt.Errorf("read conversations: %w", err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var doc struct {
			ID      string   `bson:"_id"`
			Members []bson.D `bson:"members"`
		}
		if err := cur.Decode(&doc); err != nil {
			return fmt.Errorf("decode conversation: %w", err)
		}
		changed := false
		for _, member := range doc.Members {
			for j, field := range member {
				seqs, ok := field.Value.(bson.A)
				if field.Key != "unread" || !ok || len(seqs) == 0 {
					continue
				}
				if _, runs := seqs[0].(bson.D); runs {
					continue
				}
				if member[j].Value, err = seqRuns(seqs); err != nil {
					return fmt.Errorf("conversation %s: %w", doc.ID, err)
				}
				changed = true
			}
		}
		if !changed {
			continue
		}
		if _, err := views.UpdateOne(ctx, bson.D{{Key: "_id", Value: doc.ID}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "members", Value: doc.Members}}}}); err != nil {
			return fmt.Errorf("conversation %s: %w", doc.ID, err)
		}
	}
	return cur.Err()
}

// seqRuns folds ascending seqs into runs of consecutive ones.
func seqRuns(seqs bson.A) (bson.A, error) {
	var runs bson.A
	var from, to int64
	for i, v := range seqs {
		var seq int64
		switch n := v.(type) {
		case int64:
			seq = n
		case int32:
			seq = int64(n)
		default:
			return nil, fmt.Errorf("unread seq %v is not an integer", v)
		}
		if i > 0 && seq == to+1 {
			to = seq
			continue
		}
		if i > 0 {
			runs = append(runs, bson.D{{Key: "f", Value: from}, {Key: "t", Value: to}})
		}
		from, to = seq, seq
	}
	return append(runs, bson.D{{Key: "f", Value: from}, {Key: "t", Value: to}}), nil
}

// Up applies every migration of All that db has not recorded yet.
func Up(ctx context.Context, db *mongo.Database) error { return Apply(ctx, db, All()) }

// record is one applied migration in Collection.
type record struct {
	Version   int       `bson:"_id"`
	Name      string    `bson:"name"`
	AppliedAt time.Time `bson:"appliedAt"`
}

// Apply applies the migrations of ms that db has not recorded, in order of
// version, and records each one as it succeeds.
func Apply(ctx context.Context, db *mongo.Database, ms []Migration) error {
	for i := 1; i < len(ms); i++ {
		if ms[i].Version <= ms[i-1].Version {
			return fmt.Errorf("migrations: version %d follows %d; versions must increase", ms[i].Version, ms[i-1].Version)
		}
	}
	applied, err := appliedVersions(ctx, db)
	if err != nil {
		return err
	}
	records := db.Collection(Collection)
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		if err := m.Up(ctx, db); err != nil {
			return fmt.Errorf("migration %d (%s) failed: %w", m.Version, m.Name, err)
		}
		_, err := records.InsertOne(ctx, record{Version: m.Version, Name: m.Name, AppliedAt: time.Now().UTC()})
		// A duplicate means another node applied the same migration at the
		// same moment; the steps are idempotent, so both outcomes agree.
		if err != nil && !mongo.IsDuplicateKeyError(err) {
			return fmt.Errorf("migration %d (%s) applied but not recorded: %w", m.Version, m.Name, err)
		}
	}
	return nil
}

func appliedVersions(ctx context.Context, db *mongo.Database) (map[int]bool, error) {
	cur, err := db.Collection(Collection).Find(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("migrations: read %s: %w", Collection, err)
	}
	var records []record
	if err := cur.All(ctx, &records); err != nil {
		return nil, fmt.Errorf("migrations: read %s: %w", Collection, err)
	}
	applied := make(map[int]bool, len(records))
	for _, r := range records {
		applied[r.Version] = true
	}
	return applied, nil
}

// namespaceExists is the server's code for creating a collection that is
// there already; MongoDB and FerretDB both answer it.
const namespaceExists = 48

// createWithIndexes creates the collection unless it exists, then the
// indexes, which the server accepts again unchanged when they exist.
func createWithIndexes(ctx context.Context, db *mongo.Database, name string, indexes ...mongo.IndexModel) error {
	var se mongo.ServerError
	if err := db.CreateCollection(ctx, name); err != nil && !(errors.As(err, &se) && se.HasErrorCode(namespaceExists)) {
		return fmt.Errorf("create collection %s: %w", name, err)
	}
	if len(indexes) == 0 {
		return nil
	}
	if _, err := db.Collection(name).Indexes().CreateMany(ctx, indexes); err != nil {
		return fmt.Errorf("create indexes on %s: %w", name, err)
	}
	return nil
}
