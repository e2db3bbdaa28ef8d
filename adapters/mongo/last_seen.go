package mongo

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	driver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// LastSeenCollection holds one document per user, {_id: user, at: date}.
const LastSeenCollection = "last_seen"

// LastSeen keeps users' last-seen times in LastSeenCollection, the read
// model of presence that survives restarts.
type LastSeen struct {
	coll *driver.Collection
}

var _ ports.LastSeenStore = (*LastSeen)(nil)

// NewLastSeen returns the store over db, migrated.
func NewLastSeen(db *driver.Database) *LastSeen {
	return &LastSeen{coll: db.Collection(LastSeenCollection)}
}

type lastSeenDoc struct {
	User string    `bson:"_id"`
	At   time.Time `bson:"at"`
}

// Touch implements ports.LastSeenStore with one unordered bulk of upserts;
// $max keeps the later time when nodes that noticed the same user going
// offline write at once, or out of order.
func (l *LastSeen) Touch(ctx context.Context, seen []ports.LastSeen) error {
	if len(seen) == 0 {
		return nil
	}
	models := make([]driver.WriteModel, len(seen))
	for i, s := range seen {
		models[i] = driver.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: string(s.User)}}).
			SetUpdate(bson.D{{Key: "$max", Value: bson.D{{Key: "at", Value: s.At.UTC().Truncate(time.Millisecond)}}}}).
			SetUpsert(true)
	}
	if _, err := l.coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false)); err != nil {
		return readSideErr("last seen", "touch", "", err)
	}
	return nil
}

// Get implements ports.LastSeenStore.
func (l *LastSeen) Get(ctx context.Context, users []user.ID) (map[user.ID]time.Time, error) {
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = string(u)
	}
	cur, err := l.coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return nil, readSideErr("last seen", "get", "", err)
	}
	var docs []lastSeenDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, readSideErr("last seen", "get", "", err)
	}
	out := make(map[user.ID]time.Time, len(docs))
	for _, d := range docs {
		out[user.ID(d.User)] = d.At
	}
	return out, nil
}
