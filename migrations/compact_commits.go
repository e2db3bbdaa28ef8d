package migrations

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// compactCommits rewrites each commit stored before the event store kept
// events' data as JSON strings: each embedded data document becomes the
// JSON it was converted from, and an empty origin is dropped. A commit in
// the new shape already is left alone, so the step can run again, and
// readers accept both shapes meanwhile, so nodes may serve while it runs.
func compactCommits(ctx context.Context, db *mongo.Database) error {
	commits := db.Collection("commits")
	cur, err := commits.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "events", Value: 1}, {Key: "origin", Value: 1}}))
	if err != nil {
		return fmt.Errorf("read commits: %w", err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var doc struct {
			ID     string `bson:"_id"`
			Events []struct {
				Type string        `bson:"type"`
				Data bson.RawValue `bson:"data"`
			} `bson:"events"`
			Origin *string `bson:"origin"`
		}
		if err := cur.Decode(&doc); err != nil {
			return fmt.Errorf("decode commit: %w", err)
		}
		events, changed := make(bson.A, len(doc.Events)), false
		for i, ev := range doc.Events {
			events[i] = bson.D{{Key: "type", Value: ev.Type}, {Key: "data", Value: ev.Data}}
			data, embedded := ev.Data.DocumentOK()
			if !embedded {
				continue
			}
			// Relaxed extended JSON of a plain JSON object is that object,
			// as the event store has always read it back.
			json, err := bson.MarshalExtJSON(data, false, false)
			if err != nil {
				return fmt.Errorf("commit %s: event %d: %w", doc.ID, i, err)
			}
			events[i] = bson.D{{Key: "type", Value: ev.Type}, {Key: "data", Value: string(json)}}
			changed = true
		}
		update := bson.D{}
		if changed {
			update = append(update, bson.E{Key: "$set", Value: bson.D{{Key: "events", Value: events}}})
		}
		if doc.Origin != nil && *doc.Origin == "" {
			update = append(update, bson.E{Key: "$unset", Value: bson.D{{Key: "origin", Value: ""}}})
		}
		if len(update) == 0 {
			continue
		}
		if _, err := commits.UpdateOne(ctx, bson.D{{Key: "_id", Value: doc.ID}}, update); err != nil {
			return fmt.Errorf("commit %s: %w", doc.ID, err)
		}
	}
	return cur.Err()
}
