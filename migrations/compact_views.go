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

// viewState is the state string's JSON, as the read model writes it.
type viewState struct {
	MessagesVersion int64         `json:"mv"`
	ReceiptsVersion int64         `json:"rv"`
	LastSeq         int64         `json:"seq"`
	LastMessage     *messageState `json:"last,omitempty"`
	Members         []memberState `json:"m"`
}

type messageState struct {
	MessageID string    `json:"id"`
	Seq       int64     `json:"seq"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Body      string    `json:"body"`
	SentAt    time.Time `json:"at"`
}

type memberState struct {
	User          string     `json:"u"`
	DeliveredUpTo int64      `json:"d,omitempty"`
	ReadUpTo      int64      `json:"r,omitempty"`
	Unread        [][2]int64 `json:"unread,omitempty"`
}

func (v legacyView) state() viewState {
	s := viewState{MessagesVersion: v.MessagesVersion, ReceiptsVersion: v.ReceiptsVersion, LastSeq: v.LastSeq,
		Members: make([]memberState, len(v.Members))}
	if m := v.LastMessage; m != nil {
		s.LastMessage = &messageState{MessageID: m.MessageID, Seq: m.Seq, From: m.From, To: m.To, Body: m.Body, SentAt: m.SentAt}
	}
	for i, m := range v.Members {
		s.Members[i] = memberState{User: m.User, DeliveredUpTo: m.DeliveredUpTo, ReadUpTo: m.ReadUpTo}
		for _, run := range m.Unread {
			s.Members[i].Unread = append(s.Members[i].Unread, [2]int64{run.From, run.To})
		}
	}
	return s
}
