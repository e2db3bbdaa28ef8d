package mongo

import (
	"context"
	"crypto/rand"
	"errors"
	"hash/fnv"
	"slices"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	driver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"

	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// ParticipantsActivityIndex serves ListFor: a user's conversations, latest
// activity first; package migrations creates it.
const ParticipantsActivityIndex = "participants_1_lastActivity_-1"

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

// GetMany implements ports.ReadModel with a point read per view, a few at
// a time. One `$in` query would be the obvious form, but FerretDB v1 cannot
// push `$in` down to PostgreSQL and decodes the whole collection for it;
// equality on _id it can, and MongoDB serves either from the _id index.
func (r *ReadModel) GetMany(ctx context.Context, conversations []string) (map[string]ports.ConversationView, error) {
	out := make(map[string]ports.ConversationView, len(conversations))
	var mu sync.Mutex
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(getManyReaders)
	for _, id := range conversations {
		g.Go(func() error {
			var doc viewDoc
			err := r.views.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&doc)
			switch {
			case errors.Is(err, driver.ErrNoDocuments):
				return nil
			case err != nil:
				return readSideErr("read model", "get views", id, err)
			}
			v, err := fromViewDoc(doc)
			if err != nil {
				return readSideErr("read model", "get views", id, err)
			}
			mu.Lock()
			out[id] = v
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// getManyReaders bounds the point reads of one GetMany.
const getManyReaders = 8

// SaveMany implements ports.ReadModel with one unordered bulk write: an
// insert where no view is expected, so the _id index settles a race to
// create; else a replace whose filter holds the expected revision, so a
// concurrent save makes it match nothing. A bulk write reports how many
// replaces matched, not which, so when some did not, the save tokens read
// back tell.
func (r *ReadModel) SaveMany(ctx context.Context, saves []ports.ViewSave) ([]error, error) {
	errs := make([]error, len(saves))
	if len(saves) == 0 {
		return errs, nil
	}
	defer r.lockStripes(saves)()
	models := make([]driver.WriteModel, len(saves))
	tokens := make([]string, len(saves))
	replaces := 0
	for i, s := range saves {
		doc, err := toViewDoc(s.View)
		if err != nil {
			return nil, readSideErr("read model", "save views", s.View.Conversation, err)
		}
		doc.SaveToken = rand.Text()
		tokens[i] = doc.SaveToken
		if s.Expected == 0 {
			models[i] = driver.NewInsertOneModel().SetDocument(doc)
			continue
		}
		replaces++
		models[i] = driver.NewReplaceOneModel().
			SetFilter(bson.D{{Key: "_id", Value: s.View.Conversation}, {Key: "revision", Value: int64(s.Expected)}}).
			SetReplacement(doc)
	}
	res, err := r.views.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	var bulk driver.BulkWriteException
	switch {
	case err == nil:
	case errors.As(err, &bulk) && bulk.WriteConcernError == nil:
		for _, we := range bulk.WriteErrors {
			if we.Index < 0 || we.Index >= len(saves) {
				continue
			}
			if driver.IsDuplicateKeyError(driver.WriteException{WriteErrors: []driver.WriteError{we.WriteError}}) {
				errs[we.Index] = ports.ErrRevisionConflict
			} else {
				errs[we.Index] = readSideErr("read model", "save view", saves[we.Index].View.Conversation, we)
			}
		}
	default:
		return nil, readSideErr("read model", "save views", "", err)
	}
	if res != nil && res.MatchedCount >= int64(replaces) {
		return errs, nil
	}
	return r.settleReplaces(ctx, saves, tokens, errs)
}

// settleReplaces finds out which replaces of a bulk write took effect: those
// whose token the stored document carries.
func (r *ReadModel) settleReplaces(ctx context.Context, saves []ports.ViewSave, tokens []string, errs []error) ([]error, error) {
	var ids []string
	for i, s := range saves {
		if s.Expected != 0 && errs[i] == nil {
			ids = append(ids, s.View.Conversation)
		}
	}
	cur, err := r.views.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetProjection(bson.D{{Key: "saveToken", Value: 1}}))
	if err != nil {
		return nil, readSideErr("read model", "save views", "", err)
	}
	var docs []struct {
		ID        string `bson:"_id"`
		SaveToken string `bson:"saveToken"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, readSideErr("read model", "save views", "", err)
	}
	stored := make(map[string]string, len(docs))
	for _, d := range docs {
		stored[d.ID] = d.SaveToken
	}
	for i, s := range saves {
		if s.Expected != 0 && errs[i] == nil && stored[s.View.Conversation] != tokens[i] {
			errs[i] = ports.ErrRevisionConflict
		}
	}
	return errs, nil
}

// lockStripes takes the stripes of every saved conversation, in order so
// that two batches cannot deadlock, and returns their release.
func (r *ReadModel) lockStripes(saves []ports.ViewSave) func() {
	stripes := make([]uint32, 0, len(saves))
	for _, s := range saves {
		stripes = append(stripes, stripeOf(s.View.Conversation))
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, st := range stripes {
		r.saves[st].Lock()
	}
	return func() {
		for _, st := range stripes {
			r.saves[st].Unlock()
		}
	}
}

// ListFor implements ports.ReadModel; limit <= 0 means no limit.
func (r *ReadModel) ListFor(ctx context.Context, u user.ID, limit int) ([]ports.ConversationView, error) {
	opts := options.Find().SetSort(bson.D{{Key: "lastActivity", Value: -1}})
	if limit > 0 {
		opts.SetLimit(int64(limit))
	}
	cur, err := r.views.Find(ctx, bson.D{{Key: "participants", Value: string(u)}}, opts)
	if err != nil {
		return nil, readSideErr("read model", "list views", string(u), err)
	}
	var docs []viewDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, readSideErr("read model", "list views", string(u), err)
	}
	out := make([]ports.ConversationView, len(docs))
	for i, d := range docs {
		v, err := fromViewDoc(d)
		if err != nil {
			return nil, readSideErr("read model", "list views", string(u), err)
		}
		out[i] = v
	}
	return out, nil
}

// Reset implements ports.ReadModel. It deletes the documents rather than
// dropping the collection, so the indexes of the migrations stay in place
// for the replay that follows.
func (r *ReadModel) Reset(ctx context.Context) error {
	if _, err := r.views.DeleteMany(ctx, bson.D{}); err != nil {
		return readSideErr("read model", "reset views", "", err)
	}
	return nil
}

func stripeOf(conversation string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(conversation))
	return h.Sum32() % saveStripes
}
