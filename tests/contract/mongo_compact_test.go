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
	"github.com/evchat/chatd/domain/user"
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

// TestMongoMigrationCompactViews: views stored with a field per value read
// back the same before migration 6 and after it, which moves their state
// into one JSON string and leaves compact views alone.
func TestMongoMigrationCompactViews(t *testing.T) {
	ctx := context.Background()
	db := mongoClient(t).Database("t_" + strings.ToLower(rand.Text()[:16]))
	t.Cleanup(func() { _ = db.Drop(context.Background()) })
	if err := migrations.Apply(ctx, db, migrations.All()[:5]); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	legacy := bson.D{{Key: "_id", Value: "c_old"}, {Key: "participants", Value: bson.A{"alice", "bob"}},
		{Key: "messagesVersion", Value: int64(7)}, {Key: "receiptsVersion", Value: int64(2)},
		{Key: "revision", Value: int64(9)}, {Key: "lastSeq", Value: int64(7)},
		{Key: "lastMessage", Value: bson.D{{Key: "messageId", Value: "m_7"}, {Key: "seq", Value: int64(7)},
			{Key: "from", Value: "alice"}, {Key: "to", Value: "bob"}, {Key: "body", Value: `{"$set": 1}`}, {Key: "sentAt", Value: at}}},
		{Key: "lastActivity", Value: at}, {Key: "saveToken", Value: "t"},
		{Key: "members", Value: bson.A{
			bson.D{{Key: "user", Value: "alice"}, {Key: "deliveredUpTo", Value: int64(3)}, {Key: "readUpTo", Value: int64(3)}, {Key: "unread", Value: bson.A{}}},
			bson.D{{Key: "user", Value: "bob"}, {Key: "deliveredUpTo", Value: int64(6)}, {Key: "readUpTo", Value: int64(2)},
				{Key: "unread", Value: bson.A{bson.D{{Key: "f", Value: int64(4)}, {Key: "t", Value: int64(5)}}, bson.D{{Key: "f", Value: int64(7)}, {Key: "t", Value: int64(7)}}}}},
		}}}
	if _, err := db.Collection(mongo.ConversationsCollection).InsertOne(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	rm := mongo.NewReadModel(db)
	fresh := ports.ConversationView{Conversation: "c_new", Participants: [2]user.ID{"carol", "dave"},
		MessagesVersion: 1, LastActivity: at, Members: []ports.MemberView{{User: "carol"}, {User: "dave"}}}
	if errs, err := rm.SaveMany(ctx, []ports.ViewSave{{View: fresh}}); err != nil || errs[0] != nil {
		t.Fatalf("save: %v %v", err, errs)
	}
	want := map[string]ports.ConversationView{"c_new": fresh, "c_old": {Conversation: "c_old",
		Participants: [2]user.ID{"alice", "bob"}, MessagesVersion: 7, ReceiptsVersion: 2, LastSeq: 7,
		LastMessage:  &ports.MessageRecord{MessageID: "m_7", Seq: 7, From: "alice", To: "bob", Body: `{"$set": 1}`, SentAt: at},
		LastActivity: at, Members: []ports.MemberView{{User: "alice", DeliveredUpTo: 3, ReadUpTo: 3},
			{User: "bob", DeliveredUpTo: 6, ReadUpTo: 2, Unread: []ports.SeqRun{{From: 4, To: 5}, {From: 7, To: 7}}}}}}
	check := func(when string) {
		t.Helper()
		got, err := rm.GetMany(ctx, []string{"c_old", "c_new"})
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		for id, v := range want {
			if !reflect.DeepEqual(got[id], v) {
				t.Errorf("%s: %s\n got %+v\nwant %+v", when, id, got[id], v)
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
	var stored bson.M
	if err := db.Collection(mongo.ConversationsCollection).FindOne(ctx, bson.D{{Key: "_id", Value: "c_old"}}).Decode(&stored); err != nil {
		t.Fatal(err)
	}
	if _, ok := stored["state"].(string); !ok {
		t.Errorf("no state string after migrating: %v", stored)
	}
	for _, field := range []string{"messagesVersion", "receiptsVersion", "lastSeq", "lastMessage", "members"} {
		if _, ok := stored[field]; ok {
			t.Errorf("legacy field %s kept after migrating", field)
		}
	}
	if stored["revision"] != int64(9) || stored["saveToken"] != "t" {
		t.Errorf("revision or save token changed: %v", stored)
	}
}
