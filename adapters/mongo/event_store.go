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
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/ports"
)

// StreamVersionIndex is the unique index on (stream, version) that makes a
// second commit at a taken version fail; package migrations creates it.
const StreamVersionIndex = "stream_1_version_1"

// commitDoc is one commit as stored: {_id, stream, version, events,
// committedAt, origin}, origin left out when no session caused the commit.
type commitDoc struct {
	ID          string     `bson:"_id"`
	Stream      string     `bson:"stream"`
	Version     int64      `bson:"version"`
	Events      []eventDoc `bson:"events"`
	CommittedAt time.Time  `bson:"committedAt"`
	Origin      string     `bson:"origin,omitempty"`
}

// eventDoc holds an event as its JSON encoding, a string, so the domain
// codec stays the one definition of the format. Commits stored before
// migration 5 hold the embedded document that JSON converts to, which
// readers still accept. The string is what pays: FerretDB keeps a type
// schema beside every field of a document and checks, encodes and decodes
// each one, so an embedded event of seven fields cost the store more than
// the rest of its commit, while no query ever looks inside an event.
type eventDoc struct {
	Type string        `bson:"type"`
	Data bson.RawValue `bson:"data"`
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

func toCommitDoc(c ports.Commit) (commitDoc, error) {
	events := make([]eventDoc, len(c.Events))
	for i, ev := range c.Events {
		data, err := conversation.MarshalEvent(ev)
		if err != nil {
			return commitDoc{}, fmt.Errorf("encode %s: %w", ev.EventType(), err)
		}
		events[i] = eventDoc{Type: ev.EventType(), Data: bsonString(string(data))}
	}
	return commitDoc{ID: c.ID, Stream: c.Stream, Version: int64(c.Version), Events: events,
		CommittedAt: c.CommittedAt, Origin: c.Origin}, nil
}

func fromCommitDoc(d commitDoc) (ports.Commit, error) {
	events := make([]conversation.Event, len(d.Events))
	for i, e := range d.Events {
		data, err := eventJSON(e.Data)
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

func bsonString(s string) bson.RawValue {
	return bson.RawValue{Type: bson.TypeString, Value: bsoncore.AppendString(nil, s)}
}

// eventJSON returns a stored event's JSON, from either of its shapes: the
// string of today, or the embedded document commits held before.
func eventJSON(data bson.RawValue) ([]byte, error) {
	if s, ok := data.StringValueOK(); ok {
		return []byte(s), nil
	}
	doc, ok := data.DocumentOK()
	if !ok {
		return nil, fmt.Errorf("event data of BSON type %s", data.Type)
	}
	// Relaxed extended JSON of a plain JSON object is that object: field
	// names come from the event's struct tags, never from user input.
	return bson.MarshalExtJSON(doc, false, false)
}
