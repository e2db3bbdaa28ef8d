package mongo

import (
	"context"
	"errors"
	"hash/fnv"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	driver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// ParticipantsActivityIndex serves ListFor: a user's conversations, latest
// activity first; package migrations creates it.
const ParticipantsActivityIndex = "participants_1_lastActivity_-1"

// viewDoc is one conversation view as stored in `conversations`.
type viewDoc struct {
	ID string `bson:"_id"`
	// Participants is an array, indexed with lastActivity, so that ListFor
	// is one index scan.
	Participants    []string `bson:"participants"`
	MessagesVersion int64    `bson:"messagesVersion"`
	ReceiptsVersion int64    `bson:"receiptsVersion"`
	// Revision duplicates MessagesVersion+ReceiptsVersion so that an
	// optimistic save is one equality in its filter.
	Revision     int64       `bson:"revision"`
	LastSeq      int64       `bson:"lastSeq"`
	LastMessage  *messageDoc `bson:"lastMessage"`
	LastActivity time.Time   `bson:"lastActivity"`
	Members      []memberDoc `bson:"members"`
}

type messageDoc struct {
	MessageID string    `bson:"messageId"`
	Seq       int64     `bson:"seq"`
	From      string    `bson:"from"`
	To        string    `bson:"to"`
	Body      string    `bson:"body"`
	SentAt    time.Time `bson:"sentAt"`
}

type memberDoc struct {
	User          string  `bson:"user"`
	DeliveredUpTo int64   `bson:"deliveredUpTo"`
	ReadUpTo      int64   `bson:"readUpTo"`
	Unread        []int64 `bson:"unread"`
}

// ReadModel keeps conversation views in the `conversations` collection.
//
// A save replaces the document only if its revision is the expected one.
// MongoDB checks that filter and writes atomically; FerretDB v1 does not: it
// selects the matching documents, then updates them by _id alone, so two
// concurrent replaces from the same revision both "match" and the second
// silently overwrites the first (seen in the contract's race: 17 of 20
// winners). Saves of one conversation are therefore serialized within the
// process, which makes the check and the write one step there; across
// processes on FerretDB a rare lost view update remains possible, and the
// projector heals it on the stream's next commit by filling the gap.
type ReadModel struct {
	views *driver.Collection
	saves [saveStripes]sync.Mutex
}

// saveStripes bounds the locks that serialize saves: conversations share a
// lock by hash, so memory stays fixed and unrelated saves rarely wait.
const saveStripes = 256

var _ ports.ReadModel = (*ReadModel)(nil)

// NewReadModel returns the read model over db.
func NewReadModel(db *driver.Database) *ReadModel {
	return &ReadModel{views: db.Collection(ConversationsCollection)}
}

// Get implements ports.ReadModel.
func (r *ReadModel) Get(ctx context.Context, conversation string) (ports.ConversationView, bool, error) {
	var doc viewDoc
	err := r.views.FindOne(ctx, bson.D{{Key: "_id", Value: conversation}}).Decode(&doc)
	switch {
	case errors.Is(err, driver.ErrNoDocuments):
		return ports.ConversationView{}, false, nil
	case err != nil:
		return ports.ConversationView{}, false, storeErr("get view", conversation, 0, err)
	}
	return fromViewDoc(doc), true, nil
}

// Save implements ports.ReadModel: an insert when no view is expected, so
// the _id index settles a race to create; else a replace whose filter holds
// the expected revision, so a concurrent save makes it match nothing.
func (r *ReadModel) Save(ctx context.Context, v ports.ConversationView, expected uint64) error {
	doc := toViewDoc(v)
	stripe := &r.saves[stripeOf(v.Conversation)]
	stripe.Lock()
	defer stripe.Unlock()
	if expected == 0 {
		_, err := r.views.InsertOne(ctx, doc)
		switch {
		case driver.IsDuplicateKeyError(err):
			return ports.ErrRevisionConflict
		case err != nil:
			return storeErr("save view", v.Conversation, v.Revision(), err)
		}
		return nil
	}
	res, err := r.views.ReplaceOne(ctx, bson.D{{Key: "_id", Value: v.Conversation}, {Key: "revision", Value: int64(expected)}}, doc)
	if err != nil {
		return storeErr("save view", v.Conversation, v.Revision(), err)
	}
	if res.MatchedCount == 0 {
		return ports.ErrRevisionConflict
	}
	return nil
}

// ListFor implements ports.ReadModel; limit <= 0 means no limit.
func (r *ReadModel) ListFor(ctx context.Context, u user.ID, limit int) ([]ports.ConversationView, error) {
	opts := options.Find().SetSort(bson.D{{Key: "lastActivity", Value: -1}})
	if limit > 0 {
		opts.SetLimit(int64(limit))
	}
	cur, err := r.views.Find(ctx, bson.D{{Key: "participants", Value: string(u)}}, opts)
	if err != nil {
		return nil, storeErr("list views", string(u), 0, err)
	}
	var docs []viewDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, storeErr("list views", string(u), 0, err)
	}
	out := make([]ports.ConversationView, len(docs))
	for i, d := range docs {
		out[i] = fromViewDoc(d)
	}
	return out, nil
}

