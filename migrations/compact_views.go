package migrations

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// compactViews moves the state of each view stored with a field per value
// (messagesVersion, receiptsVersion, lastSeq, lastMessage, members) into
// the one JSON string `state` the read model keeps since; _id,
// participants, revision, lastActivity and saveToken stay as they are. A
// view with a state already is left alone, so the step can run again, and
// the read model reads both shapes meanwhile.
func compactViews(ctx context.Context, db *mongo.Database) error {
	views := db.Collection("conversations")
	cur, err := views.Find(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("read conversations: %w", err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var doc legacyView
		if err := cur.Decode(&doc); err != nil {
			return fmt.Errorf("decode conversation: %w", err)
		}
		if doc.State != "" {
			continue
		}
		state, err := json.Marshal(doc.state())
		if err != nil {
			return fmt.Errorf("conversation %s: %w", doc.ID, err)
		}
		unset := bson.D{}
		for _, field := range []string{"messagesVersion", "receiptsVersion", "lastSeq", "lastMessage", "members"} {
			unset = append(unset, bson.E{Key: field, Value: ""})
		}
		if _, err := views.UpdateOne(ctx, bson.D{{Key: "_id", Value: doc.ID}}, bson.D{
			{Key: "$set", Value: bson.D{{Key: "state", Value: string(state)}}},
			{Key: "$unset", Value: unset},
		}); err != nil {
			return fmt.Errorf("conversation %s: %w", doc.ID, err)
		}
	}
	return cur.Err()
}

// legacyView is a view as stored before migration 6 (its unread runs as
// migration 4 left them).
type legacyView struct {
	ID              string `bson:"_id"`
	State           string `bson:"state"`
	MessagesVersion int64  `bson:"messagesVersion"`
	ReceiptsVersion int64  `bson:"receiptsVersion"`
	LastSeq         int64  `bson:"lastSeq"`
	LastMessage     *struct {
		MessageID string    `bson:"messageId"`
		Seq       int64     `bson:"seq"`
		From      string    `bson:"from"`
		To        string    `bson:"to"`
		Body      string    `bson:"body"`
		SentAt    time.Time `bson:"sentAt"`
	} `bson:"lastMessage"`
	Members []struct {
		User          string `bson:"user"`
		DeliveredUpTo int64  `bson:"deliveredUpTo"`
		ReadUpTo      int64  `bson:"readUpTo"`
		Unread        []struct {
			From int64 `bson:"f"`
			To   int64 `bson:"t"`
		} `bson:"unread"`
	} `bson:"members"`
}

// state is the state string's JSON as the read model writes it, built
// here as plain maps so that this migration keeps its own record of the
// shape, whatever the read model's types become.
func (v legacyView) state() map[string]any {
	members := make([]map[string]any, len(v.Members))
	for i, m := range v.Members {
		member := map[string]any{"u": m.User}
		if m.DeliveredUpTo != 0 {
			member["d"] = m.DeliveredUpTo
		}
		if m.ReadUpTo != 0 {
			member["r"] = m.ReadUpTo
		}
		var unread [][2]int64
		for _, run := range m.Unread {
			unread = append(unread, [2]int64{run.From, run.To})
		}
		if len(unread) > 0 {
			member["unread"] = unread
		}
		members[i] = member
	}
	s := map[string]any{"mv": v.MessagesVersion, "rv": v.ReceiptsVersion, "seq": v.LastSeq, "m": members}
	if m := v.LastMessage; m != nil {
		s["last"] = map[string]any{"id": m.MessageID, "seq": m.Seq, "from": m.From, "to": m.To, "body": m.Body, "at": m.SentAt}
	}
	return s
}
