package mongo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	driver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/ports"
)

// StreamVersionIndex is the unique index on (stream, version) that makes a
// second commit at a taken version fail; package migrations creates it.
const StreamVersionIndex = "stream_1_version_1"

// commitDoc is one commit as stored: {_id, stream, version, events, committedAt, origin}.
type commitDoc struct {
	ID          string     `bson:"_id"`
	Stream      string     `bson:"stream"`
	Version     int64      `bson:"version"`
	Events      []eventDoc `bson:"events"`
	CommittedAt time.Time  `bson:"committedAt"`
	Origin      string     `bson:"origin"`
}

// eventDoc holds an event as the embedded document its JSON encoding
// converts to, so the stored events are queryable and readable in a shell
// while the domain codec stays the one definition of the format.
type eventDoc struct {
	Type string   `bson:"type"`
	Data bson.Raw `bson:"data"`
}

// EventStore keeps commits in the `commits` collection, one document each.
type EventStore struct {
	db      *driver.Database
	commits *driver.Collection

	// known remembers, per stream, a version known to be stored. Commits are
	// never removed, so a remembered version stays true, and an append of the
	// next version can skip the read that proves its predecessor exists.
	mu    sync.Mutex
	known map[string]uint64

	group *groupCommit

	// server is serverMongoDB or serverFerretDB once readsByVersion knows.
	server atomic.Int32
}

var (
	_ ports.EventStore    = (*EventStore)(nil)
	_ ports.StreamScanner = (*EventStore)(nil)
)

// maxKnownStreams bounds the memory of known versions; past it the map
// starts afresh, which only costs a read per stream.
const maxKnownStreams = 100_000

// NewEventStore returns the event store over db.
func NewEventStore(db *driver.Database) *EventStore {
	commits := db.Collection(CommitsCollection)
	return &EventStore{db: db, commits: commits, known: map[string]uint64{}, group: newGroupCommit(commits)}
}

// Append implements ports.EventStore with one document, written in a group
// commit with the appends running beside it (group_commit.go). The unique index
// rejects a taken version; a skipped version is caught before the insert by
// checking that the previous one is stored, which no race can undo because
// a stored commit is never removed.
func (s *EventStore) Append(ctx context.Context, c ports.Commit) error {
	if c.Version == 0 {
		return &ports.StoreError{Op: "append", Stream: c.Stream, Err: fmt.Errorf("%w: versions start at 1", ports.ErrVersionConflict)}
	}
	if c.Version > 1 && !s.isKnown(c.Stream, c.Version-1) {
		err := s.commits.FindOne(ctx, bson.D{{Key: "stream", Value: c.Stream}, {Key: "version", Value: int64(c.Version - 1)}},
			options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
		switch {
		case errors.Is(err, driver.ErrNoDocuments):
			return &ports.StoreError{Op: "append", Stream: c.Stream, Version: c.Version, Err: ports.ErrVersionConflict}
		case err != nil:
			return storeErr("append", c.Stream, c.Version, err)
		}
	}
	doc, err := toCommitDoc(c)
	if err != nil {
		return &ports.StoreError{Op: "append", Stream: c.Stream, Version: c.Version, Err: err}
	}
	if err := s.group.insert(ctx, doc); err != nil {
		if driver.IsDuplicateKeyError(err) {
			return s.duplicate(ctx, c, err)
		}
		return storeErr("append", c.Stream, c.Version, err)
	}
	s.remember(c.Stream, c.Version)
	return nil
}

// duplicate tells which unique index refused c. MongoDB names the index in
// the message ("index: _id_ dup key") and in keyPattern; FerretDB v1 words
// its message differently, so when neither settles it, the commit id
// decides: stored already means a duplicate, else the version was taken.
func (s *EventStore) duplicate(ctx context.Context, c ports.Commit, dupErr error) error {
	conflict := func(sentinel error) error {
		return &ports.StoreError{Op: "append", Stream: c.Stream, Version: c.Version, Err: fmt.Errorf("%w: %w", sentinel, dupErr)}
	}
	switch duplicateIndex(dupErr) {
	case "_id":
		return conflict(ports.ErrDuplicateCommit)
	case "stream":
		return conflict(ports.ErrVersionConflict)
	}
	n, err := s.commits.CountDocuments(ctx, bson.D{{Key: "_id", Value: c.ID}})
	if err != nil {
		return storeErr("append", c.Stream, c.Version, err)
	}
	if n > 0 {
		return conflict(ports.ErrDuplicateCommit)
	}
	return conflict(ports.ErrVersionConflict)
}

// duplicateIndex returns "_id" or "stream" for the index a duplicate-key
// error names, or "" when it names none of them recognisably.
func duplicateIndex(err error) string {
	var we driver.WriteException
	if !errors.As(err, &we) {
		return ""
	}
	for _, e := range we.WriteErrors {
		if pattern, ok := e.Details.Lookup("keyPattern").DocumentOK(); ok {
			if _, err := pattern.LookupErr("_id"); err == nil {
				return "_id"
			}
			if _, err := pattern.LookupErr("stream"); err == nil {
				return "stream"
			}
		}
		switch {
		case strings.Contains(e.Message, "index: _id_ "):
			return "_id"
		case strings.Contains(e.Message, "index: "+StreamVersionIndex+" "):
			return "stream"
		}
	}
	return ""
}

func (s *EventStore) isKnown(stream string, version uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.known[stream] >= version
}

func (s *EventStore) remember(stream string, version uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.known[stream] >= version {
		return
	}
	if len(s.known) >= maxKnownStreams {
		clear(s.known)
	}
	s.known[stream] = version
}

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
// unique index serves on MongoDB; a conversation's two streams come one
// after the other because the receipts stream's name extends the other's.
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

func toCommitDoc(c ports.Commit) (commitDoc, error) {
	events := make([]eventDoc, len(c.Events))
	for i, ev := range c.Events {
		data, err := conversation.MarshalEvent(ev)
		if err != nil {
			return commitDoc{}, fmt.Errorf("encode %s: %w", ev.EventType(), err)
		}
		// Relaxed extended JSON of a plain JSON object is that object: field
		// names come from the event's struct tags, never from user input.
		var raw bson.Raw
		if err := bson.UnmarshalExtJSON(data, false, &raw); err != nil {
			return commitDoc{}, fmt.Errorf("convert %s to BSON: %w", ev.EventType(), err)
		}
		events[i] = eventDoc{Type: ev.EventType(), Data: raw}
	}
	return commitDoc{ID: c.ID, Stream: c.Stream, Version: int64(c.Version), Events: events,
		CommittedAt: c.CommittedAt, Origin: c.Origin}, nil
}

func fromCommitDoc(d commitDoc) (ports.Commit, error) {
	events := make([]conversation.Event, len(d.Events))
	for i, e := range d.Events {
		data, err := bson.MarshalExtJSON(e.Data, false, false)
		if err != nil {
			return ports.Commit{}, fmt.Errorf("commit %s: event %d: %w", d.ID, i, err)
		}
		ev, err := conversation.UnmarshalEvent(e.Type, data)
		if err != nil {
			return ports.Commit{}, fmt.Errorf("commit %s: event %d: %w", d.ID, i, err)
		}
		events[i] = ev
	}
	return ports.Commit{ID: d.ID, Stream: d.Stream, Version: uint64(d.Version), Events: events,
		CommittedAt: d.CommittedAt, Origin: d.Origin}, nil
}
