package mongo

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"
	driver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/evchat/chatd/ports"
)

// Load implements ports.EventStore.
//
// FerretDB v1 pushes only equality filters down to PostgreSQL: a range on
// version is applied by FerretDB itself after it has read and decoded every
// commit of the stream (FerretDB/FerretDB#1875), so a range read costs the
// whole stream, 250-500 ms for a stream of 1,500 commits on these machines
// against 6-13 ms for one version by equality. The reads that matter most
// are short (a gap of a few messages, the first commit, the tail after a
// cached version), and under load after the store's return they queued up
// behind whole-stream reads long enough to time the group commits out. So
// on FerretDB the first pointReads versions are read one by one, stopping
// at the first one missing (a stream has no gaps: a version is appended
// only after its predecessor is stored), and only what lies beyond them by
// range. MongoDB serves the range from the (stream, version) index in one
// read.
func (s *EventStore) Load(ctx context.Context, stream string, from, to uint64) ([]ports.Commit, error) {
	if from == 0 {
		from = 1
	}
	if to != 0 && to < from {
		return nil, nil
	}
	byVersion, err := s.readsByVersion(ctx)
	if err != nil {
		return nil, storeErr("load", stream, from, err)
	}
	var commits []ports.Commit
	if byVersion {
		for ; to == 0 || from <= to; from++ {
			if len(commits) == pointReads {
				rest, err := s.loadRange(ctx, stream, from, to)
				commits = append(commits, rest...)
				if err != nil {
					return nil, err
				}
				break
			}
			c, found, err := s.loadVersion(ctx, stream, from)
			if err != nil {
				return nil, err
			}
			if !found {
				break
			}
			commits = append(commits, c)
		}
	} else if commits, err = s.loadRange(ctx, stream, from, to); err != nil {
		return nil, err
	}
	if n := len(commits); n > 0 {
		s.remember(stream, commits[n-1].Version)
	}
	return commits, nil
}

// pointReads is how many versions Load reads one by one on FerretDB before
// it reads the rest by range: about where the point reads of a long stream
// cost as much as one read of all of it.
const pointReads = 32

// readsByVersion tells whether the server is FerretDB, which names its
// version in buildInfo, and remembers the answer once it has one.
func (s *EventStore) readsByVersion(ctx context.Context) (bool, error) {
	switch s.server.Load() {
	case serverMongoDB:
		return false, nil
	case serverFerretDB:
		return true, nil
	}
	var info bson.Raw
	if err := s.db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return false, err
	}
	if _, err := info.LookupErr("ferretdbVersion"); err == nil {
		s.server.Store(serverFerretDB)
		return true, nil
	}
	s.server.Store(serverMongoDB)
	return false, nil
}

// The kinds of server readsByVersion tells apart; zero until it knows.
const (
	serverMongoDB int32 = iota + 1
	serverFerretDB
)

// loadVersion reads one commit of stream by equality, which FerretDB pushes
// down to PostgreSQL.
func (s *EventStore) loadVersion(ctx context.Context, stream string, version uint64) (ports.Commit, bool, error) {
	var doc commitDoc
	err := s.commits.FindOne(ctx, bson.D{{Key: "stream", Value: stream}, {Key: "version", Value: int64(version)}}).Decode(&doc)
	switch {
	case errors.Is(err, driver.ErrNoDocuments):
		return ports.Commit{}, false, nil
	case err != nil:
		return ports.Commit{}, false, storeErr("load", stream, version, err)
	}
	c, err := fromCommitDoc(doc)
	if err != nil {
		return ports.Commit{}, false, storeErr("load", stream, version, err)
	}
	return c, true, nil
}

// loadRange reads the commits of stream from from to to (0: the end) in one
// query.
func (s *EventStore) loadRange(ctx context.Context, stream string, from, to uint64) ([]ports.Commit, error) {
	versions := bson.D{{Key: "$gte", Value: int64(from)}}
	if to != 0 {
		versions = append(versions, bson.E{Key: "$lte", Value: int64(to)})
	}
	filter := bson.D{{Key: "stream", Value: stream}, {Key: "version", Value: versions}}
	cur, err := s.commits.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "version", Value: 1}}))
	if err != nil {
		return nil, storeErr("load", stream, from, err)
	}
	var commits []ports.Commit
	err = eachCommit(ctx, cur, func(c ports.Commit) error {
		commits = append(commits, c)
		return nil
	})
	if err != nil {
		return nil, storeErr("load", stream, from, err)
	}
	return commits, nil
}

// FindCommit implements ports.EventStore; checkback relies on it.
func (s *EventStore) FindCommit(ctx context.Context, id string) (ports.Commit, error) {
	var doc commitDoc
	err := s.commits.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&doc)
	switch {
	case errors.Is(err, driver.ErrNoDocuments):
		return ports.Commit{}, &ports.StoreError{Op: "find", Stream: id, Err: ports.ErrCommitNotFound}
	case err != nil:
		return ports.Commit{}, storeErr("find", id, 0, err)
	}
	c, err := fromCommitDoc(doc)
	if err != nil {
		return ports.Commit{}, &ports.StoreError{Op: "find", Stream: id, Err: err}
	}
	return c, nil
}

// Ping implements ports.EventStore.
func (s *EventStore) Ping(ctx context.Context) error {
	if err := ping(ctx, s.db); err != nil {
		return storeErr("ping", "", 0, err)
	}
	return nil
}

// Scan implements ports.StreamScanner in (stream, version) order, which the
// unique index serves on MongoDB; a conversation's streams come one after
// the other, its messages first, because the changes and receipts streams'
// names extend the messages stream's.
func (s *EventStore) Scan(ctx context.Context, fn func(ports.Commit) error) error {
	cur, err := s.commits.Find(ctx, bson.D{},
		options.Find().SetSort(bson.D{{Key: "stream", Value: 1}, {Key: "version", Value: 1}}))
	if err != nil {
		return storeErr("scan", "", 0, err)
	}
	if err := eachCommit(ctx, cur, fn); err != nil {
		if unavailable(err) {
			return storeErr("scan", "", 0, err)
		}
		return err
	}
	return nil
}

// eachCommit decodes every document of cur, closing it.
func eachCommit(ctx context.Context, cur *driver.Cursor, fn func(ports.Commit) error) error {
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		var doc commitDoc
		if err := cur.Decode(&doc); err != nil {
			return err
		}
		c, err := fromCommitDoc(doc)
		if err != nil {
			return err
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	return cur.Err()
}
