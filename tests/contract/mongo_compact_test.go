package contract_test

import (
	"context"
	"crypto/rand"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/evchat/chatd/adapters/mongo"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/migrations"
	"github.com/evchat/chatd/ports"
)

// TestMongoMigrationCompactCommits: commits stored before migration 5, with
// events as embedded documents and an empty origin kept, read back the same
// before the migration and after it, which turns them into the compact shape
// and leaves compact ones alone.
func TestMongoMigrationCompactCommits(t *testing.T) {
	ctx := context.Background()
	db := mongoClient(t).Database("t_" + strings.ToLower(rand.Text()[:16]))
	t.Cleanup(func() { _ = db.Drop(context.Background()) })
	if err := migrations.Apply(ctx, db, migrations.All()[:4]); err != nil {
		t.Fatal(err)
	}
	sentAt := time.Date(2026, 11, 30, 12, 0, 0, 123456789, time.UTC)
	posted := conversation.MessagePosted{Conversation: "c_1", Seq: 1, MessageID: "m_1", From: "alice", To: "bob",
		Body: `{"$set": "not an operator"}`, SentAt: sentAt}
	delivered := conversation.DeliveredUpTo{Conversation: "c_1", User: "bob", Seq: 1}
	oldShape := func(id, stream, origin string, ev conversation.Event) bson.D {
		data, err := conversation.MarshalEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		var embedded bson.Raw
		if err := bson.UnmarshalExtJSON(data, false, &embedded); err != nil {
			t.Fatal(err)
		}
		return bson.D{{Key: "_id", Value: id}, {Key: "stream", Value: stream}, {Key: "version", Value: int64(1)},
			{Key: "events", Value: bson.A{bson.D{{Key: "type", Value: ev.EventType()}, {Key: "data", Value: embedded}}}},
			{Key: "committedAt", Value: sentAt}, {Key: "origin", Value: origin}}
	}
	if _, err := db.Collection(mongo.CommitsCollection).InsertMany(ctx, []any{
		oldShape("m_1", "c_1", "node-1/s_1", posted),
		oldShape("r_1", "c_1.receipts", "", delivered),
	}); err != nil {
		t.Fatal(err)
	}
	store := mongo.NewEventStore(db)
	fresh := ports.Commit{ID: "m_2", Stream: "c_1", Version: 2, CommittedAt: sentAt, Origin: "node-1/s_1",
		Events: []conversation.Event{conversation.MessagePosted{Conversation: "c_1", Seq: 2, MessageID: "m_2",
			From: "bob", To: "alice", Body: "hi", SentAt: sentAt}}}
	if err := store.Append(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	want := map[string][]conversation.Event{"m_1": {posted}, "r_1": {delivered}, "m_2": fresh.Events}
	check := func(when string) {
		t.Helper()
		for id, events := range want {
			c, err := store.FindCommit(ctx, id)
			if err != nil {
				t.Fatalf("%s: %s: %v", when, id, err)
			}
			if !reflect.DeepEqual(c.Events, events) {
				t.Errorf("%s: %s events %+v, want %+v", when, id, c.Events, events)
			}
			if wantOrigin := map[bool]string{true: "", false: "node-1/s_1"}[id == "r_1"]; c.Origin != wantOrigin {
				t.Errorf("%s: %s origin %q, want %q", when, id, c.Origin, wantOrigin)
			}
		}
	}
	check("before migrating")
	for run := 1; run <= 2; run++ {
		if err := migrations.Up(ctx, db); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}
	check("after migrating")
	cur, err := db.Collection(mongo.CommitsCollection).Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []struct {
		ID     string `bson:"_id"`
		Events []struct {
			Data bson.RawValue `bson:"data"`
		} `bson:"events"`
		Origin *string `bson:"origin"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		for _, ev := range d.Events {
			if ev.Data.Type != bson.TypeString {
				t.Errorf("%s: event data of BSON type %s after migrating, want a JSON string", d.ID, ev.Data.Type)
			}
		}
		if d.Origin != nil && *d.Origin == "" {
			t.Errorf("%s: empty origin kept", d.ID)
		}
	}
}