// Reset implements ports.ReadModel. It deletes the documents rather than
// dropping the collection, so the indexes and validator of the migrations
// stay in place for the replay that follows.
func (r *ReadModel) Reset(ctx context.Context) error {
	if _, err := r.views.DeleteMany(ctx, bson.D{}); err != nil {
		return storeErr("reset views", "", 0, err)
	}
	return nil
}

func stripeOf(conversation string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(conversation))
	return h.Sum32() % saveStripes
}

func toViewDoc(v ports.ConversationView) viewDoc {
	doc := viewDoc{
		ID:              v.Conversation,
		Participants:    []string{string(v.Participants[0]), string(v.Participants[1])},
		MessagesVersion: int64(v.MessagesVersion), ReceiptsVersion: int64(v.ReceiptsVersion),
		Revision: int64(v.Revision()), LastSeq: int64(v.LastSeq), LastActivity: v.LastActivity,
		Members: make([]memberDoc, len(v.Members)),
	}
	if m := v.LastMessage; m != nil {
		doc.LastMessage = &messageDoc{MessageID: m.MessageID, Seq: int64(m.Seq), From: string(m.From),
			To: string(m.To), Body: m.Body, SentAt: m.SentAt}
	}
	for i, m := range v.Members {
		unread := make([]int64, len(m.Unread))
		for j, seq := range m.Unread {
			unread[j] = int64(seq)
		}
		doc.Members[i] = memberDoc{User: string(m.User), DeliveredUpTo: int64(m.DeliveredUpTo),
			ReadUpTo: int64(m.ReadUpTo), Unread: unread}
	}
	return doc
}

func fromViewDoc(d viewDoc) ports.ConversationView {
	v := ports.ConversationView{
		Conversation:    d.ID,
		MessagesVersion: uint64(d.MessagesVersion), ReceiptsVersion: uint64(d.ReceiptsVersion),
		LastSeq: uint64(d.LastSeq), LastActivity: d.LastActivity,
	}
	for i, p := range d.Participants {
		if i < len(v.Participants) {
			v.Participants[i] = user.ID(p)
		}
	}
	if m := d.LastMessage; m != nil {
		v.LastMessage = &ports.MessageRecord{MessageID: m.MessageID, Seq: uint64(m.Seq), From: user.ID(m.From),
			To: user.ID(m.To), Body: m.Body, SentAt: m.SentAt}
	}
	for i, m := range d.Members {
		if i >= len(v.Members) {
			break
		}
		var unread []uint64
		if len(m.Unread) > 0 {
			unread = make([]uint64, len(m.Unread))
			for j, seq := range m.Unread {
				unread[j] = uint64(seq)
			}
		}
		v.Members[i] = ports.MemberView{User: user.ID(m.User), DeliveredUpTo: uint64(m.DeliveredUpTo),
			ReadUpTo: uint64(m.ReadUpTo), Unread: unread}
	}
	return v
}
