package mongo

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/ports"
)

var _ ports.RecalledEraser = (*EventStore)(nil)

// EraseRecalled implements ports.RecalledEraser: it reads every changes
// stream, then rewrites each commit that still holds a recalled body (the
// message's post, read by its seq, and its earlier edits) with one update
// of its events. It is an operator's offline command: a scan of the
// changes streams, which FerretDB filters by itself, costs what a replay
// costs, and the update of one document is as atomic as the insert was.
func (s *EventStore) EraseRecalled(ctx context.Context) (int, error) {
	cur, err := s.commits.Find(ctx, bson.D{{Key: "stream", Value: bson.D{{Key: "$regex", Value: `\.changes$`}}}},
		options.Find().SetSort(bson.D{{Key: "stream", Value: 1}, {Key: "version", Value: 1}}))
	if err != nil {
		return 0, storeErr("erase recalled", "", 0, err)
	}
	byStream := map[string][]ports.Commit{}
	if err := eachCommit(ctx, cur, func(c ports.Commit) error {
		byStream[c.Stream] = append(byStream[c.Stream], c)
		return nil
	}); err != nil {
		return 0, storeErr("erase recalled", "", 0, err)
	}
	rewritten := 0
	for stream, changes := range byStream {
		recalled := ports.RecalledSeqs(changes)
		id, _ := conversation.StreamOf(stream)
		candidates := changes
		for seq := range recalled {
			post, found, err := s.loadVersion(ctx, conversation.MessagesStream(id), seq)
			if err != nil {
				return rewritten, err
			}
			if found {
				candidates = append(candidates, post)
			}
		}
		for _, c := range candidates {
			events, erased := ports.WithoutRecalledBodies(c, recalled)
			if !erased {
				continue
			}
			c.Events = events
			doc, err := toCommitDoc(c)
			if err != nil {
				return rewritten, err
			}
			if _, err := s.commits.UpdateOne(ctx, bson.D{{Key: "_id", Value: c.ID}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "events", Value: doc.Events}}}}); err != nil {
				return rewritten, storeErr("erase recalled", c.Stream, c.Version, err)
			}
			rewritten++
		}
	}
	return rewritten, nil
}
